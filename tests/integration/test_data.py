"""Integration tests of the data lifetime: retention (policy, dry run, purge by hand and on a
schedule, space given back) and backups (create, verify, restore with a raised epoch), against
real parleyd processes."""
import json
import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Node, RawClient, User, two_nodes, wait_for  # noqa: E402

PW = "correct horse battery"


def login_raw(node, name, device="raw"):
    raw = RawClient(node.client_port, timeout=30)
    re = raw.request("login", user="%s@%s" % (name, node.name), password=PW, device=device)
    assert re["ok"], re
    return raw


def bulk_send(raw, to, count, size, tag):
    """Sends `count` `size`-byte bodies, pipelined 100 at a time (the node closes a reader that
    falls more than client.max_outbound_frames behind), and waits for every server ack."""
    for start in range(0, count, 100):
        first, n = raw.next_id, min(100, count - start)
        for i in range(start, start + n):
            raw.send({"t": "send", "id": raw.next_id, "to": to, "msg_id": "%s-%d" % (tag, i),
                      "body": os.urandom(size)})
            raw.next_id += 1
        acked = set()
        while len(acked) < n:
            f = raw.recv_frame()
            assert f is not None, "closed during bulk send"
            if f.get("t") == "re" and first <= f.get("id", 0) < first + n:
                assert f["ok"], f
                acked.add(f["id"])
    return count


def drain_and_ack(raw):
    """Reads the stream until `synced` (a fresh connection's backlog) and acknowledges it all."""
    last = 0
    while True:
        f = raw.recv_frame()
        assert f is not None
        if f.get("t") == "ev":
            last = max(last, f["seq"])
        if f.get("t") == "synced":
            last = max(last, f["seq"])
            break
    if last:
        assert raw.request("ack", upto=last)["ok"]
    return last


def db_bytes(node):
    path = os.path.join(node.data, "parley.db")
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def retention_json(node):
    return json.loads(node.parleyd("retention", "show", "--json", check=True).stdout)


def metrics(node):
    url = "http://127.0.0.1:%d/metrics" % node.metrics_port
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def status(node):
    return json.loads(node.parleyd("status", "--json", check=True).stdout)


class Retention(unittest.TestCase):
    def setUp(self):
        self.node = Node(policy="organization",
                         settings={"retention.purge_interval_seconds": "0",
                                   "limits.messages_per_minute": "0"}).start()
        for n in ("alice", "bob", "carol"):
            self.node.add_user(n)

    def tearDown(self):
        self.node.cleanup()

    def test_policy_commands_and_errors(self):
        n = self.node
        self.assertEqual(retention_json(n)["default"], "forever")
        self.assertIn("default lifetime  forever", n.parleyd("retention", "show").stdout)
        r = n.parleyd("retention", "set", "default", "30d")  # shorter than forever: asks
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("older than 30d", r.stderr)
        self.assertEqual(retention_json(n)["default"], "forever")
        n.parleyd("retention", "set", "default", "30d", "--yes", check=True)
        self.assertEqual(retention_json(n)["default_seconds"], 30 * 86400)
        r = n.parleyd("retention", "set", "default", "soon")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("30d, 12h", r.stderr)
        r = n.parleyd("retention", "set", "dm:00000000000000000000000000000000", "1d", "--yes")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("no conversation", r.stderr)
        raw = login_raw(n, "alice")
        conv = raw.request("send", to="bob@example.org", msg_id="m1", body=b"x")["conv"]
        n.parleyd("retention", "set", conv, "12h", "--yes", check=True)
        got = retention_json(n)
        self.assertEqual([(o["conv"], o["lifetime"]) for o in got["overrides"]], [(conv, "12h")])
        self.assertIn(conv, n.parleyd("retention", "show").stdout)
        n.parleyd("retention", "set", conv, "default", check=True)
        self.assertEqual(retention_json(n)["overrides"], [])
        self.assertEqual(n.parleyd("retention", "purge", "--help").returncode, 0)
        raw.close()

    def test_purge_removes_expired_messages_and_delivered_entries_and_gives_space_back(self):
        n = self.node
        sender = login_raw(n, "alice", device="bulk")
        bulk_send(sender, "bob@example.org", 600, 8000, "old")
        bulk_send(sender, "carol@example.org", 200, 8000, "kept")
        self.assertTrue(sender.request("logout")["ok"])  # a signed-out device holds nothing back
        sender.close()
        phone = login_raw(n, "bob", device="phone")
        self.assertGreaterEqual(drain_and_ack(phone), 600)
        phone.close()
        fresh = login_raw(n, "alice", device="later")
        drain_and_ack(fresh)
        time.sleep(2.2)
        conv_bob = fresh.request("send", to="bob@example.org", msg_id="new-1", body=b"n")["conv"]
        conv_carol = fresh.request("send", to="carol@example.org", msg_id="new-2",
                                   body=b"n")["conv"]
        n.parleyd("retention", "set", "default", "2s", "--yes", check=True)
        n.parleyd("retention", "set", conv_carol, "forever", check=True)

        dry = json.loads(n.parleyd("retention", "purge", "--dry-run", "--json",
                                   check=True).stdout)
        self.assertEqual(dry["messages"], 600)
        # alice's 600 own messages to bob, bob's 600, and the receipts of bob's conversation.
        self.assertGreaterEqual(dry["stream_entries"], 1200)
        self.assertEqual(status(n)["messages"], 802)
        before = db_bytes(n)
        r = n.parleyd("retention", "purge")  # no terminal to confirm on, no --yes
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("Remove 600 messages", r.stderr)
        self.assertEqual(status(n)["messages"], 802)
        r = n.parleyd("retention", "purge", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Purged 600 messages and %d stream entries" % dry["stream_entries"],
                      r.stdout)
        self.assertIn("done", r.stderr)  # progress lines, phase by phase
        self.assertEqual(status(n)["messages"], 202)
        again = json.loads(n.parleyd("retention", "purge", "--dry-run", "--json",
                                     check=True).stdout)
        self.assertEqual((again["messages"], again["stream_entries"]), (0, 0))
        last = retention_json(n)["last_purge"]
        self.assertEqual(last["messages"], 600)
        self.assertGreater(last["pages_freed"], 1000)  # 600 x 8 KB of ciphertext
        wait_for(lambda: db_bytes(n) < before - 3 * 1024 * 1024,
                 what="the database file to shrink (was %d)" % before)
        # What is left: the new message and carol's conversation, with its history intact.
        hist = fresh.request("history", conv=conv_bob, limit=50)
        self.assertTrue(hist["ok"], hist)
        self.assertEqual([m["msg_id"] for m in hist["messages"]], ["new-1"])
        # 201 messages of 8 kB: pages end at the answer bound (1 MiB, client-protocol.md §8).
        kept, before = [], None
        while True:
            page = dict(conv=conv_carol, limit=200)
            if before is not None:
                page["before"] = before
            hist = fresh.request("history", **page)
            self.assertTrue(hist["ok"], hist)
            kept = hist["messages"] + kept
            if not hist["more"]:
                break
            before = hist["messages"][0]["cseq"]
        self.assertEqual(len(kept), 201)
        self.assertEqual(kept[-1]["msg_id"], "new-2")
        fresh.close()
        # A restart keeps it that way, and the conversation's numbering goes on (never reused).
        n.stop()
        n.start()
        self.assertEqual(status(n)["messages"], 202)
        raw = login_raw(n, "alice", device="after")
        re = raw.request("send", to="bob@example.org", msg_id="new-3", body=b"n")
        self.assertEqual(re["cseq"], 602)
        raw.close()
        self.assertIsNone(retention_json(n)["last_purge"], "a restarted node has not purged yet")


class ScheduledPurge(unittest.TestCase):
    def test_the_schedule_purges_without_an_admin(self):
        n = Node(policy="organization",
                 settings={"retention.purge_interval_seconds": "1"}).start()
        try:
            n.add_user("alice")
            n.add_user("bob")
            n.parleyd("retention", "set", "default", "1s", "--yes", check=True)
            raw = login_raw(n, "alice")
            bulk_send(raw, "bob@example.org", 20, 100, "s")
            raw.close()
            wait_for(lambda: status(n)["messages"] == 0, timeout=15, what="scheduled purge")
            # Runs that found nothing finish too; the counter adds up those that purged.
            wait_for(lambda: 'parley_retention_purged_total{kind="message"} 20' in metrics(n),
                     what="the purge counted in /metrics")
            wait_for(lambda: "event=retention_purged messages=" in n.logs(), what="log line")
            self.assertIsNotNone(retention_json(n)["last_purge"])
        finally:
            n.cleanup()


class Backup(unittest.TestCase):
    def test_create_verify_and_refuse_a_damaged_backup(self):
        n = Node(policy="organization").start()
        try:
            n.add_user("alice")
            n.add_user("bob")
            raw = login_raw(n, "alice")
            bulk_send(raw, "bob@example.org", 50, 500, "b")
            raw.close()
            dest = os.path.join(n.dir, "backup-1")
            r = n.parleyd("backup", "create", dest)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("private key", r.stdout)
            self.assertEqual(sorted(os.listdir(dest)),
                             ["config.toml", "manifest.json", "node.key", "parley.db"])
            self.assertEqual(os.stat(dest).st_mode & 0o777, 0o700)
            self.assertEqual(os.stat(os.path.join(dest, "node.key")).st_mode & 0o777, 0o600)
            with open(os.path.join(dest, "manifest.json")) as f:
                manifest = json.load(f)
            self.assertEqual(manifest["node"], "example.org")
            self.assertEqual(manifest["epoch"], 0)
            key = json.loads(n.parleyd("key", "show", "--json", check=True).stdout)
            self.assertEqual(manifest["public_key"], key["public_key"])
            # verify needs no data directory and no running node
            n.stop()
            r = n.parleyd("backup", "verify", dest)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("complete and intact", r.stdout)
            v = json.loads(n.parleyd("backup", "verify", dest, "--json").stdout)
            self.assertTrue(v["ok"])
            self.assertEqual({c["check"] for c in v["checks"]},
                             {"manifest", "parley.db", "node.key", "config.toml", "database",
                              "node key"})
            n.start()
            r = n.parleyd("backup", "create", dest)
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn("not empty", r.stderr)
            # One flipped byte is found, named, and a restore of it changes nothing.
            db = os.path.join(dest, "parley.db")
            with open(db, "r+b") as f:
                f.seek(os.path.getsize(db) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0xFF]))
            r = n.parleyd("backup", "verify", dest)
            self.assertEqual(r.returncode, 1)
            self.assertIn("problem  parley.db", r.stdout)
            self.assertIn("do not restore", r.stdout)
            n.stop()
            r = n.parleyd("backup", "restore", dest, "--yes")
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn("nothing changed", r.stderr)
            n.start()
            self.assertEqual(status(n)["messages"], 50)
            os.remove(os.path.join(dest, "manifest.json"))
            self.assertEqual(n.parleyd("backup", "verify", dest).returncode, 1)
        finally:
            n.cleanup()

    def test_restore_raises_the_epoch_and_peers_resync(self):
        a, b, alice, bob = two_nodes(policy="anyone")
        try:
            alice.ok("send", bob.address, "before the backup")
            wait_for(lambda: "before the backup" in bob.ok("sync"), what="first message")
            dest = os.path.join(a.dir, "nightly")
            a.parleyd("backup", "create", dest, check=True)
            for i in range(3):
                alice.ok("send", bob.address, "after the backup %d" % i)
            wait_for(lambda: "after the backup 2" in bob.ok("sync"), what="later messages")
            # Restoring needs the node stopped.
            r = a.parleyd("backup", "restore", dest, "--yes")
            self.assertEqual(r.returncode, 6, r.stderr)
            a.stop()
            r = a.parleyd("backup", "restore", dest)  # no terminal, no --yes
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--yes", r.stderr)
            r = a.parleyd("backup", "restore", dest, "--yes", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout)
            self.assertGreater(out["epoch"], 0)
            self.assertGreater(out["prekeys_withdrawn"], 0)  # alice's device had published some
            self.assertGreaterEqual(out["counters_advanced_by"], 1000000)
            self.assertTrue(os.path.exists(os.path.join(out["moved_aside"], "parley.db")))
            a.start()
            self.assertEqual(status(a)["epoch"], out["epoch"])
            # Her device's session is in the backup; what it sends now reaches bob although the
            # restored node's federation ids start again below what b.example applied.
            alice.ok("send", bob.address, "after the restore")
            wait_for(lambda: "after the restore" in bob.ok("sync"), what="message after restore")
            self.assertIn("event=peer_epoch_raised peer=a.example", b.logs())
            bob.ok("send", alice.address, "welcome back")
            wait_for(lambda: "welcome back" in alice.ok("sync"), what="reply after restore")
            # Her device noticed the node had none of its one-time prekeys left and published
            # new ones.
            raw = RawClient(a.client_port, timeout=30)
            re = raw.request("login", user=alice.address, password=PW, device="checker")
            # A device signing in after the restore never gets an id used since the backup.
            self.assertGreater(re["device_id"], out["counters_advanced_by"])
            keys = raw.request("keys_query", address=alice.address)
            raw.close()
            self.assertTrue(keys["ok"], keys)
            self.assertGreater(max(d["one_time_left"] for d in keys["devices"]), 0)
            # A second restore of the same backup gets yet another epoch.
            a.stop()
            again = json.loads(a.parleyd("backup", "restore", dest, "--yes", "--json",
                                         check=True).stdout)
            self.assertGreater(again["epoch"], out["epoch"])
        finally:
            a.cleanup()
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
