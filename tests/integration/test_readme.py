"""README.md's commands run as written, so the README cannot drift from the CLIs.

Every line of every ```sh block of README.md is either run or listed in SKIPPED with the reason.
Each block runs in a fresh sandbox directory against real nodes on loopback. What a test cannot
do literally is substituted, always in the same documented way (see `Sandbox.substitute`):

- `parleyd` / `parley` at the start of a command are the build's binaries; `build/` in the
  sandbox is a link to the build directory, so `build/cli/parleyd` is the same binary.
- Paths: `/var/...` and `/tmp/...` live under the sandbox; `~` (HOME) is the sandbox's home.
- `sudo` and `sudo -u parley` are dropped: the test runs everything as its own user.
- Ports: the README's loopback ports (7420-7423) may be taken on a shared machine, so a node's
  config.toml gets free ports right after `init` wrote it, and `127.0.0.1:7420` or
  `chat.example.org:7420` in a command is the client port of the sandbox's node. Password
  hashing is made cheap (as in every suite) and nodes federate over plain HTTP on loopback.
- A password prompt gets "correct horse battery" typed on a terminal (stdin is a pty).
- Long runs: `parleyd serve` and `scripts/start-node.sh` run in the background until the block
  ends; `parley listen` gets a Ctrl-C (SIGINT) after 2 s; `systemctl enable --now parleyd` runs
  the unit's ExecStartPre and ExecStart (packaging/parleyd.service) with its Environment, and
  `systemctl reload parleyd` its ExecReload (SIGHUP).
- Values only a running system knows: `g:…` is the group id `group create` printed; device
  `7` is the id of the second device the setup logs in; message `12` is the number of the
  message bob's setup step sent.

The "Next: ..." lines that `parleyd init` and scripts/start-node.sh print are run literally too.
"""
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import BUILD, PARLEY, PARLEYD, free_port, spawn, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PASSWORD = "correct horse battery"

# README lines that cannot run in a test, with why. Reviewed: add a line here only with a reason.
SKIPPED = {
    "scripts/test.sh": "runs this very suite",
    "sudo useradd --system --home /var/lib/parley --shell /usr/sbin/nologin parley":
        "creates a system account; the test runs as its own user",
    "sudo install -m 0755 build/cli/parleyd /usr/local/bin/parleyd":
        "installs system-wide; `parleyd` is the build's binary here",
    "sudo install -d -o parley -g parley -m 0700 /var/lib/parley":
        "needs the parley account; init creates the directory (mode 0700) itself",
    "sudo install -m 0644 packaging/parleyd.service /etc/systemd/system/parleyd.service":
        "installs a systemd unit; no systemd in a test",
    "sudo systemctl daemon-reload": "no systemd in a test",
    "journalctl -u parleyd -f": "follows the journal forever; no systemd in a test",
}


def sh_blocks():
    """The ```sh blocks of README.md: [(line number of the first command, [lines])]."""
    blocks, current, start = [], None, 0
    with open(os.path.join(ROOT, "README.md")) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if current is None and line.strip() == "```sh":
                current, start = [], n + 1
            elif current is not None and line.strip() == "```":
                blocks.append((start, current))
                current = None
            elif current is not None:
                current.append((n, line))
    return blocks


def block_starting(first_command):
    """The README lines of the sh block whose first command starts with `first_command`."""
    for _, lines in sh_blocks():
        if lines and lines[0][1].startswith(first_command):
            return lines
    raise AssertionError("README.md has no sh block starting with " + first_command)


def command_of(line):
    """The command without its trailing comment (README comments start with two spaces + #)."""
    return re.sub(r"\s+#\s.*$", "", line).strip()


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Sandbox:
    """A fresh directory standing in for the machine of one README block."""

    def __init__(self, test):
        self.test = test
        self.dir = tempfile.mkdtemp(prefix="parley-readme-")
        os.symlink(os.path.abspath(BUILD), os.path.join(self.dir, "build"))
        os.symlink(os.path.join(ROOT, "packaging"), os.path.join(self.dir, "packaging"))
        for d in ("home", "tmp", "var"):
            os.makedirs(os.path.join(self.dir, d))
        self.env = dict(os.environ, HOME=os.path.join(self.dir, "home"))
        self.env.pop("PARLEYD_DATA", None)
        self.env.pop("PARLEY_PROFILE", None)
        self.ports = {}  # data dir -> {README port: sandbox port}
        self.background = []  # (README line, process)
        self.values = {}  # README placeholder -> value known at run time
        self.nodes = []  # harness Nodes made by setups
        test.addCleanup(self.cleanup)

    def path(self, p):
        return os.path.join(self.dir, p.lstrip("/"))

    def substitute(self, command):
        for placeholder, value in self.values.items():
            command = command.replace(placeholder, value)
        command = re.sub(r"\bsudo -u parley ", "", command)
        command = re.sub(r"\bsudo ", "", command)
        # /var and /tmp move into the sandbox, but not a path already in one (as start-node.sh
        # prints it) and not this checkout or its build, which may themselves be under /tmp (CI).
        kept = sorted({ROOT, os.path.abspath(BUILD)}, key=len, reverse=True)
        for i, path in enumerate(kept):
            command = command.replace(path, "\0%d\0" % i)
        command = re.sub(r"(?<![\w.])/(var|tmp)/(?!parley-readme-)",
                         lambda m: self.dir + "/" + m.group(1) + "/", command)
        for i, path in enumerate(kept):
            command = command.replace("\0%d\0" % i, path)
        command = re.sub(r"(^|;\s*)parleyd\b", lambda m: m.group(1) + PARLEYD, command)
        command = re.sub(r"(^|;\s*)parley\b", lambda m: m.group(1) + PARLEY, command)
        client = self.client_port()
        if client:
            command = re.sub(r"(127\.0\.0\.1|chat\.example\.org):7420", "127.0.0.1:%d" % client,
                             command)
        return command

    def client_port(self):
        for ports in self.ports.values():
            return ports[7420]
        for node in self.nodes:
            return node.client_port
        return None

    def patch_new_configs(self):
        """Gives every node `init` just wrote free ports (see the module docstring)."""
        for root, _, files in os.walk(self.dir, followlinks=False):
            if "config.toml" in files and root not in self.ports:
                if root.startswith(os.path.join(self.dir, "build")):
                    continue
                self.patch_config(root)

    def patch_config(self, data):
        ports = {p: free_port() for p in (7420, 7421, 7422, 7423)}
        path = os.path.join(data, "config.toml")
        with open(path) as f:
            cfg = f.read()
        for old, new in ports.items():
            cfg = cfg.replace("127.0.0.1:%d" % old, "127.0.0.1:%d" % new)
        cfg = cfg.replace('password_hash = "interactive"', 'password_hash = "test-only-minimal"')
        with open(path, "w") as f:
            f.write(cfg)
        self.ports[data] = ports

    def terminal(self):
        """A pty as stdin with the password typed twice (prompts read one line each)."""
        master, slave = pty.openpty()
        os.write(master, ((PASSWORD + "\n") * 2).encode())
        return master, slave

    def run(self, n, line, timeout=60):
        """Runs README line `n` as written (after substitution); fails the test if it fails."""
        command = self.substitute(command_of(line))
        master, slave = self.terminal()
        try:
            r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], stdin=slave,
                               capture_output=True, text=True, timeout=timeout, cwd=self.dir,
                               env=self.env)
        finally:
            os.close(slave)
            os.close(master)
        self.patch_new_configs()
        self.test.assertEqual(
            r.returncode, 0, "README.md:%d `%s` failed (exit %d; run as `%s`):\n%s%s" %
            (n, line.strip(), r.returncode, command, r.stdout, r.stderr))
        return r.stdout

    def start_background(self, n, line, command=None, wait_port=None, env=None):
        command = command or self.substitute(command_of(line))
        master, slave = self.terminal()
        log = open(os.path.join(self.dir, "background-%d.log" % n), "w+")
        p = spawn(["bash", "-c", "exec " + command], stdin=slave, stdout=log,
                  stderr=subprocess.STDOUT, cwd=self.dir, env=env or self.env)
        os.close(slave)
        # The terminal stays open while the process runs: closing it would hang it up (SIGHUP).
        log.terminal = master
        self.background.append((n, line, p, log))
        if wait_port:
            wait_for(lambda: p.poll() is not None or listening(wait_port()), timeout=60,
                     what="README.md:%d to serve" % n)
            log.seek(0)
            self.test.assertIsNone(p.poll(), "README.md:%d `%s` exited:\n%s" %
                                   (n, line, log.read()))
        return p, log

    def serve_data(self):
        """The data directory a README command serves or talks to: the one patched last."""
        return list(self.ports)[-1]

    def admin_port(self):
        return self.ports[self.serve_data()][7422]

    def stop_background(self):
        for n, line, p, log in self.background:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    rc = p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    rc = "none (killed)"
                log.seek(0)
                self.test.assertIn(rc, (0, -signal.SIGTERM), "README.md:%d `%s` did not stop "
                                   "cleanly on SIGTERM (%s):\n%s" % (n, line, rc, log.read()))
            self.close_log(log)
        self.background = []

    @staticmethod
    def close_log(log):
        if not log.closed:
            os.close(log.terminal)
            log.close()

    def cleanup(self):
        for _, _, p, log in self.background:
            if p.poll() is None:
                p.kill()
                p.wait()
            self.close_log(log)
        for node in self.nodes:
            node.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_block(self, lines, hooks=None):
        """Runs each README line of a block: skipped ones are listed in SKIPPED; `hooks` maps
        the start of a command to (before, after) setup steps around it."""
        hooks = hooks or {}
        for n, line in lines:
            command = command_of(line)
            if not command:
                continue
            if command in SKIPPED:
                continue
            before, after = next((h for k, h in hooks.items() if command.startswith(k)),
                                 (None, None))
            if before:
                before()
            self.run_line(n, line, command)
            if after:
                after()
        self.stop_background()

    def run_line(self, n, line, command):
        if command.startswith("scripts/start-node.sh"):
            self.start_node_script(n, line)
        elif re.search(r"\bparleyd serve\b", command) or re.search(r"\bserve --data", command):
            self.start_background(n, line, wait_port=self.admin_port)
        elif command == "sudo systemctl enable --now parleyd":
            self.start_unit(n, line)
        elif command == "sudo systemctl reload parleyd":
            self.reload_unit(n, line)
        elif re.search(r"(^|; )parley listen\b", command):
            p, log = self.start_background(n, line)
            time.sleep(2)
            p.send_signal(signal.SIGINT)  # the Ctrl-C
            rc = p.wait(timeout=20)
            self.background.pop()
            self.close_log(log)
            with open(log.name) as f:
                out = f.read()
            self.test.assertEqual(rc, 0, "README.md:%d `%s` after Ctrl-C:\n%s" % (n, line, out))
        else:
            out = self.run(n, line)
            m = re.search(r"\bg:[0-9a-f]{32}\b", out)
            if "group create" in command and m:
                self.values["g:…"] = m.group(0)

    def unit(self):
        """ExecStartPre, ExecStart, ExecReload and Environment of packaging/parleyd.service."""
        with open(os.path.join(ROOT, "packaging", "parleyd.service")) as f:
            text = f.read()
        get = lambda key: re.search(r"^%s=(.*)$" % key, text, re.M).group(1)
        env = dict(self.env)
        k, v = get("Environment").split("=", 1)
        env[k] = self.substitute(v)
        binary = lambda cmd: cmd.replace("/usr/local/bin/parleyd", PARLEYD)
        return binary(get("ExecStartPre")), binary(get("ExecStart")), get("ExecReload"), env

    def start_unit(self, n, line):
        pre, start, _, env = self.unit()
        r = subprocess.run(pre.split(), capture_output=True, text=True, env=env, timeout=60)
        self.test.assertEqual(r.returncode, 0, "ExecStartPre (%s) failed:\n%s%s" %
                              (pre, r.stdout, r.stderr))
        self.start_background(n, line, command=start, wait_port=self.admin_port, env=env)

    def reload_unit(self, n, line):
        _, _, reload, _ = self.unit()
        self.test.assertEqual(reload, "/bin/kill -HUP $MAINPID")
        p = [p for _, l, p, _ in self.background if "systemctl enable" in l][-1]
        p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.test.assertIsNone(p.poll(), "the node exited on reload")

    def start_node_script(self, n, line):
        """scripts/start-node.sh in a copy of the repository's layout whose install and build
        steps are no-ops (the build exists); the node it creates gets free ports first."""
        os.makedirs(self.path("scripts"))
        shutil.copy(os.path.join(ROOT, "scripts", "start-node.sh"), self.path("scripts"))
        stubs = self.path("stubs")
        os.makedirs(stubs)
        for stub in (self.path("scripts/install-deps.sh"), os.path.join(stubs, "cmake")):
            with open(stub, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(stub, 0o755)
        # The script creates the node only if none is there: create it as the script would
        # (same command, default name) and give it free ports.
        data = self.path("parley-data")
        subprocess.run([PARLEYD, "init", "--data", data, "--name", "example.org"], check=True,
                       capture_output=True, timeout=60)
        self.patch_config(data)
        env = dict(self.env, PATH=stubs + ":" + self.env["PATH"])
        p, log = self.start_background(n, line, env=env, wait_port=self.admin_port)
        log.seek(0)
        self.script_output = log.read()
        return self.script_output


class ReadmeBlocks(unittest.TestCase):
    def test_every_sh_block_is_covered_here(self):
        # A new sh block must get a test below; this list names each by its first command.
        firsts = [lines[0][1].split("  #")[0].strip() for _, lines in sh_blocks()]
        self.assertEqual(firsts, [
            "scripts/start-node.sh",
            "build/cli/parleyd --data parley-data user add alice",
            "parleyd init --data /var/lib/parley --name example.org",
            "sudo useradd --system --home /var/lib/parley --shell /usr/sbin/nologin parley",
            "sudo -u parley parleyd --data /var/lib/parley backup create "
            "/var/backups/parley/$(date +%F)",
            "parley login alice@example.org --server chat.example.org:7420",
        ])

    def test_quick_start(self):
        box = Sandbox(self)
        box.run_block(block_starting("scripts/start-node.sh") +
                      block_starting("build/cli/parleyd --data parley-data"))

    def test_start_node_prints_next_steps_that_work(self):
        box = Sandbox(self)
        box.start_node_script(0, "scripts/start-node.sh")
        lines = box.script_output.split("In another terminal:\n", 1)[1].splitlines()
        commands = [l.strip() for l in lines if l.startswith("  build/cli/")]
        self.assertEqual(len(commands), 2, box.script_output)
        for c in commands:
            box.run(0, c)
        box.stop_background()

    def test_admin_five_minutes(self):
        box = Sandbox(self)
        box.run_block(block_starting("parleyd init --data /var/lib/parley"))

    def test_init_prints_a_next_step_that_works(self):
        box = Sandbox(self)
        out = box.run(0, "parleyd init --data /var/lib/parley --name example.org")
        nxt = [l for l in out.splitlines() if l.startswith("Next: ")]
        self.assertEqual(len(nxt), 1, out)
        command = nxt[0][len("Next: "):]
        self.assertTrue(command.startswith("parleyd "), command)
        box.start_background(0, command, command=command.replace("parleyd", PARLEYD, 1),
                             wait_port=box.admin_port)
        box.stop_background()

    def test_systemd(self):
        box = Sandbox(self)
        box.run_block(block_starting("sudo useradd"))

    def test_backups(self):
        box = Sandbox(self)
        # The block assumes a node serving /var/lib/parley.
        data = box.path("/var/lib/parley")
        subprocess.run([PARLEYD, "init", "--data", data, "--name", "example.org"], check=True,
                       capture_output=True, timeout=60)
        box.patch_config(data)
        box.start_background(0, "parleyd serve", command="%s serve --data %s" % (PARLEYD, data),
                             wait_port=box.admin_port)
        box.run_block(block_starting("sudo -u parley parleyd --data /var/lib/parley backup"))

    def test_user_five_minutes(self):
        box = Sandbox(self)
        # The block assumes a node example.org where bob and mallory have accounts, and a node
        # other.org (bob, cat, dan) that it federates with.
        here = harness.Node(name="example.org", federation=True).start()
        there = harness.Node(name="other.org", federation=True).start()
        box.nodes += [here, there]
        here.parleyd("peer", "add", "other.org", "http://127.0.0.1:%d" % there.fed_port, check=True)
        there.parleyd("peer", "add", "example.org", "http://127.0.0.1:%d" % here.fed_port,
                      check=True)
        here.add_user("alice")
        bob, _ = harness.signed_in(here, "bob", "mallory")
        for name in ("bob", "cat", "dan"):
            there.add_user(name)
        harness.signed_in(there)
        for u in (harness.User(there, "cat"), harness.User(there, "dan")):
            u.login()
        phone = harness.User(here, "alice", device="phone")
        listener = []

        def second_device():  # device 7 of the README: alice's second, not yet approved
            r = phone.login()
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.search(r"parley devices approve (\d+)", r.stdout + r.stderr)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            box.values["approve 7"] = "approve " + m.group(1)
            box.values["remove 7"] = "remove " + m.group(1)

        def bob_listens():  # so that "delivered" comes
            listener.append(spawn([PARLEY, "--profile", bob.profile, "listen"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)

        def bob_stops():
            listener.pop().terminate()

        def bob_writes():  # the message alice reports
            r = bob.run("send", "alice@example.org", "buy cheap watches")
            self.assertEqual(r.returncode, 0, r.stderr)
            box.values["bob@example.org 12"] = "bob@example.org " + re.search(
                r"#(\d+)", r.stdout).group(1)
            box.run(0, "parley sync")

        box.run_block(block_starting("parley login alice@example.org"), hooks={
            "parley friend request bob@example.org": (
                None, lambda: self.assertEqual(bob.run("friend", "accept",
                                                       "alice@example.org").returncode, 0)),
            "parley send bob@example.org": (bob_listens, bob_stops),
            "parley devices ; parley devices approve": (second_device, None),
            "parley report bob@example.org": (bob_writes, None),
        })


if __name__ == "__main__":
    unittest.main()
