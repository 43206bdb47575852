"""End-to-end encryption with real processes: nodes and the federation traffic never hold a
message's plaintext or a user's private key; identity changes block sending until accepted;
safety numbers agree."""
import json
import os
import sqlite3
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

from harness import BackgroundHttp, Node, User, befriend_across, two_nodes, wait_for


class RecordingProxy(BackgroundHttp):
    """Forwards federation requests to a node and keeps every body that passed, both ways."""

    def __init__(self, target_port):
        self.bodies = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if body:
                    proxy.bodies.append(body)
                req = urllib.request.Request("http://127.0.0.1:%d%s" % (target_port, self.path),
                                             data=body, method=self.command)
                for h in ("Authorization", "Content-Type"):
                    if self.headers.get(h):
                        req.add_header(h, self.headers[h])
                try:
                    with urllib.request.urlopen(req, timeout=20) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("Content-Type")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type")
                proxy.bodies.append(data)
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = forward

        self.serve(Handler)


def files_under(path):
    for root, _, names in os.walk(path):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                yield os.path.join(root, n), f.read()


class NoPlaintextOnNodes(unittest.TestCase):
    def test_known_plaintexts_appear_only_on_the_devices(self):
        proxies = {}

        def through_proxy(node):  # every federation request to `node` is recorded
            proxies[node.name] = RecordingProxy(node.fed_port)
            return proxies[node.name].url
        a, b, alice, bob = two_nodes(url_of=through_proxy)
        to_a, to_b = proxies["a.example"], proxies["b.example"]
        try:
            befriend_across(alice, bob)

            secrets = ["MARKER-%s-%d" % (os.urandom(6).hex(), i) for i in range(4)]
            alice.ok("send", "bob@b.example", secrets[0])
            alice.ok("send", "bob@b.example", secrets[1])
            seen = []
            wait_for(lambda: seen.append(bob.ok("sync")) or
                     all(s in "".join(seen) for s in secrets[:2]), what="bob decrypts")
            bob.ok("send", "alice@a.example", secrets[2])
            bob.ok("send", "alice@a.example", secrets[3])
            wait_for(lambda: seen.append(alice.ok("sync")) or
                     all(s in "".join(seen) for s in secrets[2:]), what="alice decrypts")
            hist = json.loads(alice.ok("history", "bob@b.example", "--json"))
            self.assertEqual([m["text"] for m in hist], secrets)
            self.assertTrue(all(m["e2e"] == "ok" for m in hist))

            # The devices' private keys, read from their profiles.
            private = []
            for u in (alice, bob):
                db = sqlite3.connect(os.path.join(u.profile, "profile.db"))
                private += [v for (v,) in db.execute(
                    "SELECT value FROM e2e_self WHERE key IN "
                    "('device_seed', 'device_dh', 'identity_seed')")]
                private += [v for (v,) in db.execute("SELECT private FROM e2e_prekeys")]
                db.close()
            self.assertGreaterEqual(len(private), 200)
            needles = [s.encode() for s in secrets] + [bytes(k) for k in private]

            # The search finds what is there: the devices' own profiles hold the plaintext.
            profile_bytes = b"".join(d for _, d in files_under(alice.profile))
            self.assertIn(secrets[0].encode(), profile_bytes)
            for node in (a, b):
                node.stop()  # flush the WAL and logs as they are
            self.assertGreater(len(to_a.bodies) + len(to_b.bodies), 4)
            haystacks = [("federation body", body) for body in to_a.bodies + to_b.bodies]
            for node in (a, b):
                haystacks += list(files_under(node.data))
                with open(node.log_path, "rb") as f:
                    haystacks.append(("log", f.read()))
            for where, data in haystacks:
                for n in needles:
                    self.assertNotIn(n, data, "found a plaintext or private key in %s" % where)
        finally:
            a.cleanup()
            b.cleanup()
            to_a.close()
            to_b.close()


class IdentityChanges(unittest.TestCase):
    def test_changed_identity_blocks_sending_until_accepted_and_numbers_agree(self):
        node = Node(policy="anyone").start()
        try:
            node.add_user("alice")
            node.add_user("bob")
            alice, bob = User(node, "alice"), User(node, "bob")
            self.assertEqual(alice.login().returncode, 0)
            self.assertEqual(bob.login().returncode, 0)
            alice.ok("send", bob.address, "first")
            self.assertIn("first", bob.ok("sync"))
            number = lambda u, peer: u.ok("verify", peer).strip().splitlines()[-1]
            n1 = number(alice, bob.address)
            self.assertRegex(n1, r"^(\d{5} ){11}\d{5}$")
            self.assertEqual(n1, number(bob, alice.address))

            # Bob lost every device: a new one with a new identity key.
            new_bob = User(node, "bob", device="new-phone")
            r = new_bob.run("login", bob.address, "--server", "127.0.0.1:%d" % node.client_port,
                            "--password-stdin", "--device", "new-phone", "--new-identity",
                            input=bob.password + "\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = alice.run("send", bob.address, "are you still you?")
            self.assertEqual(r.returncode, 5)
            self.assertIn("identity key of bob@example.org changed", r.stderr)
            self.assertIn("parley trust bob@example.org", r.stderr)
            n2 = number(alice, bob.address)
            self.assertNotEqual(n1, n2)
            self.assertEqual(n2, number(new_bob, alice.address))
            alice.ok("trust", bob.address)
            alice.ok("send", bob.address, "welcome back")
            self.assertIn("welcome back", new_bob.ok("sync"))
            # The old device is no longer in bob's list: nothing is encrypted for it.
            self.assertIn("[not decrypted: not encrypted for this device]", bob.ok("sync"))
        finally:
            node.cleanup()


class PrekeyRotation(unittest.TestCase):
    def test_rotated_signed_prekey_serves_new_sessions_and_old_ones_continue(self):
        node = Node(policy="anyone").start()
        try:
            for name in ("alice", "bob", "carol"):
                node.add_user(name)
            alice, bob, carol = (User(node, n) for n in ("alice", "bob", "carol"))
            for u in (alice, bob, carol):
                self.assertEqual(u.login().returncode, 0)
            alice.ok("send", bob.address, "before rotation")
            self.assertIn("before rotation", bob.ok("sync"))
            bob.ok("keys", "rotate")
            carol.ok("send", bob.address, "new session after rotation")
            alice.ok("send", bob.address, "old session after rotation")
            out = bob.ok("sync")
            self.assertIn("new session after rotation", out)
            self.assertIn("old session after rotation", out)
            bob.ok("send", carol.address, "reply")
            self.assertIn("reply", carol.ok("sync"))
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
