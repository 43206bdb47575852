"""Integration tests: real parleyd processes on loopback driven by the parley CLI and raw sockets."""
import json
import re
import os
import tempfile
import signal
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Node, RawClient, User, mp_pack, spawn, wait_for  # noqa: E402

PW = "correct horse battery"


def befriend(a, b):
    a.ok("friend", "request", b.address)
    b.ok("friend", "accept", a.address)


class NodeLifecycle(unittest.TestCase):
    def test_init_refuses_overwrite_and_second_serve_refuses(self):
        node = Node()
        try:
            r = node.parleyd("init", "--name", "example.org")
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn("already holds a Parley node", r.stderr)
            st = os.stat(os.path.join(node.data, "node.key"))
            self.assertEqual(st.st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(os.path.join(node.data, "admin.token")).st_mode & 0o777, 0o600)
            node.start()
            r = node.parleyd("serve")
            self.assertEqual(r.returncode, 6, r.stderr)
            self.assertIn("already serving", r.stderr)
            self.assertEqual(node.stop(), 0)
            self.assertIn("event=stopped", node.logs())
        finally:
            node.cleanup()

    def test_admin_commands_and_clean_restart(self):
        node = Node().start()
        try:
            node.add_user("alice")
            r = node.parleyd("user", "add", "alice", "--password-stdin", input=PW + "\n")
            self.assertEqual(r.returncode, 5)
            self.assertIn("already exists", r.stderr)
            r = node.parleyd("user", "add", "Bad Name", "--password-stdin", input=PW + "\n")
            self.assertEqual(r.returncode, 5)
            users = json.loads(node.parleyd("user", "list", "--json", check=True).stdout)
            self.assertEqual([u["address"] for u in users], ["alice@example.org"])
            status = json.loads(node.parleyd("status", "--json", check=True).stdout)
            self.assertEqual(status["users"], 1)
            self.assertGreater(status["database_bytes"], 0)
            self.assertEqual(node.parleyd("user", "suspend", "nobody").returncode, 4)
            backup = os.path.join(node.dir, "backup")
            node.parleyd("backup", "create", backup, check=True)
            self.assertGreater(os.path.getsize(os.path.join(backup, "parley.db")), 0)
            self.assertEqual(node.stop(), 0)
            # Admin commands against a stopped node say so and exit 3.
            self.assertEqual(node.parleyd("user", "list").returncode, 3)
            node.start()
            users = json.loads(node.parleyd("user", "list", "--json", check=True).stdout)
            self.assertEqual(len(users), 1)
        finally:
            node.cleanup()

    def test_unsafe_exposure_is_refused(self):
        import subprocess, tempfile
        from harness import PARLEYD
        d = tempfile.mkdtemp(prefix="parley-it-")
        def init(sub, *extra):
            return subprocess.run([PARLEYD, "--data", os.path.join(d, sub), "init", "--name", "x.org"]
                                  + list(extra), capture_output=True, text=True, timeout=30)
        r = init("a", "--client-listen", "0.0.0.0:7420")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("allow_plaintext_remote", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "a", "config.toml")))
        r = init("b", "--admin-listen", "0.0.0.0:7422")
        self.assertEqual(r.returncode, 5, r.stderr)
        r = init("c", "--client-listen", "0.0.0.0:7420", "--allow-plaintext-remote")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_wrong_admin_token_is_refused(self):
        node = Node().start()
        try:
            with open(os.path.join(node.data, "admin.token"), "w") as f:
                f.write("wrong\n")
            r = node.parleyd("user", "list")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("admin token", r.stderr)
        finally:
            node.cleanup()


class Chat(unittest.TestCase):
    def setUp(self):
        self.node = Node().start()
        for n in ("alice", "bob", "carol"):
            self.node.add_user(n)
        self.alice = User(self.node, "alice")
        self.bob = User(self.node, "bob")
        self.carol = User(self.node, "carol")
        for u in (self.alice, self.bob, self.carol):
            r = u.login()
            self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        self.node.cleanup()

    def test_wrong_password_and_rate_limit(self):
        eve = User(self.node, "alice", device="eve")
        r = eve.login(password="wrong password")
        self.assertEqual(r.returncode, 4)
        for _ in range(5):
            eve.login(password="wrong password")
        r = eve.login()  # right password, but the address is rate limited now
        self.assertEqual(r.returncode, 4)
        self.assertIn("too many failed logins", r.stderr)

    def test_friends_policy_then_offline_delivery_in_order_with_receipts(self):
        r = self.alice.run("send", self.bob.address, "hello?")
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        befriend(self.alice, self.bob)
        for i in range(3):
            out = self.alice.ok("send", self.bob.address, "message %d" % i)
            self.assertRegex(out, r"SENT dm:[0-9a-f]{32} #%d msg_id=" % (i + 1))
        out = self.bob.ok("sync")
        msgs = [l for l in out.splitlines() if l.startswith("MSG")]
        self.assertEqual([m.split(": ", 1)[1] for m in msgs], ["message 0", "message 1", "message 2"])
        self.assertNotIn("MSG", self.bob.ok("sync"))  # acknowledged: nothing new
        out = self.alice.ok("sync")
        self.assertIn("RECEIPT", out)
        self.assertIn("delivered by bob@example.org", out)
        self.bob.ok("read", self.alice.address)
        out = self.alice.ok("sync")
        self.assertIn("read by bob@example.org", out)
        hist = json.loads(self.bob.ok("history", self.alice.address, "--json"))
        self.assertEqual([m["cseq"] for m in hist], [1, 2, 3])

    def test_idempotent_retry(self):
        befriend(self.alice, self.bob)
        first = self.alice.ok("send", self.bob.address, "once", "--msg-id", "m-1")
        again = self.alice.ok("send", self.bob.address, "once", "--msg-id", "m-1")
        self.assertIn("(duplicate)", again)
        self.assertEqual(first.split()[2], again.split()[2])  # same #cseq
        r = self.alice.run("send", self.bob.address, "different", "--msg-id", "m-1")
        self.assertEqual(r.returncode, 5)
        out = self.bob.ok("sync")
        self.assertEqual(sum(1 for l in out.splitlines() if l.startswith("MSG")), 1)

    def test_second_device_receives_everything(self):
        befriend(self.alice, self.bob)
        phone = User(self.node, "bob", device="phone")
        r = phone.login()
        self.assertEqual(r.returncode, 0)
        # A new device has its own keys but is not trusted until a device with the identity key
        # vouches for it; until then it cannot send and nobody encrypts to it.
        approve = re.search(r"parley devices approve (\d+)", r.stderr)
        self.assertTrue(approve, r.stderr)
        self.assertEqual(phone.run("send", self.alice.address, "too early").returncode, 5)
        devices = json.loads(self.bob.ok("devices", "--json"))
        self.assertEqual(sorted(d["trusted"] for d in devices), [False, True])
        self.bob.ok("devices", "approve", approve.group(1))
        self.assertTrue(all(d["trusted"] for d in json.loads(self.bob.ok("devices", "--json"))))
        self.alice.ok("send", self.bob.address, "to both devices")
        self.assertIn("to both devices", self.bob.ok("sync"))
        self.assertIn("to both devices", phone.ok("sync"))
        # What the phone sends reaches alice, and bob's laptop sees it as its own sent message.
        phone.ok("send", self.alice.address, "from the phone")
        self.assertIn("from the phone", self.alice.ok("sync"))
        self.assertIn("bob@example.org -> alice@example.org: from the phone", self.bob.ok("sync"))
        # The approved phone received the identity key: it can approve a third device itself.
        tablet = User(self.node, "bob", device="tablet")
        r = tablet.login()
        third = re.search(r"parley devices approve (\d+)", r.stderr)
        self.assertTrue(third, r.stderr)
        phone.ok("sync")  # (the hand-over arrives with the phone's next sync)
        phone.ok("devices", "approve", third.group(1))
        self.alice.ok("send", self.bob.address, "to three devices")
        for d in (self.bob, phone, tablet):
            self.assertIn("to three devices", d.ok("sync"))
        # The phone is lost: removed from the list, nothing is encrypted for it any more.
        self.bob.ok("devices", "remove", approve.group(1))
        self.alice.ok("send", self.bob.address, "after the phone was removed")
        self.assertIn("after the phone was removed", self.bob.ok("sync"))
        self.assertIn("[not decrypted: not encrypted for this device]", phone.ok("sync"))
        self.assertEqual(phone.run("send", self.alice.address, "still here?").returncode, 5)

    def test_conversation_list_pin_hide_delete(self):
        befriend(self.alice, self.bob)
        befriend(self.alice, self.carol)
        self.bob.ok("send", self.alice.address, "from bob")
        self.carol.ok("send", self.alice.address, "from carol")
        convs = json.loads(self.alice.ok("conversations", "--json"))
        self.assertEqual([c["peer"] for c in convs], ["carol@example.org", "bob@example.org"])
        self.assertEqual([c["unread"] for c in convs], [1, 1])
        self.alice.ok("pin", self.bob.address)
        convs = json.loads(self.alice.ok("conversations", "--json"))
        self.assertEqual(convs[0]["peer"], "bob@example.org")
        self.assertTrue(convs[0]["pinned"])
        self.alice.ok("hide", self.carol.address)
        convs = json.loads(self.alice.ok("conversations", "--json"))
        self.assertTrue([c for c in convs if c["peer"] == "carol@example.org"][0]["hidden"])
        self.carol.ok("send", self.alice.address, "unhide me")
        convs = json.loads(self.alice.ok("conversations", "--json"))
        self.assertFalse([c for c in convs if c["peer"] == "carol@example.org"][0]["hidden"])

    def test_suspend_kicks_live_session(self):
        raw = RawClient(self.node.client_port)
        re = raw.request("login", user=self.bob.address, password=PW, device="raw")
        self.assertTrue(re["ok"], re)
        self.node.parleyd("user", "suspend", "bob", check=True)
        frames = raw.closed_within(5)
        self.assertEqual(frames[-1]["t"], "bye")
        self.assertEqual(frames[-1]["code"], "suspended")
        r = self.bob.run("sync")
        self.assertEqual(r.returncode, 4)
        self.node.parleyd("user", "unsuspend", "bob", check=True)
        self.assertEqual(self.bob.run("sync").returncode, 0)

    def test_reset_password_ends_sessions(self):
        self.node.parleyd("user", "reset-password", "bob", "--password-stdin",
                          input="a new password\n", check=True)
        self.assertEqual(self.bob.run("sync").returncode, 4)
        self.assertEqual(self.bob.login(password="a new password").returncode, 0)

    def test_delete_user(self):
        befriend(self.alice, self.bob)
        self.alice.ok("send", self.bob.address, "before delete")
        self.node.parleyd("user", "delete", "bob", "--yes", check=True)
        self.assertEqual(self.bob.run("sync").returncode, 4)
        r = self.alice.run("send", self.bob.address, "after delete")
        self.assertEqual(r.returncode, 5)
        users = json.loads(self.node.parleyd("user", "list", "--json", check=True).stdout)
        self.assertNotIn("bob@example.org", [u["address"] for u in users])


class StorageLimit(unittest.TestCase):
    def test_a_full_database_refuses_new_messages_keeps_the_old_and_recovers(self):
        node = Node(policy="anyone", settings={"storage.max_database_mb": "1"}).start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            alice, bob = User(node, "alice"), User(node, "bob")
            for u in (alice, bob):
                self.assertEqual(u.login().returncode, 0)
            text = "%03d " + "x" * 20000
            sent, failure = 0, None
            for i in range(200):
                r = alice.run("send", bob.address, text % i)
                if r.returncode != 0:
                    failure = r
                    break
                sent += 1
            self.assertIsNotNone(failure, "the 1 MiB limit was never reached")
            self.assertGreater(sent, 2)
            self.assertIn("full", failure.stderr)
            # What was stored stays readable; the node keeps serving.
            got = [l for l in bob.ok("sync").splitlines() if l.startswith("MSG")]
            self.assertEqual(len(got), sent)
            self.assertIn("000 xxx", got[0])
            self.assertIn("users", node.parleyd("status", check=True).stdout.lower())
            # Space returns (the limit is lifted): the node takes new messages again.
            node.stop()
            cfg = os.path.join(node.data, "config.toml")
            with open(cfg) as f:
                content = f.read()
            with open(cfg, "w") as f:
                f.write(content.replace("max_database_mb = 1", "max_database_mb = 0"))
            node.start()
            alice.ok("send", bob.address, "after the limit")
            self.assertIn("after the limit", bob.ok("sync"))
        finally:
            node.cleanup()

    def test_read_only_or_full_storage_refuses_writes_serves_reads_and_recovers(self):
        # The database runs through the fault-injection VFS (storage.test_fault_file): writing
        # "readonly" to the control file makes every write fail as on a file system remounted
        # read-only (EIO/EROFS), "full" as on ENOSPC; removing it is the disk coming back.
        fault = os.path.join(tempfile.mkdtemp(prefix="parley-fault-"), "fault")
        node = Node(policy="anyone",
                    settings={"storage.test_fault_file": '"%s"' % fault}).start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            alice, bob = User(node, "alice"), User(node, "bob")
            for u in (alice, bob):
                self.assertEqual(u.login().returncode, 0)
            for i in range(3):
                alice.ok("send", bob.address, "before %d" % i)
            for word, expect in (("readonly", "read-only"), ("full", "full")):
                with open(fault, "w") as f:
                    f.write(word)
                r = alice.run("send", bob.address, "refused while " + word)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertIn(expect, r.stderr.lower())
                # Reads and session resumes go on (a new device's login is a write and is
                # refused with the same clear error).
                r = bob.login()
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(expect, r.stderr.lower())
                bob.ok("sync")
                hist = bob.ok("history", alice.address)
                for i in range(3):
                    self.assertIn("before %d" % i, hist)
                self.assertIn("users", node.parleyd("status", check=True).stdout.lower())
                os.remove(fault)
                # The disk is back: the same node, without a restart, takes messages again.
                alice.ok("send", bob.address, "after " + word)
            node.stop()
            node.start()
            hist = alice.ok("history", bob.address)
            for text in ("before 0", "before 1", "before 2", "after readonly", "after full"):
                self.assertEqual(hist.count(text), 1, hist)
            self.assertNotIn("refused while", hist)
            self.assertIn("fault_injection", node.logs())
        finally:
            node.cleanup()


class Live(unittest.TestCase):
    def test_listen_gets_live_pushes_and_sender_waits_for_receipts(self):
        import subprocess
        from harness import PARLEY
        node = Node(policy="organization", heartbeat=2).start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            alice, bob = User(node, "alice"), User(node, "bob")
            alice.login()
            bob.login()
            # listen must outlive several 2 s heartbeat windows by pinging on its own.
            listener = spawn([PARLEY, "--profile", bob.profile, "listen", "--json",
                              "--count", "2"], stdout=subprocess.PIPE, text=True)
            time.sleep(5)
            out = alice.ok("send", bob.address, "first", "--wait", "delivered", "--timeout", "10")
            self.assertIn("RECEIPT", out)
            self.assertIn("delivered", out)
            alice.ok("send", bob.address, "second")
            stdout, _ = listener.communicate(timeout=20)
            self.assertEqual(listener.returncode, 0)
            texts = [json.loads(l)["text"] for l in stdout.splitlines() if '"kind":"msg"' in l]
            self.assertEqual(texts, ["first", "second"])
        finally:
            node.cleanup()


class Blocks(unittest.TestCase):
    def test_blocked_sender_learns_nothing(self):
        node = Node(policy="organization").start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            alice, bob = User(node, "alice"), User(node, "bob")
            alice.login()
            bob.login()
            bob.ok("block", alice.address)
            self.assertIn("alice@example.org", bob.ok("blocks"))
            out = alice.ok("send", bob.address, "can you see this")
            self.assertIn("SENT", out)
            alice.run("friend", "request", bob.address)
            self.assertNotIn("can you see this", bob.ok("sync"))
            friends = json.loads(bob.ok("friend", "list", "--json"))
            self.assertEqual(friends["incoming"], [])
            time.sleep(0.2)
            self.assertNotIn("RECEIPT", alice.ok("sync"))
            bob.ok("unblock", alice.address)
            alice.ok("send", bob.address, "after unblock")
            out = bob.ok("sync")
            self.assertIn("after unblock", out)
            self.assertNotIn("can you see this", out)
        finally:
            node.cleanup()


class Gateway(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node(heartbeat=2).start()
        cls.node.add_user("alice")

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_heartbeat_eviction_and_ping_keeps_alive(self):
        silent = RawClient(self.node.client_port)
        pinger = RawClient(self.node.client_port)
        start = time.time()
        for _ in range(6):
            self.assertTrue(pinger.request("ping")["ok"])
            time.sleep(0.5)
        frames = silent.closed_within(5)
        self.assertEqual(frames[-1], {"t": "bye", "code": "heartbeat_timeout",
                                      "msg": frames[-1]["msg"]})
        self.assertLess(time.time() - start, 6)
        self.assertTrue(pinger.request("ping")["ok"])  # the pinger survived

    def test_malformed_and_oversize_frames_close_only_that_connection(self):
        bystander = RawClient(self.node.client_port)
        self.assertTrue(bystander.request("login", user="alice@example.org", password=PW)["ok"])
        bad = RawClient(self.node.client_port)
        bad.send_raw(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
        frames = bad.closed_within(5)
        self.assertEqual(frames[-1]["code"], "malformed_frame")
        big = RawClient(self.node.client_port)
        big.send_raw(struct.pack(">I", 100 * 1024 * 1024))
        frames = big.closed_within(5)
        self.assertEqual(frames[-1]["code"], "frame_too_large")
        notmap = RawClient(self.node.client_port)
        payload = mp_pack([1, 2, 3])
        notmap.send_raw(struct.pack(">I", len(payload)) + payload)
        self.assertEqual(notmap.closed_within(5)[-1]["code"], "malformed_frame")
        self.assertTrue(bystander.request("ping")["ok"])
        re = bystander.request("send", to="alice@example.org", msg_id="x", body=b"self")
        self.assertEqual(re["code"], "bad_request")
        re = bystander.request("frobnicate")
        self.assertEqual(re["code"], "bad_request")
        self.assertTrue(bystander.request("ping")["ok"])

    def test_requests_before_login_are_refused(self):
        c = RawClient(self.node.client_port)
        re = c.request("convs")
        self.assertEqual(re["code"], "unauthenticated")
        # A type the node does not know is refused the same way before login (nothing tells an
        # unauthenticated peer which requests exist); after login it is bad_request.
        re = c.request("frobnicate")
        self.assertEqual(re["code"], "unauthenticated")
        re = c.request("resume", token="not-a-token")
        self.assertEqual(re["code"], "bad_credentials")
        self.assertTrue(c.request("ping")["ok"])  # the connection is kept throughout

    def test_second_login_or_resume_on_an_authenticated_connection(self):
        c = RawClient(self.node.client_port)
        first = c.request("login", user="alice@example.org", password=PW, device="one")
        self.assertTrue(first["ok"], first)
        again = c.request("login", user="alice@example.org", password=PW, device="two")
        self.assertEqual((again["ok"], again["code"]), (False, "bad_request"))
        other = RawClient(self.node.client_port)
        token = other.request("login", user="alice@example.org", password=PW)["token"]
        re = c.request("resume", token=token)
        self.assertEqual((re["ok"], re["code"]), (False, "bad_request"))
        # Still authenticated as the first device: no second device was made.
        re = c.request("frobnicate")
        self.assertEqual(re["code"], "bad_request")
        self.assertTrue(c.request("convs")["ok"])
        sessions = json.loads(self.node.parleyd("user", "sessions", "alice", "--all", "--json",
                                                check=True).stdout)
        labels = [s["label"] for s in sessions]
        self.assertIn("one", labels)
        self.assertNotIn("two", labels)

    def test_too_many_requests_while_logging_in_is_slow_consumer(self):
        # A real password hash, so the login is still being verified when the node has read
        # every frame (with test-only hashing it may finish first on a slow machine).
        node = Node(settings={"security.password_hash": '"interactive"'}).start()
        self.addCleanup(node.cleanup)
        node.add_user("alice")
        c = RawClient(node.client_port)
        frames = [dict(t="login", id=1, user="alice@example.org", password=PW)]
        frames += [dict(t="ping", id=2 + i) for i in range(70)]
        data = b""
        for f in frames:
            payload = mp_pack(f)
            data += struct.pack(">I", len(payload)) + payload
        c.send_raw(data)  # one write: the node has them all before the password is checked
        got = c.closed_within(5)
        self.assertEqual(got[-1]["t"], "bye")
        self.assertEqual(got[-1]["code"], "slow_consumer")
        self.assertFalse(any(f.get("t") == "re" and f.get("id", 0) > 1 for f in got), got)

    def test_oversize_body_is_refused_and_connection_kept(self):
        c = RawClient(self.node.client_port)
        self.assertTrue(c.request("login", user="alice@example.org", password=PW)["ok"])
        re = c.request("send", to="bob@example.org", msg_id="big", body=b"x" * (65 * 1024))
        self.assertEqual(re["code"], "payload_too_large")
        self.assertTrue(c.request("ping")["ok"])


class DirectoryLimit(unittest.TestCase):
    def test_lookup_limit_answers_retry_after_ms(self):
        node = Node().start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            c = RawClient(node.client_port)
            self.assertTrue(c.request("login", user="alice@example.org", password=PW)["ok"])
            for i in range(30):  # the minute's budget of users that do not exist
                re = c.request("lookup", address="ghost%d@example.org" % i)
                self.assertEqual((re["ok"], re["exists"]), (True, False), re)
            started = time.time()
            for t, fields in (("lookup", {"address": "ghost99@example.org"}),
                              ("lookup", {"address": "bob@example.org"}),  # any lookup
                              ("keys_query", {"address": "bob@example.org"})):
                re = c.request(t, **fields)
                self.assertEqual((re["ok"], re["code"]), (False, "rate_limited"), re)
                self.assertTrue(0 < re["retry_after_ms"] <= 60000, re)
                self.assertGreater(re["retry_after_ms"], 60000 - (time.time() - started) * 1000
                                   - 5000, re)
            # Another user has a budget of their own.
            other = RawClient(node.client_port)
            self.assertTrue(other.request("login", user="bob@example.org", password=PW)["ok"])
            self.assertTrue(other.request("lookup", address="alice@example.org")["exists"])
        finally:
            node.cleanup()


class SlowConsumer(unittest.TestCase):
    def test_reader_that_never_reads_is_dropped_and_memory_stays_bounded(self):
        node = Node(policy="organization", max_outbound=16).start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            sleepy = RawClient(node.client_port, rcvbuf=4096)
            self.assertTrue(sleepy.request("login", user="bob@example.org", password=PW)["ok"])
            sender = RawClient(node.client_port)
            self.assertTrue(sender.request("login", user="alice@example.org", password=PW)["ok"])
            body = b"x" * (60 * 1024)
            for i in range(300):  # ~18 MB towards a reader that never reads
                re = sender.request("send", to="bob@example.org", msg_id="s%d" % i, body=body)
                self.assertTrue(re["ok"], re)
            status = json.loads(node.parleyd("status", "--json", check=True).stdout)
            self.assertLessEqual(status["outbound_queued_frames"], 17)
            self.assertIn("event=slow_consumer", node.logs())
            frames = sleepy.closed_within(10)  # drain what the kernel buffered; then it is closed
            self.assertLess(len(frames), 300)
            self.assertTrue(sender.request("ping")["ok"])
            # Nothing was lost: bob's next session gets every message from its cursor.
            bob = User(node, "bob", device="second")
            self.assertEqual(bob.login().returncode, 0)
            hist = json.loads(bob.ok("history", "alice@example.org", "--json", "--limit", "1000"))
            self.assertEqual(len(hist), 300)
        finally:
            node.cleanup()


class Federation(unittest.TestCase):
    def test_key_document_and_peer_entries(self):
        import urllib.request
        from harness import mp_unpack
        a = Node(name="a.example", federation=True).start()
        b = Node(name="b.example", federation=True).start()
        plain = Node(name="c.example").start()
        try:
            key = a.parleyd("key", "show", check=True).stdout.strip().splitlines()[-1]
            self.assertTrue(key.startswith("ed25519:"))
            url = "http://127.0.0.1:%d" % a.fed_port
            b.parleyd("peer", "add", "a.example", url, "--key", key, check=True)
            peers = json.loads(b.parleyd("peer", "list", "--json", check=True).stdout)
            self.assertEqual([(p["name"], p["key"], p["state"]) for p in peers],
                             [("a.example", key, "allowed")])
            b.parleyd("peer", "deny", "a.example", check=True)
            st = json.loads(b.parleyd("peer", "status", "a.example", "--json", check=True).stdout)
            self.assertEqual(st["state"], "denied")
            b.parleyd("peer", "allow", "a.example", check=True)
            self.assertEqual(b.parleyd("peer", "add", "bad_name", url).returncode, 5)
            self.assertEqual(b.parleyd("peer", "add", "x.example", url, "--key", "ed25519:short").returncode, 5)
            self.assertEqual(b.parleyd("peer", "remove", "nobody.example").returncode, 4)
            # Without federation.allow_plaintext_http a node refuses http:// peers.
            r = plain.parleyd("peer", "add", "a.example", url)
            self.assertEqual(r.returncode, 5)
            self.assertIn("allow_plaintext_http", r.stderr)
            # The key document is self-signed and names the node's current key.
            raw = urllib.request.urlopen(url + "/federation/v1/key", timeout=10).read()
            outer = mp_unpack(raw)[0]
            self.assertEqual(len(outer["sig"]), 64)
            doc = mp_unpack(outer["doc"])[0]
            self.assertEqual(doc["name"], "a.example")
            self.assertEqual(doc["keys"][0]["key"], key)
            self.assertEqual(doc["keys"][0]["until_ms"], 0)
        finally:
            for n in (a, b, plain):
                n.cleanup()


class KeyRotation(unittest.TestCase):
    def test_rotate_keeps_old_key_listed_and_refuses_while_serving(self):
        import urllib.request
        from harness import mp_unpack
        node = Node(name="a.example", federation=True)
        try:
            k1 = node.parleyd("key", "show", check=True).stdout.strip().splitlines()[-1]
            r = node.parleyd("key", "rotate", check=True)
            k2 = r.stdout.strip().splitlines()[-1]
            self.assertTrue(k2.startswith("ed25519:"))
            self.assertNotEqual(k1, k2)
            self.assertEqual(node.parleyd("key", "show", check=True).stdout.strip().splitlines()[-1], k2)
            self.assertEqual(os.stat(os.path.join(node.data, "node.key")).st_mode & 0o777, 0o600)
            node.start()
            self.assertEqual(node.parleyd("key", "rotate").returncode, 6)
            raw = urllib.request.urlopen("http://127.0.0.1:%d/federation/v1/key" % node.fed_port,
                                         timeout=10).read()
            keys = {k["key"]: k for k in mp_unpack(mp_unpack(raw)[0]["doc"])[0]["keys"]}
            self.assertEqual(set(keys), {k1, k2})
            self.assertGreater(keys[k1]["until_ms"], 0)
            self.assertEqual(keys[k2]["until_ms"], 0)
            # The new key is endorsed by the old one, so peers that pinned k1 follow the rotation.
            self.assertEqual(len(keys[k2]["prev_sig"]), 64)
            self.assertNotIn("prev_sig", keys[k1])
        finally:
            node.cleanup()


class FederationRefusals(unittest.TestCase):
    def test_bad_requests_get_clear_statuses(self):
        import base64
        import urllib.error
        import urllib.request
        node = Node(name="b.example", federation=True).start()
        try:
            node.parleyd("peer", "deny", "evil.example", check=True)
            url = "http://127.0.0.1:%d/federation/v1/send/1-1" % node.fed_port
            b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")

            def put(auth, body=b"\x80", extra=None):
                req = urllib.request.Request(url, data=body, method="PUT")
                if auth is not None:
                    req.add_header("Authorization", auth)
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, json.loads(e.read() or b"{}").get("code")

            def header(origin="a.example", dest="b.example", ts=None):
                ts = int(time.time() * 1000) if ts is None else ts
                return ("Parley-Sig v=1,origin=%s,dest=%s,ts=%d,nonce=%s,key=ed25519:%s,sig=%s"
                        % (origin, dest, ts, b64(os.urandom(16)), b64(os.urandom(32)),
                           b64(os.urandom(64))))

            self.assertEqual(put(None), (400, "malformed_signature"))
            self.assertEqual(put("Parley-Sig v=1,origin=x"), (400, "malformed_signature"))
            self.assertEqual(put(header(dest="c.example")), (421, "wrong_destination"))
            self.assertEqual(put(header(ts=1)), (401, "stale_timestamp"))
            # A signature that does not verify is refused before anything is looked up about
            # the origin (spec/federation.md §2): no key document is fetched for a forgery.
            self.assertEqual(put(header(origin="unknown.example")), (401, "bad_signature"))
            self.assertEqual(put(header(origin="evil.example")), (403, "denied"))
            self.assertEqual(put(header(), body=b"x" * (5 << 20))[0], 413)
            self.assertIn("event=federation_refused", node.logs())
        finally:
            node.cleanup()


class CrossNode(unittest.TestCase):
    def test_friends_and_messages_across_nodes_survive_a_peer_outage(self):
        a = Node(name="a.example", federation=True).start()
        b = Node(name="b.example", federation=True).start()
        try:
            a.add_user("alice")
            b.add_user("bob")
            # b pins a's key from `key show`; a pins b's on first contact.
            a_key = a.parleyd("key", "show", check=True).stdout.strip().splitlines()[-1]
            a.parleyd("peer", "add", "b.example", "http://127.0.0.1:%d" % b.fed_port, check=True)
            b.parleyd("peer", "add", "a.example", "http://127.0.0.1:%d" % a.fed_port,
                      "--key", a_key, check=True)
            alice, bob = User(a, "alice"), User(b, "bob")
            self.assertEqual(alice.login().returncode, 0)
            self.assertEqual(bob.login().returncode, 0)

            alice.ok("friend", "request", "bob@b.example")
            wait_for(lambda: "FRIEND request alice@a.example" in bob.ok("sync"), what="request")
            bob.ok("friend", "accept", "alice@a.example")
            wait_for(lambda: "FRIEND accepted bob@b.example" in alice.ok("sync"), what="accept")
            # a pinned b's key on first contact (b had no --key on a's side).
            peers = json.loads(a.parleyd("peer", "list", "--json", check=True).stdout)
            self.assertTrue(peers[0]["key"].startswith("ed25519:"))

            alice.ok("send", "bob@b.example", "hello across")
            wait_for(lambda: "hello across" in bob.ok("sync"), what="first message")
            # bob's device acknowledged it: the delivered receipt crosses back to alice.
            seen = []
            wait_for(lambda: seen.append(alice.ok("sync")) or
                     "delivered by bob@b.example" in "".join(seen), what="delivered receipt")
            bob.ok("read", "alice@a.example")
            wait_for(lambda: seen.append(alice.ok("sync")) or
                     "read by bob@b.example" in "".join(seen), what="read receipt")
            hist = json.loads(alice.ok("history", "bob@b.example", "--json"))
            self.assertEqual(hist[-1]["status"], "read")

            self.assertEqual(b.stop(), 0)
            for i in range(3):
                alice.ok("send", "bob@b.example", "while down %d" % i)
            st = wait_for(lambda: (lambda p: p if p["queued"] == 3 and p["last_error"] else None)(
                json.loads(a.parleyd("peer", "status", "b.example", "--json", check=True).stdout)),
                what="queue with error")
            self.assertGreater(st["failures"], 0)
            status = json.loads(a.parleyd("status", "--json", check=True).stdout)
            self.assertEqual(status["federation_queued"], 3)
            self.assertEqual(status["federation_peers_failing"], 1)
            self.assertGreaterEqual(status["federation_oldest_queued_seconds"], 0)
            b.start()
            wait_for(lambda: json.loads(a.parleyd("peer", "status", "b.example", "--json",
                                                  check=True).stdout)["queued"] == 0,
                     timeout=60, what="queue drained")
            out = bob.ok("sync")
            got = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("MSG")]
            self.assertEqual(got, ["while down 0", "while down 1", "while down 2"])
            self.assertNotIn("MSG", bob.ok("sync"))
        finally:
            a.cleanup()
            b.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
