"""Groups with real processes: replicated conversations across three nodes converge to the same
history in the same order after one node was stopped while the others kept talking and changing
membership; a removed member's node stops receiving the group; message bodies stay end-to-end
encrypted; the group commands answer as documented."""
import json
import os
import signal
import sqlite3
import time
import unittest

from harness import Node, User, mp_unpack, wait_for


def history(user, conv):
    return json.loads(user.ok("history", conv, "--json"))


def ids(user, conv):
    return [e["id"] for e in history(user, conv)]


def message_bodies(node, conv):
    """(author, group body) of the group's messages held by `node`, in its log order."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(node.data, "parley.db"), uri=True)
    try:
        rows = db.execute("SELECT bytes FROM conv_events WHERE conv_id = ? ORDER BY pos",
                          (conv,)).fetchall()
    finally:
        db.close()
    out = []
    for (raw,) in rows:
        event = mp_unpack(raw)[0]
        if event["kind"] == "message":
            out.append((event["author"], mp_unpack(event["body"])[0]))
    return out


def conv_events(node, conv):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(node.data, "parley.db"), uri=True)
    try:
        return db.execute("SELECT count(*) FROM conv_events WHERE conv_id = ?", (conv,)).fetchone()[0]
    finally:
        db.close()


class ThreeNodes(unittest.TestCase):
    def setUp(self):
        self.nodes = [Node(name=n, federation=True).start()
                      for n in ("a.example", "b.example", "c.example")]
        a, b, c = self.nodes
        for n in self.nodes:
            for other in self.nodes:
                if other is not n:
                    n.parleyd("peer", "add", other.name, "http://127.0.0.1:%d" % other.fed_port,
                              check=True)
        a.add_user("ann")
        b.add_user("bob")
        c.add_user("cat")
        c.add_user("dan")
        self.ann, self.bob, self.cat, self.dan = (User(a, "ann"), User(b, "bob"), User(c, "cat"),
                                                  User(c, "dan"))
        for u in (self.ann, self.bob, self.cat, self.dan):
            r = u.login()
            self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        for n in self.nodes:
            n.cleanup()

    def converged(self, users, conv, n):
        """Every user's history has n events and the same ids in the same order."""
        def check():
            seen = []
            for u in users:
                r = u.run("history", conv, "--json")
                if r.returncode != 0:
                    return False  # not a member there yet
                seen.append([e["id"] for e in json.loads(r.stdout)])
            return len(seen[0]) == n and all(s == seen[0] for s in seen)
        wait_for(check, timeout=60, what="the same %d events everywhere" % n)
        return ids(users[0], conv)

    def test_a_group_over_three_nodes_converges_after_one_was_stopped(self):
        a, b, c = self.nodes
        ann, bob, cat, dan = self.ann, self.bob, self.cat, self.dan
        out = ann.ok("group", "create", "team", "--member", bob.address, "--member", cat.address,
                     "--json")
        conv = json.loads(out)["conv"]
        self.assertTrue(conv.startswith("g:"))
        wait_for(lambda: conv in bob.ok("group", "list"), what="bob sees the group")
        wait_for(lambda: conv in cat.ok("group", "list"), what="cat sees the group")
        members = json.loads(cat.ok("group", "members", conv, "--json"))
        self.assertEqual({m["user"]: m["role"] for m in members},
                         {ann.address: "admin", bob.address: "member", cat.address: "member"})
        ann.ok("group", "send", conv, "hello team from ann")
        bob.ok("group", "send", "team", "bob here")  # by name
        cat.ok("group", "send", conv, "cat here")
        first = self.converged([ann, bob, cat], conv, 4)

        # c stops; the others keep talking and change membership meanwhile.
        c.stop()
        ann.ok("group", "role", conv, bob.address, "admin")
        bob.ok("group", "send", conv, "while c sleeps")
        bob.ok("group", "add", conv, dan.address)
        ann.ok("group", "send", conv, "welcome dan")
        self.converged([ann, bob], conv, 8)
        c.start()
        order = self.converged([ann, bob, cat, dan], conv, 8)
        self.assertEqual(order[:4], first)
        for u in (ann, bob, cat):
            texts = [e.get("text") for e in history(u, conv) if e["kind"] == "message"]
            self.assertEqual(texts, ["hello team from ann", "bob here", "cat here",
                                     "while c sleeps", "welcome dan"], u.address)
        members = json.loads(dan.ok("group", "members", conv, "--json"))
        self.assertEqual({m["user"]: m["role"] for m in members},
                         {ann.address: "admin", bob.address: "admin", cat.address: "member",
                          dan.address: "member"})

        # bob is removed: his node learns it and then hears nothing more of the group.
        ann.ok("group", "remove", conv, bob.address)
        wait_for(lambda: bob.run("group", "members", conv).returncode == 5, what="bob removed")
        on_b = conv_events(b, conv)
        ann.ok("group", "send", conv, "after bob left")
        self.converged([ann, cat, dan], conv, 10)
        self.assertEqual(conv_events(b, conv), on_b)
        # Sender keys: ann's messages used one chain until bob was removed; the next one starts a
        # new chain, given to the remaining members' devices only.
        anns = [body for author, body in message_bodies(a, conv) if author == ann.address]
        chains = [body["sk"][4:20] for body in anns]
        self.assertEqual(len(set(chains[:-1])), 1)
        self.assertNotEqual(chains[-1], chains[0])
        given_to = {e["u"] for e in mp_unpack(anns[-1]["dist"])[0]["to"]}
        self.assertEqual(given_to, {cat.address, dan.address})
        # "welcome dan" reused the chain: everyone reachable held it (dan's node was down, so he
        # had no keys to give it to and cannot read that one).
        self.assertNotIn("dist", anns[1])
        # Not only the remover rekeys: cat's chain had reached bob's device ("cat here"), so her
        # next message starts a new one too, given to ann and dan only (crypto.md section 6).
        cat.ok("group", "send", conv, "cat after bob left")
        self.converged([ann, cat, dan], conv, 11)
        cats = [body for author, body in message_bodies(c, conv) if author == cat.address]
        self.assertNotEqual(cats[-1]["sk"][4:20], cats[0]["sk"][4:20])
        self.assertEqual({e["u"] for e in mp_unpack(cats[-1]["dist"])[0]["to"]},
                         {ann.address, dan.address})
        r = bob.run("group", "send", conv, "still here?")
        self.assertEqual(r.returncode, 5, r.stderr)

        # No node, log or database holds a message's plaintext.
        for n in self.nodes:
            for root, _, files in os.walk(n.data):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        data = fh.read()
                    for text in (b"hello team from ann", b"while c sleeps", b"after bob left"):
                        self.assertNotIn(text, data, os.path.join(root, f))


class MemberNodeDown(unittest.TestCase):
    """A group send does not wait for a member's node that does not answer: the message goes to
    the reachable members at once, and the sender's chain is handed to the others' devices when
    their node answers again (spec/crypto.md section 8a, key handover)."""

    def setUp(self):
        self.nodes = [Node(name=n, federation=True).start()
                      for n in ("a.example", "b.example", "c.example")]
        for n in self.nodes:
            for other in self.nodes:
                if other is not n:
                    n.parleyd("peer", "add", other.name, "http://127.0.0.1:%d" % other.fed_port,
                              check=True)
        a, b, c = self.nodes
        a.add_user("ann")
        b.add_user("bob")
        c.add_user("cat")
        c.add_user("dan")
        self.users = [User(a, "ann"), User(b, "bob"), User(c, "cat"), User(c, "dan")]
        for u in self.users:
            self.assertEqual(u.login().returncode, 0)
        self.stopped = None

    def tearDown(self):
        if self.stopped:
            self.stopped.proc.send_signal(signal.SIGCONT)
        for n in self.nodes:
            n.cleanup()

    def texts(self, user, conv):
        return [e.get("text") for e in history(user, conv) if e["kind"] == "message"]

    def test_first_message_goes_out_at_once_and_the_chain_follows_when_the_node_is_back(self):
        a, b, c = self.nodes
        ann, bob, cat, dan = self.users
        conv = json.loads(ann.ok("group", "create", "team", "--member", bob.address, "--member",
                                 cat.address, "--member", dan.address, "--json"))["conv"]
        for u in (bob, cat, dan):
            wait_for(lambda: conv in u.ok("group", "list"), what="%s sees the group" % u.address)
        # Bob knows cat's and dan's verified device lists (as after comparing safety numbers)
        # but has no session with their devices and has never sent to the group.
        bob.ok("verify", cat.address)
        bob.ok("verify", dan.address)

        # c stops answering: requests to it hang until they time out, as to a host that went
        # away (SIGSTOP keeps its port open). Bob's first two messages go out at once anyway.
        c.proc.send_signal(signal.SIGSTOP)
        self.stopped = c
        for text in ("bob first", "bob second"):
            started = time.time()
            r = bob.run("group", "send", conv, text)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(time.time() - started, 10, "the send waited for the stopped node")
        wait_for(lambda: self.texts(ann, conv) == ["bob first", "bob second"], timeout=30,
                 what="ann reads both at once")
        # The handover waits in bob's profile (so this CLI process may end), one per member.
        db = sqlite3.connect(os.path.join(bob.profile, "profile.db"))
        try:
            waiting = sorted(u for (u,) in db.execute("SELECT user FROM e2e_group_handover"))
        finally:
            db.close()
        self.assertEqual(waiting, [cat.address, dan.address])

        # c answers again: any later command of bob's hands his chain over, from the first
        # message they missed, so cat and dan read both messages.
        c.proc.send_signal(signal.SIGCONT)
        self.stopped = None

        def read_by_c():
            bob.ok("sync")
            return all(self.texts(u, conv) == ["bob first", "bob second"] for u in (cat, dan))
        wait_for(read_by_c, timeout=120, what="cat and dan read bob's messages")
        for u in (ann, bob):  # the handover is not a message anyone sees
            self.assertEqual(self.texts(u, conv), ["bob first", "bob second"], u.address)
        db = sqlite3.connect(os.path.join(bob.profile, "profile.db"))
        try:
            self.assertEqual(db.execute("SELECT count(*) FROM e2e_group_handover").fetchone()[0],
                             0)
        finally:
            db.close()
        # On the wire: a message event whose body has no sender-key message, only the chain for
        # cat's and dan's devices.
        bobs = [body for author, body in message_bodies(b, conv) if author == bob.address]
        self.assertEqual(len(bobs), 3)
        self.assertNotIn("sk", bobs[2])
        self.assertEqual({e["u"] for e in mp_unpack(bobs[2]["dist"])[0]["to"]},
                         {cat.address, dan.address})
        # Later messages need no handover: cat's devices hold the chain now.
        bob.ok("group", "send", conv, "bob third")
        wait_for(lambda: self.texts(cat, conv)[-1:] == ["bob third"], timeout=60,
                 what="cat reads the third")
        self.assertNotIn("dist", [body for author, body in message_bodies(b, conv)
                                  if author == bob.address][-1])


class OneNode(unittest.TestCase):
    def setUp(self):
        self.node = Node().start()
        for name in ("ann", "bob", "cat"):
            self.node.add_user(name)
        self.ann, self.bob, self.cat = (User(self.node, n) for n in ("ann", "bob", "cat"))
        for u in (self.ann, self.bob, self.cat):
            self.assertEqual(u.login().returncode, 0)

    def tearDown(self):
        self.node.cleanup()

    def test_roles_leave_and_refusals(self):
        ann, bob, cat = self.ann, self.bob, self.cat
        conv = ann.ok("group", "create", "book club", "--member", bob.address).strip()
        # A plain member may not add; an unknown local user cannot be added.
        r = bob.run("group", "add", conv, cat.address)
        self.assertEqual(r.returncode, 5)
        self.assertIn("not allowed", r.stderr.lower().replace("_", " "))
        r = ann.run("group", "add", conv, "nobody@example.org")
        self.assertEqual(r.returncode, 5)
        r = cat.run("group", "members", conv)
        self.assertEqual(r.returncode, 5)  # not a member: as if it did not exist
        ann.ok("group", "add", conv, cat.address, "--role", "admin")
        cat.ok("group", "remove", conv, bob.address)
        bob_groups = json.loads(bob.ok("group", "list", "--json"))
        self.assertEqual([(g["conv"], g["role"]) for g in bob_groups], [(conv, "removed")])
        cat.ok("group", "leave", conv)
        members = json.loads(ann.ok("group", "members", "book club", "--json"))
        self.assertEqual(members, [{"user": ann.address, "role": "admin"}])
        kinds = [(e["kind"], e["valid"]) for e in history(ann, conv)]
        self.assertEqual(kinds, [("create", True), ("add", True), ("remove", True),
                                 ("leave", True)])
        r = ann.run("group", "members", "no such group")
        self.assertEqual(r.returncode, 5)

    def test_admin_sees_members_nodes_and_counts_but_no_content(self):
        ann, bob = self.ann, self.bob
        conv = ann.ok("group", "create", "book club", "--member", bob.address,
                      "--member", "zed@far.example").strip()
        ann.ok("group", "send", conv, "secret words")
        listed = json.loads(self.node.parleyd("conv", "list", "--json", check=True).stdout)
        self.assertEqual([c["conv"] for c in listed], [conv])
        shown = self.node.parleyd("conv", "show", conv, "--json", check=True).stdout
        c = json.loads(shown)
        self.assertEqual(c["events"], 2)
        self.assertEqual(c["buffered"], 0)
        self.assertEqual({m["user"]: m["role"] for m in c["members"]},
                         {ann.address: "admin", bob.address: "member", "zed@far.example": "member"})
        self.assertEqual(c["nodes"], ["example.org", "far.example"])
        self.assertEqual(c["clock"], {"example.org#0": 2})
        human = self.node.parleyd("conv", "show", conv, check=True).stdout
        self.assertIn("admin    " + ann.address, human)
        listing = self.node.parleyd("conv", "list", check=True).stdout
        self.assertIn(conv, listing)
        for out in (shown, human, listing):
            self.assertNotIn("book club", out)
            self.assertNotIn("secret", out)
        r = self.node.parleyd("conv", "show", "g:" + "0" * 32)
        self.assertEqual(r.returncode, 4, r.stderr)  # not found
        self.assertIn("no conversation", r.stderr)
        # Whatever the id holds is one path segment: a mistyped id is simply not found.
        for odd in ("g:a b", "a?b", "a#b", "x/y", "%41"):
            r = self.node.parleyd("conv", "show", odd)
            self.assertEqual(r.returncode, 4, (odd, r.stderr))
            self.assertIn("no conversation " + odd + "\n", r.stderr)
        self.assertEqual(self.node.parleyd("conv", "show", "").returncode, 2)  # usage

    def test_edits_recalls_reactions_and_read_markers(self):
        ann, bob, cat = self.ann, self.bob, self.cat
        conv = ann.ok("group", "create", "kitchen", "--member", bob.address, "--member",
                      cat.address).strip()
        first = ann.ok("group", "send", conv, "lunch at 12?").split()[2]
        second = bob.ok("group", "send", conv, "sure").split()[2]
        ann.ok("group", "edit", conv, first[:10], "lunch at 1?")  # a unique prefix will do
        cat.ok("group", "react", conv, first, "+1")
        r = cat.run("group", "edit", conv, second, "not mine")
        self.assertEqual(r.returncode, 5)  # only the author edits
        self.assertIn("not", r.stderr)
        bob.ok("group", "recall", conv, second)
        cat.ok("group", "read", conv)
        for u in (ann, bob, cat):
            rows = history(u, conv)
            msgs = [r for r in rows if r["kind"] == "message"]
            self.assertEqual([(m["id"], m["text"], m["edited"], m["recalled"]) for m in msgs],
                             [(first, "lunch at 1?", True, False), (second, "", False, True)],
                             u.address)
            self.assertEqual(msgs[0]["reactions"], [{"user": cat.address, "text": "+1"}])
            self.assertTrue(all(r["valid"] for r in rows))
            self.assertEqual(rows[-1]["kind"], "read")
        human = ann.ok("history", conv)
        self.assertIn("lunch at 1? (edited)  [+1 %s]" % cat.address, human)
        self.assertIn("[recalled]", human)
        # Contents are end-to-end: the node holds none of them.
        with open(os.path.join(self.node.data, "parley.db"), "rb") as f:
            data = f.read()
        for text in (b"lunch at 1?", b"lunch at 12?", b"not mine"):
            self.assertNotIn(text, data)


if __name__ == "__main__":
    unittest.main()


class OneToOneOrder(unittest.TestCase):
    """1:1 conversations are ordered by vector clocks too: messages written concurrently on two
    nodes (each side cut off from the other) show in the same order on both sides."""

    def test_concurrent_messages_in_the_same_order_on_both_nodes(self):
        from harness import befriend_across, two_nodes
        a, b, alice, bob = two_nodes()
        try:
            befriend_across(alice, bob)
            alice.ok("send", bob.address, "hi bob")
            wait_for(lambda: "hi bob" in bob.ok("sync"), what="first message")
            bob.ok("send", alice.address, "hi alice")
            wait_for(lambda: "hi alice" in alice.ok("sync"), what="answer")
            # Cut both directions: each node queues for the other.
            for n, other in ((a, "b.example"), (b, "a.example")):
                n.parleyd("peer", "add", other, "http://127.0.0.1:9", check=True)
            for i in range(3):
                alice.ok("send", bob.address, "alice %d" % i)
                bob.ok("send", alice.address, "bob %d" % i)
            for n, other in ((a, b), (b, a)):
                n.parleyd("peer", "add", other.name, "http://127.0.0.1:%d" % other.fed_port,
                          check=True)

            def texts(user):
                user.ok("sync")
                return [m["text"] for m in json.loads(user.ok("history", user is alice and
                                                              bob.address or alice.address,
                                                              "--json"))]
            wait_for(lambda: len(texts(alice)) == 8 and len(texts(bob)) == 8, timeout=90,
                     what="all eight messages on both sides")
            self.assertEqual(texts(alice), texts(bob))
            # Concurrent: each side's three messages interleave by clock sum, alice's node first.
            self.assertEqual(texts(alice)[2:], ["alice 0", "bob 0", "alice 1", "bob 1",
                                                "alice 2", "bob 2"])
        finally:
            a.cleanup()
            b.cleanup()
