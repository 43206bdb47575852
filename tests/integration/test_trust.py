"""Federation trust against a hostile peer (the fake node of fakenode.py): who may complete a
friend request, what one bad event in a transaction costs, strict key documents, denied peers,
blocks inside groups, and limits on the work a user can queue for other nodes."""
import json
import re
import time
import unittest
import urllib.request

from fakenode import FakeNode
from harness import Node, RawClient, User, free_port, wait_for
from test_federation import FakeNodeCase


def metric(node, name, **labels):
    """The value of one sample of `node`'s /metrics (0 when absent)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % node.metrics_port, timeout=10) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        if m and m.group(1) == name and (m.group(2) or "") == want:
            return float(m.group(3))
    return 0


def friend(event, sender, to="bob@b.example"):
    return {"type": "friend", "event": event, "from": sender, "to": to}


class FriendRequestAnswers(FakeNodeCase):
    """Under policy `friends` only friends may message bob, so becoming one must take bob's yes."""
    policy = "friends"

    def friends(self):
        return json.loads(self.bob.ok("friend", "list", "--json"))

    def test_a_node_cannot_accept_its_own_request_for_the_local_user(self):
        # mallory asks, then her node answers "accepted" as if bob had said yes.
        self.assertEqual(self.send([friend("request", "mallory@f.example"),
                                    friend("accepted", "mallory@f.example")])[0], 200)
        self.assertEqual(self.friends(),
                         {"friends": [], "incoming": ["mallory@f.example"], "outgoing": []})
        # The same in separate transactions.
        self.assertEqual(self.send([friend("accepted", "mallory@f.example")])[0], 200)
        self.assertEqual(self.friends()["friends"], [])
        self.assertEqual(self.send([self.msg(1)])[0], 200)  # a DM under policy friends: dropped
        self.assertEqual(self.bob_messages(), [])
        self.assertIn("event=federation_event_dropped peer=f.example id=2 reason=unsolicited_accept",
                      self.b.logs())
        self.assertEqual(metric(self.b, "parley_federation_dropped_total",
                                reason="unsolicited_accept"), 2)

        # The legitimate flow: bob asks eve, eve's node answers for eve.
        self.bob.ok("friend", "request", "eve@f.example")
        self.assertEqual(self.friends()["outgoing"], ["eve@f.example"])
        self.assertEqual(self.send([friend("accepted", "eve@f.example")])[0], 200)
        self.assertEqual(self.friends()["friends"], ["eve@f.example"])
        self.assertEqual(self.send([self.msg(2, sender="eve@f.example")])[0], 200)
        self.assertEqual(len(self.bob_messages()), 1)
        # And bob may still accept mallory himself.
        self.bob.ok("friend", "accept", "mallory@f.example")
        self.assertEqual(self.friends()["friends"], ["eve@f.example", "mallory@f.example"])


class PerEventVerdicts(FakeNodeCase):
    def test_bad_events_are_dropped_and_the_rest_of_the_transaction_applied(self):
        bad_group = {"type": "conv", "ev": b"not a signed event"}
        elsewhere = self.msg(3, to="carol@elsewhere.example")
        no_body = dict(self.msg(4))
        del no_body["body"]
        status, answer, _ = self.send([self.msg(1), bad_group, elsewhere, b"\xc1 not msgpack",
                                       no_body, self.msg(2)])
        self.assertEqual((status, answer), (200, {"applied_upto": 6}))
        self.assertEqual(len(self.bob_messages()), 2)
        logs = self.b.logs()
        for eid, reason in ((2, "bad_request"), (3, "not_ours"), (4, "bad_request"),
                            (5, "bad_request")):
            self.assertIn("event=federation_event_dropped peer=f.example id=%d reason=%s"
                          % (eid, reason), logs)
        self.assertEqual(metric(self.b, "parley_federation_dropped_total", reason="bad_request"), 3)
        self.assertEqual(metric(self.b, "parley_federation_dropped_total", reason="not_ours"), 1)
        # The sender's queue moves on: the next transaction applies as usual.
        self.assertEqual(self.send([self.msg(5)])[:2], (200, {"applied_upto": 7}))
        self.assertEqual(len(self.bob_messages()), 1)
        # Speaking for another node's user still refuses the whole transaction (403).
        self.assertEqual(self.send([self.msg(6), self.msg(7, sender="alice@a.example")])[:2],
                         (403, "forbidden"))
        self.assertEqual(self.bob_messages(), [])


class StrictKeyDocuments(FakeNodeCase):
    def first_contact(self, origin, form):
        """A transaction from `origin` (never seen by b) whose key document, served by the fake
        node, has the structure `form` but a valid self-signature."""
        self.fake.publish("k1", name=origin, form=form)
        path, body = self.fake.transaction([self.msg(1, sender="x@" + origin)], origin=origin)
        auth = self.fake.sign("k1", "PUT", path, "b.example", body, origin=origin)
        return FakeNode.call(self.b.fed_port, "PUT", path, body, auth)[:2]

    def test_a_non_canonical_key_document_is_refused_and_not_pinned(self):
        for i, form in enumerate(("extra_field", "reordered", "long_int")):
            origin = "x%d.example" % i
            self.assertEqual(self.first_contact(origin, form), (401, "unknown_key"), form)
            self.assertNotIn(origin, [p["name"] for p in json.loads(
                self.b.parleyd("peer", "list", "--json", check=True).stdout) if p.get("key")])
        logs = self.b.logs()
        self.assertEqual(logs.count("not in canonical form"), 3, logs)
        self.assertNotIn("event=peer_key_pinned peer=x", logs)
        self.assertEqual(self.bob_messages(), [])
        # The same key in the canonical form is pinned on first contact.
        self.assertEqual(self.first_contact("x9.example", "canonical")[0], 200)
        self.assertIn("event=peer_key_pinned peer=x9.example", self.b.logs())
        self.assertEqual(len(self.bob_messages()), 1)


class HeldPeerCase(FakeNodeCase):
    """A fake peer whose outbound queue the node holds back (denied, or not on the allowlist)."""

    def peer(self):
        return json.loads(self.b.parleyd("peer", "status", "f.example", "--json", check=True).stdout)

    def assert_held_until_allowed(self, path, quiet_seconds):
        """Nothing reaches f.example for `quiet_seconds` (several rounds of the sender, every
        0.5 s) while one event waits; after `peer allow` the held event, PUT to `path`, goes out."""
        time.sleep(quiet_seconds)
        self.assertEqual(self.fake.received, [])
        self.assertEqual(self.peer()["queued"], 1)
        self.b.parleyd("peer", "allow", "f.example", check=True)
        wait_for(lambda: self.peer()["queued"] == 0, what="the held event sent")
        self.assertIn(("PUT", path), self.fake.received)
        self.assertFalse(self.peer()["outbound_held"])


class DeniedPeers(HeldPeerCase):

    def test_a_denied_peer_gets_nothing_from_us_until_allowed(self):
        # Before: bob's request reaches f.example, and so does a lookup.
        self.bob.ok("friend", "request", "eve@f.example")
        wait_for(lambda: ("PUT", "/federation/v1/send/1-1") in self.fake.received, what="sent")
        self.assertIn("eve@f.example does not exist", self.bob.run("lookup", "eve@f.example").stdout)
        self.assertIn(("POST", "/federation/v1/query/lookup"), self.fake.received)

        self.b.parleyd("peer", "deny", "f.example", check=True)
        self.fake.received.clear()
        self.bob.ok("friend", "request", "zed@f.example")
        r = self.bob.run("lookup", "zed@f.example")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does not federate with f.example", r.stdout + r.stderr)
        wait_for(lambda: self.peer()["queued"] == 1, what="the held event")
        st = self.peer()
        self.assertEqual((st["state"], st["outbound_held"]), ("denied", True))
        self.assertIn("outbound held: peer denied",
                      self.b.parleyd("peer", "status", "f.example", check=True).stdout)
        # A restart sends no hello to it either.
        self.b.stop()
        self.b.start()
        # Nothing for 3 s (the start-up hellos too); allowed again, the held event goes out.
        self.assert_held_until_allowed("/federation/v1/send/2-2", 3)


class AllowlistPolicy(HeldPeerCase):
    """b.example under federation.policy = "allowlist"; f.example is not on its list (the entry
    FakeNodeCase adds is removed), so the rows b makes itself must not let it in."""
    settings = {"federation.policy": '"allowlist"'}

    def setUp(self):
        super().setUp()
        self.b.parleyd("peer", "remove", "f.example", check=True)

    def refused(self, *args):
        r = self.bob.run(*args)
        self.assertNotEqual(r.returncode, 0, args)
        self.assertIn("does not federate with f.example", r.stdout + r.stderr, args)

    def test_only_the_admins_entries_federate(self):
        # A user writing to an unlisted node neither reaches it nor lets it in.
        self.refused("send", "x@f.example", "hello")
        self.refused("friend", "request", "x@f.example")
        self.refused("lookup", "x@f.example")
        self.refused("group", "create", "g", "--member", "x@f.example")
        conv = json.loads(self.bob.ok("group", "create", "mine", "--json"))["conv"]
        self.refused("group", "add", conv, "x@f.example")
        self.assertEqual(self.send([self.msg(1)])[:2], (403, "denied"))
        time.sleep(2)  # several rounds of the sender (every 0.5 s)
        self.assertEqual(self.fake.received, [])
        self.assertEqual(self.bob_messages(), [])
        self.assertGreaterEqual(metric(self.b, "parley_errors_total", code="not_allowed"), 3)

        # `peer deny` makes an entry, but not a listing.
        self.b.parleyd("peer", "deny", "f.example", check=True)
        self.assertFalse(self.peer()["listed"])

        # The admin lists it: both ways work.
        self.b.parleyd("peer", "add", "f.example", self.fake.url, "--key", self.k1, check=True)
        self.b.parleyd("peer", "allow", "f.example", check=True)
        st = self.peer()
        self.assertEqual((st["state"], st["listed"], st["outbound_held"]), ("allowed", True, False))
        self.assertEqual(self.send([self.msg(2)])[0], 200)
        self.assertEqual(len(self.bob_messages()), 1)
        self.bob.ok("friend", "request", "x@f.example")
        wait_for(lambda: any(m == "PUT" for m, _ in self.fake.received), what="sent to f.example")
        self.assertIn("x@f.example does not exist", self.bob.run("lookup", "x@f.example").stdout)
        self.assertIn("LISTED", self.b.parleyd("peer", "list", check=True).stdout)

    def test_a_queue_for_an_unlisted_node_is_held_until_the_admin_lists_it(self):
        # While listed, mallory asks bob; then the admin removes f.example from the list.
        self.b.parleyd("peer", "add", "f.example", self.fake.url, "--key", self.k1, check=True)
        self.assertEqual(self.send([friend("request", "mallory@f.example")])[0], 200)
        self.b.parleyd("peer", "remove", "f.example", check=True)
        # bob's answer is queued; the row the sender makes for the queue is no listing.
        self.bob.ok("friend", "accept", "mallory@f.example")
        wait_for(lambda: self.peer()["queued"] == 1, what="the held event")
        st = self.peer()
        self.assertEqual((st["listed"], st["outbound_held"], st["held_reason"]),
                         (False, True, "not_listed"))
        self.assertIn("outbound held: not on the allowlist",
                      self.b.parleyd("peer", "status", "f.example", check=True).stdout)
        # Allowed by the admin: the held event goes out.
        self.assert_held_until_allowed("/federation/v1/send/1-1", 2)


class BlocksInGroups(unittest.TestCase):
    """a.example (alice, carol, mallory) and b.example (bob), policy anyone."""

    def setUp(self):
        self.a = Node(name="a.example", policy="anyone", federation=True).start()
        self.b = Node(name="b.example", policy="anyone", federation=True).start()
        self.a.parleyd("peer", "add", "b.example", "http://127.0.0.1:%d" % self.b.fed_port,
                       check=True)
        self.b.parleyd("peer", "add", "a.example", "http://127.0.0.1:%d" % self.a.fed_port,
                       check=True)
        for name in ("alice", "carol", "mallory"):
            self.a.add_user(name)
        self.b.add_user("bob")
        self.alice, self.carol, self.mallory = (User(self.a, n) for n in ("alice", "carol",
                                                                          "mallory"))
        self.bob = User(self.b, "bob")
        for u in (self.alice, self.carol, self.mallory, self.bob):
            self.assertEqual(u.login().returncode, 0)

    def tearDown(self):
        self.a.cleanup()
        self.b.cleanup()

    @staticmethod
    def texts(user, conv):
        return [e.get("text") for e in json.loads(user.ok("history", conv, "--json"))
                if e["kind"] == "message"]

    @staticmethod
    def members(user, conv):
        return {m["user"] for m in json.loads(user.ok("group", "members", conv, "--json"))}

    def test_a_blocked_user_cannot_add_the_blocker_nor_reach_them_in_a_group(self):
        alice, carol, mallory, bob = self.alice, self.carol, self.mallory, self.bob
        alice.ok("block", mallory.address)
        # On alice's node: mallory cannot put her into a group, at creation or later.
        r = mallory.run("group", "create", "trap", "--member", alice.address)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot add alice@a.example to this group", r.stdout + r.stderr)
        conv = json.loads(mallory.ok("group", "create", "empty", "--json"))["conv"]
        r = mallory.run("group", "add", conv, alice.address)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot add alice@a.example to this group", r.stdout + r.stderr)
        self.assertEqual(self.members(mallory, conv), {mallory.address})
        self.assertNotIn("trap", alice.ok("group", "list"))

        # Across nodes: b cannot know bob's block; b makes bob leave at once and shows him nothing.
        bob.ok("block", mallory.address)
        trap = json.loads(mallory.ok("group", "create", "trap", "--member", bob.address,
                                     "--json"))["conv"]
        wait_for(lambda: self.members(mallory, trap) == {mallory.address}, what="bob's leave")
        self.assertIn("event=group_add_declined conv=%s user=bob@b.example" % trap, self.b.logs())
        self.assertNotIn(trap, bob.ok("group", "list"))
        self.assertNotIn(trap, bob.ok("sync"))

        # A group of carol's with all of them: what mallory writes reaches neither blocker.
        team = json.loads(carol.ok("group", "create", "team", "--member", alice.address,
                                   "--member", mallory.address, "--member", bob.address,
                                   "--json"))["conv"]
        wait_for(lambda: team in bob.ok("group", "list"), what="bob sees the team")
        mallory.ok("group", "send", team, "from mallory")
        carol.ok("group", "send", team, "from carol")
        wait_for(lambda: self.texts(bob, team) == ["from carol"], what="carol's message at bob")
        wait_for(lambda: self.texts(alice, team) == ["from carol"], what="carol's message")
        self.assertEqual(self.texts(carol, team), ["from mallory", "from carol"])
        self.assertNotIn("from mallory", alice.ok("sync") + bob.ok("sync"))
        self.assertNotIn("from mallory", alice.ok("history", team, "--json"))
        # The node marks it hidden for the blockers only, and not unread.
        def hidden(user):
            raw = RawClient(user.node.client_port)
            try:
                assert raw.request("login", user=user.address, password=user.password,
                                   device="raw")["ok"]
                events = raw.request("group_history", conv=team)["events"]
                unread = [g["unread"] for g in raw.request("groups")["groups"]
                          if g["conv"] == team]
                return [e["author"] for e in events if e.get("hidden")], unread
            finally:
                raw.close()
        self.assertEqual(hidden(alice), ([mallory.address], [1]))
        self.assertEqual(hidden(carol), ([], [1]))
        # Unblocked: what was hidden shows again, and new messages can be read (the device got
        # mallory's chain with her first message).
        alice.ok("unblock", mallory.address)
        mallory.ok("group", "send", team, "after unblock")
        wait_for(lambda: self.texts(alice, team) == ["from mallory", "from carol",
                                                     "after unblock"],
                 what="the messages after unblocking")


class FederationWorkLimits(unittest.TestCase):
    def test_requests_and_groups_are_rate_limited_and_queued_work_expires(self):
        a = Node(name="a.example", federation=True, settings={
            "limits.friend_requests_per_hour": "3", "limits.groups_per_hour": "2",
            "federation.queue_lifetime_seconds": "2"})
        a.start()
        try:
            a.add_user("alice")
            alice = User(a, "alice")
            self.assertEqual(alice.login().returncode, 0)
            # A node that never answers (nothing listens there): its queue only grows.
            a.parleyd("peer", "add", "nowhere.example", "http://127.0.0.1:%d" % free_port(),
                      check=True)
            raw = RawClient(a.client_port)
            self.assertTrue(raw.request("login", user=alice.address, password=alice.password,
                                        device="raw")["ok"])
            for i in range(3):
                self.assertTrue(raw.request("friend_request", user="x%d@nowhere.example" % i)["ok"])
            # Repeating a pending request costs nothing; a new one is over the limit.
            self.assertTrue(raw.request("friend_request", user="x0@nowhere.example")["ok"])
            r = raw.request("friend_request", user="x3@nowhere.example")
            self.assertEqual(r["code"], "rate_limited", r)
            self.assertGreater(r["retry_after_ms"], 3_000_000)
            for i in range(2):
                self.assertTrue(raw.request("group_create", name="g%d" % i,
                                            members=["y@nowhere.example"])["ok"])
            r = raw.request("group_create", name="g2")
            self.assertEqual((r["code"], r["retry_after_ms"] > 3_000_000), ("rate_limited", True))
            raw.close()
            r = alice.run("group", "create", "g3")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("too many new groups this hour", r.stdout + r.stderr)

            # Two seconds later the queued events are dropped; the requests show failed.
            queued = lambda: json.loads(a.parleyd("peer", "status", "nowhere.example", "--json",
                                                  check=True).stdout)["queued"]  # noqa: E731
            wait_for(lambda: queued() == 0, timeout=30, what="the queue to expire")
            out = alice.ok("sync")
            for i in range(3):
                self.assertIn("FRIEND failed x%d@nowhere.example" % i, out)
            friends = json.loads(alice.ok("friend", "list", "--json"))
            self.assertEqual(friends["outgoing"], [])
            self.assertIn("event=federation_expired peer=nowhere.example", a.logs())
            self.assertEqual(metric(a, "parley_federation_dropped_total", reason="expired"), 5)
        finally:
            a.cleanup()


if __name__ == "__main__":
    unittest.main()
