"""Integration tests of people operations against running nodes: sessions and kicks; suspend,
deactivate and reactivate; erasure with retired names; per-user send rate limits; abuse reports."""
import json
import os
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Node, RawClient, User, wait_for, signed_in  # noqa: E402

PW = "correct horse battery"


def db_rows(node, sql, *args):
    """Rows straight from the node's database file (read-only, while it serves)."""
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(node.data, "parley.db"), uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def raw_login(node, name, device="raw"):
    c = RawClient(node.client_port)
    re = c.request("login", user="%s@%s" % (name, node.name), password=PW, device=device)
    assert re["ok"], re
    return c, re


def users(node):
    return {u["name"]: u for u in json.loads(node.parleyd("user", "list", "--json", check=True).stdout)}


class Sessions(unittest.TestCase):
    def test_sessions_show_devices_and_kick_revokes_a_device(self):
        n = Node().start()
        try:
            n.add_user("alice")
            laptop = User(n, "alice", device="laptop")
            self.assertEqual(laptop.login().returncode, 0)
            before = int(time.time() * 1000)
            phone, re = raw_login(n, "alice", device="phone")
            token = re["token"]
            phone.request("ping")
            sessions = json.loads(n.parleyd("user", "sessions", "alice", "--json",
                                            check=True).stdout)
            by_label = {s["label"]: s for s in sessions}
            self.assertEqual(set(by_label), {"laptop", "phone"})
            self.assertTrue(by_label["phone"]["connected"])
            self.assertEqual(by_label["phone"]["connections"], ["127.0.0.1"])
            self.assertGreaterEqual(by_label["phone"]["last_seen_ms"], before - 1000)
            self.assertFalse(by_label["laptop"]["connected"])  # the CLI disconnected
            self.assertTrue(by_label["laptop"]["signed_in"])
            self.assertEqual(by_label["laptop"]["last_address"], "127.0.0.1")
            self.assertGreater(by_label["laptop"]["last_seen_ms"], 0)
            text = n.parleyd("user", "sessions", "alice", check=True).stdout
            self.assertRegex(text, r"\bphone\s+connected\s+\d{4}-")
            self.assertRegex(text, r"\blaptop\s+signed-in\b")

            # Kick the phone: its connection closes and its token no longer resumes.
            phone_id = by_label["phone"]["device"]
            r = n.parleyd("user", "kick", "alice", str(phone_id), check=True)
            self.assertIn("Signed out 1 device(s)", r.stdout)
            self.assertIn("closed 1 connection(s)", r.stdout)
            frames = phone.closed_within(5)
            phone.close()
            self.assertEqual(frames[-1]["t"], "bye")
            self.assertEqual(frames[-1]["code"], "logged_out")
            again = RawClient(n.client_port)
            self.assertEqual(again.request("resume", token=token)["code"], "bad_credentials")
            again.close()
            laptop.ok("sync")  # the other device is untouched
            # Not hers, nobody: not found.
            self.assertEqual(n.parleyd("user", "kick", "alice", "99999").returncode, 4)
            self.assertEqual(n.parleyd("user", "kick", "nobody").returncode, 4)
            self.assertEqual(n.parleyd("user", "sessions", "nobody").returncode, 4)
            # Every device at once; the ended sessions only show with --all.
            n.parleyd("user", "kick", "alice", check=True)
            r = laptop.run("sync")
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("log in again", r.stderr)
            self.assertEqual(json.loads(n.parleyd("user", "sessions", "alice", "--json",
                                                  check=True).stdout), [])
            ended = json.loads(n.parleyd("user", "sessions", "alice", "--all", "--json",
                                         check=True).stdout)
            self.assertEqual(len(ended), 2)
            self.assertFalse(any(s["signed_in"] for s in ended))
            self.assertEqual(laptop.login().returncode, 0)  # the password still works
        finally:
            n.cleanup()


class States(unittest.TestCase):
    def test_suspend_deactivate_reactivate(self):
        n = Node(policy="organization").start()
        try:
            alice, bob = signed_in(n, "alice", "bob")
            alice.ok("send", bob.address, "before")
            self.assertEqual(users(n)["alice"]["state"], "active")

            # Suspension: sessions close, tokens stay; lifting it lets the device resume.
            live, _ = raw_login(n, "alice")
            n.parleyd("user", "suspend", "alice", check=True)
            self.assertEqual(live.closed_within(5)[-1]["code"], "suspended")
            live.close()
            self.assertEqual(users(n)["alice"]["state"], "suspended")
            r = alice.run("sync")
            self.assertEqual(r.returncode, 4)
            self.assertIn("suspended", r.stderr)
            n.parleyd("user", "unsuspend", "alice", check=True)
            alice.ok("sync")

            # Deactivation: no login, every session token revoked, data kept.
            live, _ = raw_login(n, "alice")
            r = n.parleyd("user", "deactivate", "alice", check=True)
            self.assertIn("data stays", r.stdout)
            self.assertEqual(live.closed_within(5)[-1]["code"], "deactivated")
            live.close()
            self.assertEqual(users(n)["alice"]["state"], "deactivated")
            self.assertEqual(users(n)["alice"]["devices"], 0)
            self.assertIn("deactivated", n.parleyd("user", "list", check=True).stdout)
            r = alice.login()
            self.assertEqual(r.returncode, 4)
            self.assertIn("deactivated", r.stderr)
            self.assertEqual(alice.run("sync").returncode, 4)
            self.assertEqual(db_rows(n, "SELECT count(*) FROM messages WHERE sender = ?",
                                     alice.address), [(1,)])
            # Reactivation: the password logs in again; the old token stays revoked.
            n.parleyd("user", "reactivate", "alice", check=True)
            self.assertEqual(users(n)["alice"]["state"], "active")
            self.assertEqual(alice.run("sync").returncode, 4)
            self.assertEqual(alice.login().returncode, 0)
            alice.ok("sync")
            again, _ = raw_login(n, "alice")
            self.assertTrue(again.request("send", to=bob.address, msg_id="back", body=b"x")["ok"])
            again.close()
            self.assertEqual(n.parleyd("user", "deactivate", "nobody").returncode, 4)
        finally:
            n.cleanup()

    def test_erase_removes_the_users_data_and_retires_the_name(self):
        n = Node(policy="organization").start()
        try:
            alice, bob, carol = signed_in(n, "alice", "bob", "carol")
            alice.ok("send", bob.address, "from alice 1")
            alice.ok("send", bob.address, "from alice 2")
            bob.ok("send", alice.address, "from bob")
            carol.ok("send", bob.address, "from carol")
            bob.ok("friend", "request", alice.address)
            r = n.parleyd("user", "delete", "alice", "--erase")  # no terminal, no --yes
            self.assertEqual(r.returncode, 2)
            self.assertIn("--yes", r.stderr)
            r = n.parleyd("user", "delete", "alice", "--erase", "--yes", check=True)
            self.assertIn("retired", r.stdout)
            self.assertEqual(db_rows(n, "SELECT count(*) FROM messages WHERE sender = ?",
                                     alice.address), [(0,)])
            self.assertEqual(db_rows(n, "SELECT count(*) FROM messages WHERE sender = ?",
                                     bob.address), [(1,)])  # bob's own message stays his
            self.assertEqual(db_rows(n, "SELECT count(*) FROM users WHERE name = 'alice'"), [(0,)])
            self.assertEqual(db_rows(n, "SELECT count(*) FROM devices d LEFT JOIN users u ON "
                                        "u.id = d.user_id WHERE u.id IS NULL"), [(0,)])
            self.assertEqual(db_rows(n, "SELECT count(*) FROM user_keys k LEFT JOIN users u ON "
                                        "u.id = k.user_id WHERE u.id IS NULL"), [(0,)])
            self.assertEqual(db_rows(n, "SELECT count(*) FROM relations WHERE other = ?",
                                     alice.address), [(0,)])
            self.assertEqual(db_rows(n, "SELECT name FROM retired_names"), [("alice",)])
            self.assertNotIn("alice", users(n))
            self.assertNotIn("from alice", bob.ok("sync"))
            # The name cannot be taken again until an admin frees it.
            r = n.parleyd("user", "add", "alice", "--password-stdin", input=PW + "\n")
            self.assertEqual(r.returncode, 5)
            self.assertIn("unretire", r.stderr)
            n.parleyd("user", "unretire", "alice", check=True)
            self.assertEqual(n.parleyd("user", "unretire", "alice").returncode, 4)
            n.add_user("alice")
            # Plain delete keeps the messages carol sent in bob's history and retires nothing.
            n.parleyd("user", "delete", "carol", "--yes", check=True)
            self.assertEqual(db_rows(n, "SELECT count(*) FROM messages WHERE sender = ?",
                                     carol.address), [(1,)])
            n.add_user("carol")
            self.assertEqual(n.parleyd("user", "delete", "nobody", "--erase", "--yes").returncode, 4)
        finally:
            n.cleanup()


class RateLimits(unittest.TestCase):
    def test_send_limit_retry_after_override_and_reload(self):
        n = Node(policy="organization", settings={"limits.messages_per_minute": "60",
                                                  "limits.message_burst": "3"}).start()
        try:
            n.add_user("alice")
            n.add_user("bob")
            a, _ = raw_login(n, "alice")
            for i in range(3):
                self.assertTrue(a.request("send", to="bob@example.org", msg_id="b%d" % i,
                                          body=b"x")["ok"])
            re = a.request("send", to="bob@example.org", msg_id="b3", body=b"x")
            self.assertEqual(re["code"], "rate_limited")
            self.assertTrue(0 < re["retry_after_ms"] <= 1000, re)
            time.sleep(re["retry_after_ms"] / 1000.0 + 0.05)
            self.assertTrue(a.request("send", to="bob@example.org", msg_id="b3", body=b"x")["ok"])

            # The user CLI says so and exits 7.
            alice, bob = User(n, "alice"), User(n, "bob")
            for u in (alice, bob):
                self.assertEqual(u.login().returncode, 0)
            codes = [alice.run("send", bob.address, "m%d" % i) for i in range(4)]
            limited = [r for r in codes if r.returncode != 0]
            self.assertTrue(limited)
            self.assertEqual(limited[0].returncode, 7, limited[0].stderr)
            self.assertIn("retry after", limited[0].stderr)

            # Per-user override: alice unlimited, bob one per minute.
            n.parleyd("user", "limit", "alice", "--messages-per-minute", "0", check=True)
            for i in range(10):
                self.assertTrue(a.request("send", to="bob@example.org", msg_id="u%d" % i,
                                          body=b"x")["ok"])
            shown = json.loads(n.parleyd("user", "limit", "alice", "--json", check=True).stdout)
            self.assertEqual(shown, {"messages_per_minute": 0, "burst": 0, "override": True})
            n.parleyd("user", "limit", "bob", "--messages-per-minute", "1", check=True)
            b, _ = raw_login(n, "bob")
            self.assertTrue(b.request("send", to="alice@example.org", msg_id="o1", body=b"x")["ok"])
            re = b.request("send", to="alice@example.org", msg_id="o2", body=b"x")
            self.assertEqual(re["code"], "rate_limited")
            self.assertGreater(re["retry_after_ms"], 50000)
            self.assertIn("node default", n.parleyd("user", "limit", "bob", "--default",
                                                    check=True).stdout)
            self.assertEqual(n.parleyd("user", "limit", "nobody").returncode, 4)
            self.assertEqual(n.parleyd("user", "limit", "bob", "--default",
                                       "--messages-per-minute", "5").returncode, 2)
            # SIGHUP: a new node default applies at once (bob follows it again).
            cfg = os.path.join(n.data, "config.toml")
            with open(cfg) as f:
                text = f.read()
            with open(cfg, "w") as f:
                f.write(text.replace("messages_per_minute = 60", "messages_per_minute = 0"))
            os.kill(n.proc.pid, signal.SIGHUP)
            wait_for(lambda: "event=reloaded" in n.logs(), what="reload")
            for i in range(10):
                self.assertTrue(b.request("send", to="alice@example.org", msg_id="r%d" % i,
                                          body=b"x")["ok"])
            a.close()
            b.close()
        finally:
            n.cleanup()


class Reports(unittest.TestCase):
    def test_report_round_trip_text_only_when_chosen_resolve_and_restart(self):
        n = Node(policy="organization", settings={"limits.reports_per_hour": "3"}).start()
        try:
            alice, bob = signed_in(n, "alice", "bob")
            secret = "buy cheap pills %s" % os.urandom(4).hex()
            bob.ok("send", alice.address, secret)
            alice.ok("send", bob.address, "my own")
            self.assertIn(secret, alice.ok("sync") + alice.ok("history", bob.address))
            hist = json.loads(alice.ok("history", bob.address, "--json"))
            theirs = [m for m in hist if m["from"] == bob.address][0]
            mine = [m for m in hist if m["from"] == alice.address][0]

            r = alice.ok("report", bob.address, str(theirs["cseq"]), "--reason", "spam REASON-X")
            self.assertIn("without the message's text", r)
            r = alice.ok("report", bob.address, "#%d" % theirs["cseq"], "--include-text")
            self.assertIn("with the message's text", r)
            own = alice.run("report", bob.address, str(mine["cseq"]))
            self.assertEqual(own.returncode, 5, own.stderr)
            self.assertEqual(alice.run("report", bob.address, "999").returncode, 5)

            listed = json.loads(n.parleyd("report", "list", "--json", check=True).stdout)
            self.assertEqual(len(listed), 2)
            first, second = listed
            for rep in listed:
                self.assertEqual(rep["reporter"], alice.address)
                self.assertEqual(rep["sender"], bob.address)
                self.assertEqual(rep["cseq"], theirs["cseq"])
                self.assertEqual(rep["msg_id"], theirs["msg_id"])
                self.assertEqual(rep["state"], "open")
                self.assertNotIn("text", rep)
            self.assertEqual((first["has_text"], second["has_text"]), (False, True))
            self.assertEqual(first["reason"], "spam REASON-X")
            one = json.loads(n.parleyd("report", "show", str(first["id"]), "--json",
                                       check=True).stdout)
            self.assertIsNone(one["text"])
            two = json.loads(n.parleyd("report", "show", str(second["id"]), "--json",
                                       check=True).stdout)
            self.assertEqual(two["text"], secret)
            self.assertIn(secret, n.parleyd("report", "show", str(second["id"]), check=True).stdout)
            self.assertIn("not shared", n.parleyd("report", "show", str(first["id"]),
                                                  check=True).stdout)
            self.assertEqual(n.parleyd("report", "show", "999").returncode, 4)

            n.parleyd("report", "resolve", str(first["id"]), "--note", "warned bob", check=True)
            self.assertEqual(n.parleyd("report", "resolve", str(first["id"])).returncode, 5)
            still_open = json.loads(n.parleyd("report", "list", "--open", "--json",
                                              check=True).stdout)
            self.assertEqual([r["id"] for r in still_open], [second["id"]])

            # Three reports per hour here: the fourth is rate limited (exit 7).
            alice.ok("report", bob.address, str(theirs["cseq"]))
            r = alice.run("report", bob.address, str(theirs["cseq"]))
            self.assertEqual(r.returncode, 7, r.stderr)
            self.assertIn("retry after", r.stderr)

            # Logs name the report, never its text or reason.
            self.assertIn("event=report_filed", n.logs())
            self.assertNotIn(secret, n.logs())
            self.assertNotIn("REASON-X", n.logs())

            # Reports survive a restart.
            n.stop()
            n.start()
            after = json.loads(n.parleyd("report", "list", "--json", check=True).stdout)
            self.assertEqual(len(after), 3)
            self.assertEqual(after[0]["state"], "resolved")
            self.assertEqual(after[0]["note"], "warned bob")
        finally:
            n.cleanup()

    def test_report_a_group_message(self):
        n = Node(policy="organization").start()
        try:
            alice, bob = signed_in(n, "alice", "bob")
            conv = json.loads(bob.ok("group", "create", "team", "--member", alice.address,
                                     "--json"))["conv"]
            bob.ok("group", "send", conv, "group spam")
            events = json.loads(alice.ok("history", conv, "--json"))
            msg = [e for e in events if e["kind"] == "message"][0]
            alice.ok("report", conv, msg["id"][:12], "--include-text", "--reason", "spam")
            rep = json.loads(n.parleyd("report", "list", "--json", check=True).stdout)[0]
            self.assertEqual((rep["conv"], rep["msg_id"], rep["sender"], rep["cseq"]),
                             (conv, msg["id"], bob.address, 0))
            shown = json.loads(n.parleyd("report", "show", str(rep["id"]), "--json",
                                         check=True).stdout)
            self.assertEqual(shown["text"], "group spam")
        finally:
            n.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
