"""Both CLIs take --data (parleyd) and --profile (parley) anywhere on the line: before the
command, between command and subcommand, and after the last argument, for every command, as the
README, `parleyd init` and scripts/start-node.sh print them."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import PARLEY, PARLEYD, Node

# Values for the positionals of the commands, by the name their --help shows.
DUMMIES = {"NAME": "alice", "URL": "http://127.0.0.1:9", "ID": "1", "DEVICE": "1", "LEVEL": "info",
           "DIR": "/nonexistent/parley-backup", "TARGET": "bob@example.org", "LIFETIME": "30d",
           "ADDRESS": "bob@example.org", "TEXT": "hi", "CONV": "bob@example.org", "MSG": "1",
           "GROUP": "team", "EVENT": "abcd", "ROLE": "member", "REACTION": "+1"}
# Commands whose run would do more than fail fast against a stopped node (they are run by the
# README test and the other suites instead).
NOT_RUN = {("serve",), ("init",), ("listen",)}


def leaves(binary, path=()):
    """Every runnable command of `binary` as (path, positionals), found through --help."""
    out = subprocess.run([binary] + list(path) + ["--help"], capture_output=True, text=True,
                         timeout=30).stdout
    subs = []
    if "Subcommands:" in out:
        for line in out.split("Subcommands:", 1)[1].splitlines():
            m = re.match(r"^  (\S+)\s", line)
            if m:
                subs.append(m.group(1))
    usage = re.search(r"^Usage: \S+((?: \S+)*)", out, re.M).group(1).split()
    positionals = [w for w in usage[len(path):] if re.fullmatch(r"\[?[A-Z]+\]?", w) and
                   w.strip("[]") not in ("OPTIONS", "SUBCOMMAND")]
    found = []
    if not subs or "[SUBCOMMAND]" in usage or "SUBCOMMAND" not in usage:
        found.append((path, [p.strip("[]") for p in positionals if not p.startswith("[")]))
    for s in subs:
        found += leaves(binary, path + (s,))
    return found


class OptionAnywhere(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node()  # initialized, not serving: admin commands fail fast as unreachable

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def placements(self, flag, value, path, args):
        yield [flag, value] + list(path) + args
        if len(path) > 1:
            yield [path[0], flag, value] + list(path[1:]) + args
        yield list(path) + args + [flag, value]

    def test_parleyd_data_anywhere_for_every_command(self):
        commands = [c for c in leaves(PARLEYD) if c[0] not in NOT_RUN]
        self.assertGreater(len(commands), 30)  # every admin command is found
        for path, positionals in commands:
            args = [DUMMIES[p] for p in positionals]
            for argv in self.placements("--data", self.node.data, path, args):
                r = subprocess.run([PARLEYD] + argv, capture_output=True, text=True, timeout=60,
                                   stdin=subprocess.DEVNULL)
                with self.subTest(argv=argv):
                    self.assertNotIn("not expected", r.stderr)
                    self.assertNotIn("is required", r.stderr)
                    # Each either worked on the node (key show, config check, backup) or
                    # failed to reach it: the data directory was the one given.
                    if r.returncode == 3:
                        self.assertIn(self.node.data, r.stderr)

    def test_parleyd_help_of_every_command_shows_data(self):
        for path, _ in leaves(PARLEYD):
            out = subprocess.run([PARLEYD] + list(path) + ["--help"], capture_output=True,
                                 text=True, timeout=30).stdout
            self.assertIn("--data", out, path)

    def test_parley_profile_anywhere_for_every_command(self):
        commands = [c for c in leaves(PARLEY) if c[0] not in NOT_RUN]
        self.assertGreater(len(commands), 35)
        tmp = tempfile.mkdtemp(prefix="parley-cli-")
        for i, (path, positionals) in enumerate(commands):
            args = [DUMMIES[p] for p in positionals]
            if path == ("login",):
                args += ["--server", "127.0.0.1:9", "--password-stdin"]
            if path == ("profile",):
                args += ["--display-name", "A"]
            for j, argv in enumerate(self.placements("--profile", "", path, args)):
                profile = os.path.join(tmp, "p%d-%d" % (i, j))
                argv = [profile if a == "" else a for a in argv]
                r = subprocess.run([PARLEY] + argv, capture_output=True, text=True, timeout=60,
                                   input="pw\n")
                with self.subTest(argv=argv):
                    self.assertNotIn("not expected", r.stderr)
                    self.assertNotEqual(r.returncode, 2, r.stderr)
                    # The profile given is the one opened (created on first use).
                    self.assertTrue(os.path.isdir(profile), r.stderr)

    def test_parley_help_of_every_command_shows_profile(self):
        for path, _ in leaves(PARLEY):
            out = subprocess.run([PARLEY] + list(path) + ["--help"], capture_output=True,
                                 text=True, timeout=30).stdout
            self.assertIn("--profile", out, path)

    def test_environment_and_conflicts(self):
        env = dict(os.environ, PARLEYD_DATA=self.node.data)
        r = subprocess.run([PARLEYD, "key", "show"], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        # An explicit --data wins over the environment, wherever it stands.
        r = subprocess.run([PARLEYD, "key", "show", "--data", "/nonexistent/x"],
                           capture_output=True, text=True, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/x", r.stderr)
        # Two different directories on one line: a usage error, nothing done.
        r = subprocess.run([PARLEYD, "--data", self.node.data, "key", "show", "--data", "/tmp/b"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--data given twice with different values", r.stderr)
        r = subprocess.run([PARLEYD, "--data", self.node.data, "key", "show", "--data",
                            self.node.data], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([PARLEY, "--profile", "/tmp/a", "sync", "--profile", "/tmp/b"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--profile given twice with different values", r.stderr)


if __name__ == "__main__":
    unittest.main()
