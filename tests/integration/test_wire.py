"""Wire-level strictness on the client port (spec/client-protocol.md §1-2, §4) and admin
listings that hold up against strings stored before the node checked them."""
import json
import os
import sqlite3
import struct
import subprocess
import unittest

from harness import PARLEY, Node, RawClient, signed_in


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


class FrameStrictness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node().start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def bye_for(self, raw_bytes):
        c = RawClient(self.node.client_port)
        c.send_raw(raw_bytes)
        frames = c.closed_within(10)
        c.close()
        self.assertTrue(frames, "closed without a bye")
        self.assertEqual(frames[-1].get("t"), "bye", frames)
        return frames[-1]["code"]

    def test_zero_length_frame_is_frame_too_large(self):
        self.assertEqual(self.bye_for(b"\x00\x00\x00\x00"), "frame_too_large")

    def test_non_string_key_is_malformed(self):
        # {"t":"ping","id":1, 7:"x"}
        self.assertEqual(self.bye_for(frame(b"\x83\xa1t\xa4ping\xa2id\x01\x07\xa1x")),
                         "malformed_frame")
        # a nested map with a boolean key
        self.assertEqual(self.bye_for(frame(b"\x83\xa1t\xa4ping\xa2id\x01\xa1m\x81\xc3\x01")),
                         "malformed_frame")

    def test_invalid_utf8_is_malformed(self):
        for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
            payload = b"\x83\xa1t\xa5login\xa2id\x01\xa4user" + bytes([0xA0 | len(bad)]) + bad
            with self.subTest(bad=bad):
                self.assertEqual(self.bye_for(frame(payload)), "malformed_frame")

    def test_other_connections_and_valid_utf8_are_unaffected(self):
        good = RawClient(self.node.client_port)
        self.bye_for(frame(b"\x81\xa1t\xa1\xff"))
        r = good.request("ping")
        self.assertTrue(r["ok"])
        # Multi-byte UTF-8 passes the parser (and gets an ordinary answer).
        r = good.request("login", user="alice@example.org", password="pässwörd ☕", device="café ☕")
        self.assertEqual(r.get("code"), "bad_credentials")
        good.close()


class BadStringsStoredEarlier(unittest.TestCase):
    """Rows written before the parser checked UTF-8 (older data) never break a listing."""

    def test_report_list_and_sessions_survive_invalid_utf8(self):
        node = Node().start()
        self.addCleanup(node.cleanup)
        alice, bob = signed_in(node, "alice", "bob")
        db = sqlite3.connect(os.path.join(node.data, "parley.db"))
        db.execute("UPDATE devices SET label = CAST(X'41ff42' AS TEXT)")
        db.execute("INSERT INTO reports(reporter, reporter_device, conv_id, sender, reason, "
                   "created_ms) VALUES ('alice@example.org', 1, 'dm:x', 'bob@example.org', "
                   "CAST(X'7370616dc0af' AS TEXT), 1)")
        db.execute("INSERT INTO reports(reporter, reporter_device, conv_id, sender, reason, "
                   "created_ms) VALUES ('bob@example.org', 2, 'dm:x', 'alice@example.org', "
                   "'fine', 2)")
        db.commit()
        db.close()
        for args in (["report", "list"], ["report", "list", "--json"], ["report", "show", "1"],
                     ["user", "sessions", "alice"], ["user", "sessions", "alice", "--json"]):
            r = node.parleyd(*args)
            with self.subTest(args=args):
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("\ufffd", r.stdout)  # the bad bytes, shown as U+FFFD
                if "--json" in args:
                    json.loads(r.stdout)
        self.assertIn("fine", node.parleyd("report", "list").stdout)  # the other row too


class ClientRefusesBadText(unittest.TestCase):
    def test_parley_refuses_an_argument_that_is_not_utf8(self):
        r = subprocess.run([PARLEY.encode(), b"--profile", b"/nonexistent/p", b"profile",
                            b"--display-name", b"A\xffB"], capture_output=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"argument 5 is not valid UTF-8", r.stderr)


if __name__ == "__main__":
    unittest.main()
