"""Federation against hostile and real peers: a fake node signing arbitrary requests, key rotation,
admission control, discovery and HTTPS between real parleyd processes."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from fakenode import FakeNode
from harness import Node, RawClient, User, befriend_across, free_port, mp_pack, two_nodes, wait_for

PW = "correct horse battery"


def dm_id(a, b):
    lo, hi = sorted([a, b])
    return "dm:" + hashlib.blake2b(b"parley-dm-v1\0" + lo.encode() + b"\0" + hi.encode(),
                                   digest_size=16).hexdigest()


def peers(node):
    return {p["name"]: p for p in json.loads(node.parleyd("peer", "list", "--json", check=True).stdout)}


class FakeNodeCase(unittest.TestCase):
    """b.example (real, `anyone` may message bob unless `policy` says otherwise) and f.example
    (fake, key k1 pinned by b)."""
    settings = {}
    policy = "anyone"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="parley-fake-")
        self.fake = FakeNode("f.example", self.tmp)
        self.k1 = self.fake.keygen("k1")
        self.fake.publish("k1")
        settings = {"federation.discovery_url":
                    '"%s/{name}/.well-known/parley"' % self.fake.url}
        settings.update(self.settings)
        self.b = Node(name="b.example", policy=self.policy, federation=True,
                      settings=settings).start()
        self.b.add_user("bob")
        self.bob = User(self.b, "bob")
        self.assertEqual(self.bob.login().returncode, 0)
        self.b.parleyd("peer", "add", "f.example", self.fake.url, "--key", self.k1, check=True)

    def tearDown(self):
        self.b.cleanup()
        self.fake.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def msg(self, n, sender="mallory@f.example", to="bob@b.example", conv=None):
        return {"type": "msg", "from": sender, "to": to, "conv": conv or dm_id(sender, to),
                "msg_id": "m%d" % n, "from_device": 1, "body": b"ciphertext %d" % n, "sent_ms": 1}

    def send(self, payloads, key="k1", origin=None, body_origin=None, ts=None, tamper=False):
        path, body = self.fake.transaction(payloads, origin=body_origin)
        auth = self.fake.sign(key, "PUT", path, "b.example", body, origin=origin, ts=ts)
        if tamper:
            body = body.replace(b"ciphertext", b"CIPHERTEXT")
        return FakeNode.call(self.b.fed_port, "PUT", path, body, auth)

    def bob_messages(self):
        return [l for l in self.bob.ok("sync").splitlines() if l.startswith("MSG")]


class HostileRequests(FakeNodeCase):
    def test_each_forgery_is_refused_with_its_status_and_nothing_is_applied(self):
        status, answer, _ = self.send([self.msg(1)])
        self.assertEqual(status, 200)
        self.assertEqual(answer["applied_upto"], 1)
        self.assertEqual(len(self.bob_messages()), 1)

        # Replay: the very same request (same nonce) is refused.
        path, body = self.fake.transaction([self.msg(2)])
        auth = self.fake.sign("k1", "PUT", path, "b.example", body)
        self.assertEqual(FakeNode.call(self.b.fed_port, "PUT", path, body, auth)[0], 200)
        self.assertEqual(FakeNode.call(self.b.fed_port, "PUT", path, body, auth)[:2],
                         (409, "replayed"))
        # A resent transaction (fresh signature, same event ids) gets the stored answer only.
        auth = self.fake.sign("k1", "PUT", path, "b.example", body)
        status, answer, _ = FakeNode.call(self.b.fed_port, "PUT", path, body, auth)
        self.assertEqual((status, answer["applied_upto"]), (200, 2))
        self.assertEqual(len(self.bob_messages()), 1)  # m2 once, nothing more

        self.assertEqual(self.send([self.msg(3)], tamper=True)[:2], (401, "bad_signature"))
        self.assertEqual(self.send([self.msg(3)], ts=int(time.time() * 1000) - 600_000)[:2],
                         (401, "stale_timestamp"))
        # Forged origin: f.example's key claiming to be a.example, whose pinned key differs.
        other = self.fake.keygen("other")
        self.b.parleyd("peer", "add", "a.example", self.fake.url, "--key", other, check=True)
        self.assertEqual(self.send([self.msg(3)], origin="a.example")[:2], (401, "unknown_key"))
        # Signed by f.example but the body claims another origin.
        self.assertEqual(self.send([self.msg(3)], body_origin="a.example")[:2], (403, "forbidden"))
        # A node speaks only for its users...
        self.assertEqual(self.send([self.msg(3, sender="alice@a.example")])[:2], (403, "forbidden"))
        # ...and cannot write into a conversation it is not part of. The valid event before it in
        # the same transaction is not applied either.
        self.b.add_user("carol")
        foreign = dm_id("carol@b.example", "bob@b.example")
        self.assertEqual(self.send([self.msg(4), self.msg(5, conv=foreign)])[:2],
                         (403, "forbidden"))
        self.assertEqual(self.bob_messages(), [])
        # An unknown node: discovered (the fake web server answers for any name) but its key
        # document names f.example, so no key is known for u.example.
        self.assertEqual(self.send([self.msg(6)], origin="u.example")[:2], (401, "unknown_key"))
        # Oversize batch.
        self.assertEqual(self.send([self.msg(7 + i) for i in range(1001)])[0], 413)
        # Denied peer, then allowed again.
        self.b.parleyd("peer", "deny", "f.example", check=True)
        self.assertEqual(self.send([self.msg(8)])[:2], (403, "denied"))
        self.b.parleyd("peer", "allow", "f.example", check=True)
        self.assertEqual(self.send([self.msg(9)])[0], 200)
        self.assertEqual(len(self.bob_messages()), 1)
        logs = self.b.logs()
        self.assertIn("event=federation_refused code=bad_signature", logs)
        self.assertNotIn("ciphertext", logs)

    def test_rotation_followed_through_endorsements_and_refused_without(self):
        k2 = self.fake.keygen("k2")
        self.fake.publish("k1", "k2")  # k2 endorsed by k1
        self.assertEqual(self.send([self.msg(1)], key="k2")[0], 200)
        self.assertEqual(peers(self.b)["f.example"]["key"], k2)
        self.assertIn("event=peer_key_rotated peer=f.example", self.b.logs())
        # k1 expired a minute ago (fedtool's document): a request signed with it now is refused.
        self.assertEqual(self.send([self.msg(2)], key="k1")[:2], (401, "unknown_key"))

        # A new key that k2 did not endorse (a hijacked host, say): refused, logged loudly.
        k3 = self.fake.keygen("k3")
        self.fake.publish("k1", "k2", "k3", endorse=False)
        self.assertEqual(self.send([self.msg(3)], key="k3")[:2], (401, "unknown_key"))
        self.assertIn("level=error event=peer_key_mismatch peer=f.example", self.b.logs())
        self.assertEqual(peers(self.b)["f.example"]["key"], k2)
        # The admin checks the key out of band and accepts it.
        self.b.parleyd("peer", "add", "f.example", self.fake.url, "--key", k3, check=True)
        self.assertEqual(self.send([self.msg(4)], key="k3")[0], 200)
        self.assertEqual(len(self.bob_messages()), 2)


class DirectMessageClocks(FakeNodeCase):
    """ordering.md section 7: a 1:1 message's clock names only the two nodes, its origin's entry
    goes up, it counts no message the receiver never sent, does not regress from the origin's
    previous message, and adds up to less than 2^53. Anything else is acknowledged and dropped
    (counted), and the receiver's clock never takes it in."""

    def clocked(self, n, clock, actor="f.example#0"):
        m = self.msg(n)
        m["clock"] = clock
        m["actor"] = actor
        return m

    def history(self, raw):
        conv = dm_id("mallory@f.example", "bob@b.example")
        re = raw.request("history", conv=conv, limit=50)
        self.assertTrue(re["ok"], re)
        return [(m["msg_id"], m["ord"]) for m in re["messages"]]

    def test_invalid_clocks_are_dropped_and_never_merged(self):
        raw = RawClient(self.b.client_port, timeout=30)
        self.assertTrue(raw.request("login", user="bob@b.example", password=PW, device="raw")["ok"])
        self.assertEqual(self.send([self.clocked(1, {"f.example#0": 1})])[0], 200)
        for i in (1, 2):
            re = raw.request("send", to="mallory@f.example", msg_id="bob-%d" % i, body=b"x")
            self.assertTrue(re["ok"], re)
        top = 2 ** 64 - 1
        bad = [
            self.clocked(2, {"f.example#0": 2, "x.example#0": 5}),      # a foreign actor
            self.clocked(3, {"f.example#0": top}),                      # near 2^64
            self.clocked(4, {"f.example#0": 2, "f.example#1": top - 1}),  # the sum wraps to 0
            self.clocked(5, {"f.example#0": 2, "b.example#0": 9}),      # bob sent 2, not 9
            self.clocked(6, {"f.example#0": 1, "b.example#0": 2}),      # f's entry does not go up
            self.clocked(7, {"f.example#0": 2}, actor="a.example#0"),   # not the origin's actor
        ]
        status, answer, _ = self.send(bad)
        self.assertEqual((status, answer["applied_upto"]), (200, 7))
        self.assertEqual(self.send([self.clocked(8, {"f.example#0": 2, "b.example#0": 2})])[0], 200)
        # Regression: f's next message forgets bob's two messages it had acknowledged, which would
        # sort it before them (sum 3 < 4).
        self.assertEqual(self.send([self.clocked(9, {"f.example#0": 3})])[0], 200)
        self.assertEqual(self.send([self.clocked(10, {"f.example#0": 3, "b.example#0": 2})])[0],
                         200)
        re = raw.request("send", to="mallory@f.example", msg_id="bob-3", body=b"x")
        self.assertTrue(re["ok"], re)
        got = self.history(raw)
        self.assertEqual(got, [("m1", [1, "f.example#0", 1]), ("bob-1", [2, "b.example#0", 1]),
                               ("bob-2", [3, "b.example#0", 2]), ("m8", [4, "f.example#0", 2]),
                               ("m10", [5, "f.example#0", 3]), ("bob-3", [6, "b.example#0", 3])])
        raw.close()
        logs = self.b.logs()
        self.assertEqual(logs.count("event=dm_clock_refused"), 7)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.b.metrics_port,
                                    timeout=10) as r:
            self.assertIn('parley_federation_dropped_total{reason="clock"} 7',
                          r.read().decode())


class GroupCase(FakeNodeCase):
    """Helpers: group events of f.example (or another origin) as the fake node makes them."""

    def event(self, conv, seq, clock, body=b"spam", origin="f.example", author="mallory@f.example"):
        return {"v": 1, "conv": conv, "origin": origin, "epoch": 0, "seq": seq,
                "clock": dict(sorted(clock.items())), "kind": "message", "author": author,
                "target": "", "role": "", "body": body, "wall_ms": 0}

    def conv_payload(self, signed):
        return {"type": "conv", "ev": signed}

    def zero_signed(self, event):
        return self.fake.signed_event("k1", event, zero=True)

    def history(self, raw, conv):
        re = raw.request("group_history", conv=conv, limit=100)
        self.assertTrue(re["ok"], re)
        return [(e["origin"], e["seq"], e["body"]) for e in re["events"]]


class GroupWrites(GroupCase):
    """ordering.md sections 1-2, 6: every group event carries its origin's valid signature, whoever
    delivers it, checked event by event (also in pull answers); only a node hosting a member in
    an event's causal past writes into the group."""

    def test_forged_unsigned_and_memberless_events_are_refused(self):
        raw = RawClient(self.b.client_port, timeout=30)
        self.assertTrue(raw.request("login", user="bob@b.example", password=PW, device="raw")["ok"])
        re = raw.request("group_create", name="team")
        self.assertTrue(re["ok"], re)
        conv = re["conv"]
        # f.example hosts no member but knows the id: its validly signed event is refused (the
        # old node stored it "without effect" and passed it on to every member node).
        spam = self.fake.signed_event("k1", self.event(conv, 1, {"b.example#0": 1, "f.example#0": 1}))
        self.assertEqual(self.send([self.conv_payload(spam)])[0], 200)
        self.assertEqual(self.history(raw, conv), [("b.example", 1, b"")])
        wait_for(lambda: "reason=\"origin hosts no member\"" in self.b.logs(), what="refusal log")

        # Bob adds mallory@f.example and gail@g.example: both nodes host a member now.
        for who in ("mallory@f.example", "gail@g.example"):
            re = raw.request("group_event", conv=conv, kind="add", target=who, role="member")
            self.assertTrue(re["ok"], re)
        # An all-zero signature from the origin itself (the old node took the transaction's
        # signature instead), and one on an event of g.example that f passes on: both refused.
        clock = {"b.example#0": 3, "f.example#0": 1}
        zero = self.zero_signed(self.event(conv, 1, clock, body=b"unsigned"))
        relayed = self.zero_signed(self.event(conv, 1, {"b.example#0": 3, "g.example#0": 1},
                                              body=b"relayed", origin="g.example",
                                              author="gail@g.example"))
        self.assertEqual(self.send([self.conv_payload(zero), self.conv_payload(relayed)])[0], 200)
        # Neither verifies under a pinned key: b reads the origins' key documents off its core
        # thread (g.example's cannot be had: the fake's document names f.example) and pulls
        # again from f, which passed them on.
        wait_for(lambda: any(p == "/federation/v1/query/conv_pull" for p, _ in self.fake.posts),
                 what="the pull after the key document was read")
        self.assertEqual(len(self.history(raw, conv)), 3)
        logs = self.b.logs()
        self.assertIn("the origin's key is not known yet", logs)
        self.assertNotIn("unsigned", str(self.history(raw, conv)))

        # f:2 arrives before f:1: b pulls from f, whose answer holds a good f:1 and an f:3 with
        # an all-zero signature. f:1 and f:2 are kept, f:3 is refused.
        good1 = self.fake.signed_event("k1", self.event(conv, 1, clock, body=b"one"))
        good2 = self.fake.signed_event(
            "k1", self.event(conv, 2, {"b.example#0": 3, "f.example#0": 2}, body=b"two"))
        bad3 = self.zero_signed(self.event(conv, 3, {"b.example#0": 3, "f.example#0": 3},
                                           body=b"three"))
        answer = mp_pack({"conv": conv, "events": [good1, bad3], "more": False})
        self.fake.post_handlers["/federation/v1/query/conv_pull"] = (
            lambda body: (200, "application/msgpack", answer))
        self.assertEqual(self.send([self.conv_payload(good2)])[0], 200)
        wait_for(lambda: len(self.history(raw, conv)) == 5, what="f:1 and f:2 applied")
        got = self.history(raw, conv)
        self.assertEqual(got[3:], [("f.example", 1, b"one"), ("f.example", 2, b"two")])
        self.assertNotIn(("f.example", 3, b"three"), got)
        wait_for(lambda: "reason=\"bad or unverifiable origin signature\"" in self.b.logs(),
                 what="f:3 refused")
        raw.close()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.b.metrics_port,
                                    timeout=10) as r:
            text = r.read().decode()
        self.assertIn('parley_federation_dropped_total{reason="no_member"} 1', text)
        self.assertIn('parley_federation_dropped_total{reason="signature"}', text)


class GroupEventsAcrossRotation(GroupCase):
    def test_an_event_signed_before_a_rotation_verifies_through_the_key_document(self):
        raw = RawClient(self.b.client_port, timeout=30)
        self.assertTrue(raw.request("login", user="bob@b.example", password=PW, device="raw")["ok"])
        re = raw.request("group_create", name="", members=["mallory@f.example"])
        self.assertTrue(re["ok"], re)
        conv = re["conv"]
        # f rotates k1 -> k2 after signing its event with k1 (it was queued); the transaction that
        # finally carries it is signed with k2.
        old = self.fake.signed_event("k1", self.event(conv, 1, {"b.example#0": 1, "f.example#0": 1},
                                                      body=b"before the rotation"))
        self.fake.keygen("k2")
        self.fake.publish("k1", "k2")
        self.assertEqual(self.send([self.conv_payload(old)], key="k2")[0], 200)
        self.assertEqual(self.history(raw, conv)[1:], [("f.example", 1, b"before the rotation")])
        # A key the document does not list does not verify.
        self.fake.keygen("stranger")
        odd = self.fake.signed_event("stranger", self.event(
            conv, 2, {"b.example#0": 1, "f.example#0": 2}, body=b"forged"))
        self.assertEqual(self.send([self.conv_payload(odd)], key="k2")[0], 200)
        wait_for(lambda: "reason=\"bad or unverifiable origin signature\"" in self.b.logs(),
                 what="the forged event refused")
        self.assertEqual(len(self.history(raw, conv)), 2)
        raw.close()


class Admission(FakeNodeCase):
    settings = {"federation.requests_per_second": "2"}

    def test_an_origin_over_its_rate_gets_429_with_retry_after(self):
        answers = [self.send([self.msg(i)]) for i in range(6)]
        statuses = [a[0] for a in answers]
        self.assertIn(200, statuses)
        throttled = [a for a in answers if a[0] == 429]
        self.assertTrue(throttled, statuses)
        self.assertEqual(throttled[0][1], "too_many_requests")
        self.assertGreaterEqual(int(throttled[0][2]["Retry-After"]), 1)
        self.assertIn("event=federation_throttled peer=f.example", self.b.logs())
        time.sleep(1.1)
        # Throttled transactions are simply sent again later: none lost, none doubled.
        path, body = self.fake.transaction([self.msg(i) for i in range(6)], first_id=1)
        auth = self.fake.sign("k1", "PUT", path, "b.example", body)
        self.assertEqual(FakeNode.call(self.b.fed_port, "PUT", path, body, auth)[0], 200)
        self.assertEqual(len(self.bob_messages()), 6)


class Discovery(unittest.TestCase):
    def test_nodes_without_peer_entries_find_each_other_through_well_known(self):
        tmp = tempfile.mkdtemp(prefix="parley-disc-")
        web = FakeNode("web.example", tmp)  # plays https://NAME/ for every organization
        tmpl = {"federation.discovery_url": '"%s/{name}/.well-known/parley"' % web.url}
        a = Node(name="a.example", federation=True, settings=tmpl).start()
        b = Node(name="b.example", federation=True, settings=tmpl).start()
        try:
            web.well_known = {"a.example": "http://127.0.0.1:%d" % a.fed_port,
                              "b.example": "http://127.0.0.1:%d" % b.fed_port}
            a.add_user("alice")
            b.add_user("bob")
            alice, bob = User(a, "alice"), User(b, "bob")
            self.assertEqual(alice.login().returncode, 0)
            self.assertEqual(bob.login().returncode, 0)
            alice.ok("friend", "request", "bob@b.example")
            wait_for(lambda: "FRIEND request alice@a.example" in bob.ok("sync"), what="request")
            # Each side discovered the other and pinned its key on first contact.
            pa, pb = peers(a)["b.example"], peers(b)["a.example"]
            self.assertTrue(pa["discovered"] and pb["discovered"])
            self.assertEqual(pa["url"], web.well_known["b.example"])
            self.assertEqual(pb["key"], a.parleyd("key", "show", check=True).stdout.split()[-1])
            # A node serves its own discovery document too, naming https://NAME:PORT by default
            # even while its listener speaks plain HTTP (spec/federation.md section 3): it never
            # invites peers to downgrade unless public_url says so.
            import urllib.request
            doc = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%d/.well-known/parley" % a.fed_port, timeout=10).read())
            self.assertEqual(doc, {"federation_url": "https://a.example:%d" % a.fed_port})
        finally:
            a.cleanup()
            b.cleanup()
            web.close()
            shutil.rmtree(tmp, ignore_errors=True)


    def test_public_url_may_be_http_only_where_plain_http_is_allowed(self):
        url = {"federation.public_url": '"http://127.0.0.1:7999"'}
        n = Node(name="a.example", federation=True, settings=url).start()
        try:
            import urllib.request
            doc = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%d/.well-known/parley" % n.fed_port, timeout=10).read())
            self.assertEqual(doc, {"federation_url": "http://127.0.0.1:7999"})
        finally:
            n.cleanup()
        n = Node(name="a.example", settings=url)
        try:
            with self.assertRaises(AssertionError):
                n.start()
            self.assertIn("federation.public_url is http:// but federation.allow_plaintext_http "
                          "is false", n.logs())
        finally:
            n.cleanup()


class Outages(unittest.TestCase):
    def test_hundred_messages_survive_a_stopped_receiver_and_a_killed_sender(self):
        import signal
        a, b, alice, bob = two_nodes()
        try:
            befriend_across(alice, bob)
            # End-to-end encryption needs bob's device keys once; afterwards alice can write to
            # him while his node is down (her session and his verified device list are kept).
            alice.ok("send", "bob@b.example", "hello")
            wait_for(lambda: "hello" in bob.ok("sync"), what="first message")
            receipts = []
            wait_for(lambda: receipts.extend(l for l in alice.ok("sync").splitlines()
                                             if "delivered by bob@b.example" in l)
                     or receipts, what="first receipt")

            self.assertEqual(b.stop(), 0)
            for i in range(100):
                alice.ok("send", "bob@b.example", "queued %03d" % i)
            self.assertEqual(peers(a)["b.example"]["queued"], 100)
            # The sender dies without any chance to flush; its queue is what it committed.
            a.stop(signal.SIGKILL)
            a.start()
            self.assertEqual(peers(a)["b.example"]["queued"], 100)
            b.start()
            wait_for(lambda: peers(a)["b.example"]["queued"] == 0, timeout=90, what="queue drained")
            got = []
            wait_for(lambda: got.extend(l.split(": ", 1)[1] for l in bob.ok("sync").splitlines()
                                        if l.startswith("MSG")) or len(got) >= 100,
                     what="all messages at bob")
            self.assertEqual(got, ["queued %03d" % i for i in range(100)])
            time.sleep(1)
            self.assertNotIn("MSG", bob.ok("sync"))
            # Every message is also delivered-acknowledged back to alice exactly once.
            receipts = []
            wait_for(lambda: receipts.extend(l for l in alice.ok("sync").splitlines()
                                             if "delivered by bob@b.example" in l)
                     or len(receipts) >= 100, timeout=60, what="delivered receipts")
            self.assertEqual(len(receipts), 100)
        finally:
            a.cleanup()
            b.cleanup()


class Hello(unittest.TestCase):
    def test_a_restarted_node_makes_its_peers_retry_at_once(self):
        a, b, alice, bob = two_nodes()
        try:
            self.assertEqual(b.stop(), 0)
            # Something queued for b fails at least once, so a backs off.
            alice.ok("friend", "request", "bob@b.example")
            wait_for(lambda: peers(a)["b.example"]["failures"] > 0, what="a failed attempt")
            b.start()
            # b's hello resets a's backoff at once (without it the retry waits for the backoff),
            # and the queued request arrives.
            wait_for(lambda: "peer_backoff_reset peer=b.example" in a.logs(), timeout=5,
                     what="a's backoff reset by b's hello")
            wait_for(lambda: "FRIEND request alice@a.example" in bob.ok("sync"), timeout=10,
                     what="the queued request")
        finally:
            a.cleanup()
            b.cleanup()


class CrossNodeRelations(unittest.TestCase):
    def test_decline_remove_and_block_hold_across_nodes(self):
        a = Node(name="a.example", federation=True).start()
        b = Node(name="b.example", federation=True).start()
        try:
            for u in ("alice", "carol"):
                a.add_user(u)
            b.add_user("bob")
            a.parleyd("peer", "add", "b.example", "http://127.0.0.1:%d" % b.fed_port, check=True)
            b.parleyd("peer", "add", "a.example", "http://127.0.0.1:%d" % a.fed_port, check=True)
            alice, carol, bob = User(a, "alice"), User(a, "carol"), User(b, "bob")
            for u in (alice, carol, bob):
                self.assertEqual(u.login().returncode, 0)
            friends = lambda u: json.loads(u.ok("friend", "list", "--json"))

            carol.ok("friend", "request", "bob@b.example")
            wait_for(lambda: "carol@a.example" in friends(bob)["incoming"], what="carol's request")
            bob.ok("friend", "decline", "carol@a.example")
            wait_for(lambda: "FRIEND declined bob@b.example" in carol.ok("sync"), what="decline")
            self.assertEqual(friends(carol), {"friends": [], "incoming": [], "outgoing": []})
            # Under the friends policy carol's own node refuses a message to a non-friend.
            self.assertEqual(carol.run("send", "bob@b.example", "not a friend").returncode, 5)

            alice.ok("friend", "request", "bob@b.example")
            wait_for(lambda: "alice@a.example" in friends(bob)["incoming"], what="alice's request")
            bob.ok("friend", "accept", "alice@a.example")
            wait_for(lambda: friends(alice)["friends"] == ["bob@b.example"], what="friends")
            bob.ok("block", "alice@a.example")
            alice.ok("send", "bob@b.example", "while blocked")
            alice.ok("friend", "request", "bob@b.example")
            time.sleep(1.5)  # give the events time to cross
            out = bob.ok("sync")
            for hidden in ("not a friend", "while blocked"):
                self.assertNotIn(hidden, out)
            self.assertNotIn("delivered by", alice.ok("sync"))
            self.assertEqual(friends(bob)["incoming"], [])
            bob.ok("unblock", "alice@a.example")
            # Removing a friend ends it on both sides.
            alice.ok("friend", "remove", "bob@b.example")
            self.assertEqual(friends(alice)["friends"], [])
            wait_for(lambda: "alice@a.example" not in friends(bob)["friends"], what="removed")
            # Nothing queued is left behind and nothing was refused.
            wait_for(lambda: peers(a)["b.example"]["queued"] == 0, what="queue empty")
            self.assertNotIn("federation_refused", a.logs() + b.logs())
        finally:
            a.cleanup()
            b.cleanup()


class CrossNodeDirectory(unittest.TestCase):
    def test_lookups_and_one_time_prekeys_across_nodes(self):
        from harness import RawClient
        a, b, alice, bob = two_nodes()
        try:
            bob.ok("profile", "--display-name", "Bob Builder")

            self.assertEqual(alice.ok("lookup", "bob@b.example").strip(),
                             "bob@b.example exists: Bob Builder")
            self.assertEqual(json.loads(alice.ok("lookup", "bob@b.example", "--json")),
                             {"address": "bob@b.example", "exists": True,
                              "display_name": "Bob Builder"})
            b.parleyd("user", "add", "carl", "--display-name", "Carl C.", "--password-stdin",
                      input="long enough pw\n", check=True)
            self.assertIn("carl@b.example exists: Carl C.", alice.ok("lookup", "carl@b.example"))
            r = alice.run("lookup", "nobody@b.example")
            self.assertEqual((r.returncode, r.stdout.strip()), (5, "nobody@b.example does not exist"))
            # A node nobody can find: a clear error, the connection class of exit code.
            r = alice.run("lookup", "x@nowhere.invalid")
            self.assertEqual(r.returncode, 3, r.stderr)

            def raw_login(node, user, device):
                c = RawClient(node.client_port)
                re = c.request("login", user="%s@%s" % (user, node.name),
                               password="correct horse battery", device=device)
                self.assertTrue(re["ok"], re)
                return c, re["device_id"]
            # bob's CLI device published real keys at login; a raw device adds known ones.
            bob_dev, phone = raw_login(b, "bob", "phone")
            re = bob_dev.request("keys_publish", cert=b"bob-phone-cert",
                                 signed_prekey=b"bob-phone-spk",
                                 one_time=[{"id": i, "key": b"otk-%d" % i} for i in (1, 2, 3)])
            self.assertTrue(re["ok"], re)
            self.assertEqual(re["one_time_left"], 3)

            alice_dev, _ = raw_login(a, "alice", "laptop")
            q = alice_dev.request("keys_query", address="bob@b.example", devices=[phone])
            self.assertTrue(q["ok"], q)
            self.assertEqual(len(q["identity"]), 32)
            self.assertEqual([(d["cert"], d["one_time_left"]) for d in q["devices"]],
                             [(b"bob-phone-cert", 3)])
            got = []
            for _ in range(4):
                c = alice_dev.request("keys_claim", address="bob@b.example", devices=[phone])
                self.assertTrue(c["ok"], c)
                (dev,) = c["devices"]
                self.assertEqual(dev["signed_prekey"], b"bob-phone-spk")
                got.append(dev.get("one_time", {}).get("key"))
            self.assertEqual(got, [b"otk-1", b"otk-2", b"otk-3", None])
            q = alice_dev.request("keys_query", address="bob@b.example", devices=[phone])
            self.assertEqual(q["devices"][0]["one_time_left"], 0)
            nobody = alice_dev.request("keys_query", address="nobody@b.example")
            self.assertEqual((nobody["ok"], nobody["code"]), (False, "not_found"))
            for c in (bob_dev, alice_dev):
                c.close()
            # Key material never shows up in the logs.
            self.assertNotIn("otk-", a.logs() + b.logs())
        finally:
            a.cleanup()
            b.cleanup()


class CrossNodeDirectoryLimit(unittest.TestCase):
    def test_a_remote_lookup_limit_reaches_the_client_with_retry_after_ms(self):
        from harness import RawClient
        fast = {"federation.requests_per_second": "10000"}
        a = Node(name="a.example", federation=True, settings=fast).start()
        b = Node(name="b.example", federation=True, settings=fast).start()
        try:
            a.parleyd("peer", "add", "b.example", "http://127.0.0.1:%d" % b.fed_port, check=True)
            b.parleyd("peer", "add", "a.example", "http://127.0.0.1:%d" % a.fed_port, check=True)
            a.add_user("alice")
            c = RawClient(a.client_port)
            self.assertTrue(c.request("login", user="alice@a.example",
                                      password="correct horse battery")["ok"])
            # b allows a node 300 lookups of users that do not exist per minute.
            for i in range(300):
                re = c.request("lookup", address="ghost%d@b.example" % i)
                self.assertEqual((re["ok"], re["exists"]), (True, False), re)
            re = c.request("lookup", address="ghost300@b.example")
            self.assertEqual((re["ok"], re["code"]), (False, "rate_limited"), re)
            self.assertEqual(re["retry_after_ms"], 60000, re)  # b's Retry-After: 60
        finally:
            a.cleanup()
            b.cleanup()


class HeadOfLine(unittest.TestCase):
    def test_an_unresponsive_peer_does_not_delay_the_others(self):
        import socket
        hole = socket.socket()  # the kernel accepts connections; nobody ever answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        a = Node(name="a.example", policy="anyone", federation=True).start()
        b = Node(name="b.example", policy="anyone", federation=True).start()
        try:
            a.add_user("alice")
            b.add_user("bob")
            a.parleyd("peer", "add", "b.example", "http://127.0.0.1:%d" % b.fed_port, check=True)
            a.parleyd("peer", "add", "dead.example",
                      "http://127.0.0.1:%d" % hole.getsockname()[1], check=True)
            b.parleyd("peer", "add", "a.example", "http://127.0.0.1:%d" % a.fed_port, check=True)
            alice, bob = User(a, "alice"), User(b, "bob")
            self.assertEqual(alice.login().returncode, 0)
            self.assertEqual(bob.login().returncode, 0)
            alice.ok("friend", "request", "zed@dead.example")  # queued for the black hole
            time.sleep(0.3)  # the request to dead.example is now hanging (15 s timeout)
            alice.ok("send", "bob@b.example", "right through")
            wait_for(lambda: "right through" in bob.ok("sync"), timeout=5, what="b despite dead peer")
            self.assertEqual(peers(a)["dead.example"]["queued"], 1)
        finally:
            a.cleanup()
            b.cleanup()
            hole.close()


def make_ca(tmp):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)
    ca_key, ca = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.pem")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=Parley test CA")

    def issue(name):
        key, csr, crt = (os.path.join(tmp, name + ext) for ext in (".key", ".csr", ".crt"))
        ext = os.path.join(tmp, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s,IP:127.0.0.1\n" % name)
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
        run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
        return crt, key
    return ca, issue


class Https(unittest.TestCase):
    def test_nodes_talk_over_verified_tls_and_refuse_an_untrusted_certificate(self):
        tmp = tempfile.mkdtemp(prefix="parley-tls-")
        ca, issue = make_ca(tmp)
        nodes = []
        try:
            def tls_node(name, trust=True):
                crt, key = issue(name)
                s = {"federation.tls_cert": '"%s"' % crt, "federation.tls_key": '"%s"' % key}
                if trust:
                    s["federation.tls_ca"] = '"%s"' % ca
                n = Node(name=name, settings=s).start()  # no plain HTTP allowed
                nodes.append(n)
                return n
            a, b, c = tls_node("a.example"), tls_node("b.example"), tls_node("c.example", trust=False)
            for n in (a, b, c):
                self.assertNotIn("federation_disabled", n.logs())
            a.parleyd("peer", "add", "b.example", "https://127.0.0.1:%d" % b.fed_port, check=True)
            b.parleyd("peer", "add", "a.example", "https://127.0.0.1:%d" % a.fed_port, check=True)
            c.parleyd("peer", "add", "b.example", "https://127.0.0.1:%d" % b.fed_port, check=True)
            # Plain http:// peers are refused when not allowed.
            self.assertEqual(a.parleyd("peer", "add", "x.example", "http://127.0.0.1:1").returncode, 5)
            for n, u in ((a, "alice"), (b, "bob"), (c, "carol")):
                n.add_user(u)
            alice, bob, carol = User(a, "alice"), User(b, "bob"), User(c, "carol")
            for u in (alice, bob, carol):
                self.assertEqual(u.login().returncode, 0)
            alice.ok("friend", "request", "bob@b.example")
            wait_for(lambda: "FRIEND request alice@a.example" in bob.ok("sync"), what="request over TLS")
            bob.ok("friend", "accept", "alice@a.example")
            wait_for(lambda: "FRIEND accepted bob@b.example" in alice.ok("sync"), what="accept")
            alice.ok("send", "bob@b.example", "over tls")
            wait_for(lambda: "over tls" in bob.ok("sync"), what="message over TLS")
            # c does not trust the test CA: its queue keeps the request and reports why.
            carol.ok("friend", "request", "bob@b.example")
            st = wait_for(lambda: (lambda p: p if p["last_error"] else None)(peers(c)["b.example"]),
                          what="certificate error")
            self.assertEqual(st["queued"], 1)
            self.assertRegex(st["last_error"].lower(), "certificate|verify|handshake|ssl")
        finally:
            for n in nodes:
                n.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


def config_check(node, *args):
    r = node.parleyd("config", "check", "--json", "--timeout", "3", *args)
    doc = json.loads(r.stdout)
    return r.returncode, doc, {(c["check"], c["status"]) for c in doc["checks"]}


class ConfigCheck(unittest.TestCase):
    def test_local_checks_find_loose_modes_busy_ports_and_bad_keys(self):
        n = Node(name="cc.example")
        try:
            rc, doc, seen = config_check(n, "--offline")
            self.assertEqual(rc, 0, doc)
            self.assertTrue(doc["ok"])
            for check in ("data-dir", "config", "files", "database", "node-key", "listeners"):
                self.assertIn((check, "ok"), seen)
            self.assertIn(("tls", "warning"), seen)  # no certificate: federation is off
            # A node key others can read.
            key = os.path.join(n.data, "node.key")
            os.chmod(key, 0o644)
            rc, doc, seen = config_check(n, "--offline")
            self.assertEqual(rc, 1)
            self.assertFalse(doc["ok"])
            hints = [c["hint"] for c in doc["checks"] if c["check"] == "files"]
            self.assertIn("chmod 600 " + key, hints)
            os.chmod(key, 0o600)
            # A port another process holds.
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", n.client_port))
                s.listen(1)
                rc, doc, seen = config_check(n, "--offline")
                self.assertEqual(rc, 1)
                busy = [c for c in doc["checks"] if c["check"] == "listeners"
                        and c["status"] == "problem"]
                self.assertEqual(len(busy), 1, doc)
                self.assertIn("in use", busy[0]["detail"])
                self.assertIn(str(n.client_port), busy[0]["hint"])
            # A running node: its listeners answer, so they are not "in use".
            n.start()
            rc, doc, seen = config_check(n, "--offline")
            self.assertEqual(rc, 0, doc)
            self.assertTrue(any("running node answers" in c["detail"] for c in doc["checks"]))
            n.stop()
            # A key the config format does not define: named, exit 1; human output has hints.
            cfg = os.path.join(n.data, "config.toml")
            with open(cfg, "a") as f:
                f.write("\n[client]\nbogus_key = 1\n")
            r = n.parleyd("config", "check", "--offline")
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stdout, r"problem\s+config")
            self.assertIn("hint:", r.stdout)
        finally:
            n.cleanup()

    def test_tls_peers_and_well_known_against_running_nodes(self):
        tmp = tempfile.mkdtemp(prefix="parley-cc-")
        ca, issue = make_ca(tmp)
        nodes = []
        try:
            def tls_node(name, cert_for=None):
                crt, key = issue(cert_for or name)
                port = free_port()
                s = {"federation.tls_cert": '"%s"' % crt, "federation.tls_key": '"%s"' % key,
                     "federation.tls_ca": '"%s"' % ca,
                     "federation.public_url": '"https://127.0.0.1:%d"' % port,
                     "federation.discovery_url":
                         '"https://127.0.0.1:%d/.well-known/parley?node={name}"' % port,
                     "federation.listen": '"127.0.0.1:%d"' % port}
                n = Node(name=name, settings=s)
                n.fed_port = port
                nodes.append(n)
                return n
            a, b = tls_node("a.example"), tls_node("b.example")
            a.start()
            b.start()
            a.parleyd("peer", "add", "b.example", "https://127.0.0.1:%d" % b.fed_port, check=True)
            a.parleyd("peer", "add", "dead.example", "https://127.0.0.1:%d" % free_port(),
                      check=True)
            rc, doc, seen = config_check(a)
            self.assertEqual(rc, 1, doc)  # the dead peer
            self.assertIn(("well-known", "ok"), seen)
            self.assertIn(("tls", "warning"), seen)  # the test certificate expires in 2 days
            peers = {c["detail"].split()[0]: c for c in doc["checks"] if c["check"] == "peers"}
            self.assertEqual(peers["b.example"]["status"], "ok")
            self.assertEqual(peers["dead.example"]["status"], "problem")
            self.assertIn("peer status dead.example", peers["dead.example"]["hint"])
            a.parleyd("peer", "remove", "dead.example", check=True)
            rc, doc, seen = config_check(a)
            self.assertEqual(rc, 0, doc)
            # A certificate for another name: refused before the node is even started.
            c = tls_node("c.example", cert_for="other.example")
            rc, doc, seen = config_check(c, "--offline")
            self.assertEqual(rc, 1)
            self.assertTrue(any(x["check"] == "tls" and "does not name c.example" in x["detail"]
                                for x in doc["checks"]), doc)
        finally:
            for n in nodes:
                n.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
