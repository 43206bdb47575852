"""Integration tests of running a node: Prometheus metrics, /health and /ready, the log level at
runtime, configuration reload on SIGHUP, and systemd's notification protocol."""
import os
import re
import signal
import socket
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Node, User, two_nodes, wait_for, signed_in  # noqa: E402


def http_get(node, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (node.metrics_port, path),
                                    timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """Parses Prometheus text format 0.0.4 strictly: every family has HELP and TYPE before its
    samples, every sample line parses, values are numbers. Returns ({(name, labels): value},
    {family: type})."""
    samples, types, helped = {}, {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name in helped, "TYPE before HELP: " + line
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, "unparsable sample: %r" % line
        name, labels = m.group(1), tuple(LABEL.findall(m.group(3) or ""))
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "sample without TYPE: " + line
        samples[(name, labels)] = float(m.group(4))
    return samples, types


class Metrics(unittest.TestCase):
    def test_scrape_counts_logins_messages_errors_and_peer_queues(self):
        a, b, alice, bob = two_nodes(policy="anyone")
        try:
            status, ctype, _ = http_get(a, "/health")
            self.assertEqual(status, 200)
            self.assertEqual(http_get(a, "/ready")[0], 200)
            status, ctype, text = http_get(a, "/metrics")
            self.assertEqual(status, 200)
            self.assertIn("version=0.0.4", ctype)
            before, types = parse_exposition(text)
            self.assertEqual(types["parley_logins_total"], "counter")
            self.assertEqual(types["parley_federation_transaction_seconds"], "histogram")
            a.add_user("carol")
            carol = User(a, "carol")
            self.assertEqual(carol.login().returncode, 0)
            self.assertNotEqual(carol.login(password="wrong password").returncode, 0)
            for i in range(3):
                alice.ok("send", carol.address, "local %d" % i)
            alice.ok("send", bob.address, "across")
            wait_for(lambda: "across" in bob.ok("sync"), what="federated message")
            carol.ok("sync")
            after, _ = parse_exposition(http_get(a, "/metrics")[2])
            d = lambda key: after.get(key, 0) - before.get(key, 0)  # noqa: E731
            self.assertGreaterEqual(d(("parley_logins_total", (("result", "ok"),))), 2)
            self.assertGreaterEqual(d(("parley_logins_total", (("result", "failed"),))), 1)
            self.assertGreaterEqual(d(("parley_messages_received_total", ())), 4)
            self.assertGreaterEqual(d(("parley_deliveries_total", ())), 3)
            self.assertGreaterEqual(d(("parley_errors_total", (("code", "bad_credentials"),))), 1)
            self.assertGreaterEqual(
                d(("parley_federation_events_total", (("direction", "out"),))), 1)
            # The histogram is cumulative and ends in +Inf == _count.
            buckets = sorted(((float(dict(l)["le"]), v) for (n, l), v in after.items()
                              if n == "parley_federation_transaction_seconds_bucket"),
                             key=lambda x: x[0])
            self.assertEqual(buckets[-1][0], float("inf"))
            self.assertTrue(all(x[1] <= y[1] for x, y in zip(buckets, buckets[1:])))
            self.assertEqual(buckets[-1][1],
                             after[("parley_federation_transaction_seconds_count", ())])
            self.assertGreaterEqual(buckets[-1][1], 1)
            self.assertGreater(after[("parley_database_bytes", ())], 0)
            self.assertIn(("parley_event_loop_lag_seconds", (("loop", "core"),)), after)
            # Raised to debug, the log still holds no password (right or wrong).
            a.parleyd("log", "level", "trace", check=True)
            carol.login(password="another wrong one")
            self.assertEqual(carol.login().returncode, 0)
            for secret in ("correct horse battery", "wrong password", "another wrong one"):
                self.assertNotIn(secret, a.logs())
            # The peer goes down: its queue shows up per peer.
            b.stop()
            alice.ok("send", bob.address, "queued while b is down")
            down, _ = parse_exposition(http_get(a, "/metrics")[2])
            self.assertEqual(down[("parley_peer_queued_events", (("peer", "b.example"),))], 1)
        finally:
            a.cleanup()
            b.cleanup()

    def test_ready_only_while_serving_and_metrics_refused_off_loopback(self):
        n = Node().start()
        try:
            # Ready once serving, a moment after the ports open.
            wait_for(lambda: http_get(n, "/ready")[0] == 200, timeout=10, what="/ready")
            status, _, body = http_get(n, "/ready")
            self.assertEqual((status, body), (200, "ready\n"))
            self.assertEqual(http_get(n, "/nope")[0], 404)
        finally:
            n.cleanup()
        self.assertRaises(OSError, socket.create_connection, ("127.0.0.1", n.metrics_port), 0.5)
        d = tempfile.mkdtemp(prefix="parley-it-")
        from harness import PARLEYD
        import subprocess
        out = subprocess.run([PARLEYD, "--data", os.path.join(d, "x"), "init", "--name", "x.org",
                              "--metrics-listen", "0.0.0.0:9100"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 5, out.stderr)
        self.assertIn("metrics.allow_remote", out.stderr)


class LogLevel(unittest.TestCase):
    def test_level_changes_at_runtime_and_debug_lines_follow(self):
        n = Node().start()
        try:
            self.assertEqual(n.parleyd("log", "level", check=True).stdout.strip(), "log level: info")
            socket.create_connection(("127.0.0.1", n.client_port), timeout=2).close()
            time.sleep(0.3)
            self.assertNotIn("client_connected", n.logs())
            r = n.parleyd("log", "level", "debug", "--json", check=True)
            self.assertEqual(r.stdout.strip(), '{"level":"debug"}')
            socket.create_connection(("127.0.0.1", n.client_port), timeout=2).close()
            wait_for(lambda: "event=client_connected" in n.logs(), what="a debug line")
            self.assertIn("event=log_level_changed from=info to=debug", n.logs())
            bad = n.parleyd("log", "level", "verbose")
            self.assertEqual(bad.returncode, 2)
            n.parleyd("log", "level", "warn", check=True)
            self.assertEqual(n.parleyd("log", "level", check=True).stdout.strip(),
                             "log level: warning")
        finally:
            n.cleanup()


class Reload(unittest.TestCase):
    def test_sighup_applies_policy_and_limits_and_refuses_a_broken_file(self):
        n = Node(policy="friends").start()
        try:
            alice, bob = signed_in(n, "alice", "bob")
            refused = alice.run("send", bob.address, "before the reload")
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("friends", refused.stderr)
            cfg = os.path.join(n.data, "config.toml")
            with open(cfg) as f:
                original = f.read()
            changed = original.replace('direct_messages = "friends"', 'direct_messages = "anyone"')
            changed = changed.replace('listen = "127.0.0.1:%d"' % n.client_port,
                                      'listen = "127.0.0.1:%d"' % (n.client_port + 1))
            with open(cfg, "w") as f:
                f.write(changed)
            pid = n.proc.pid
            os.kill(pid, signal.SIGHUP)
            wait_for(lambda: "event=reloaded" in n.logs(), what="reload")
            self.assertIn("event=reload_needs_restart key=client.listen", n.logs())
            alice.ok("send", bob.address, "after the reload")  # same process, same port
            self.assertIn("after the reload", bob.ok("sync"))
            # A broken file is refused and the running configuration stays.
            with open(cfg, "w") as f:
                f.write(changed + "\n[policy]\nbogus = 1\n")
            os.kill(pid, signal.SIGHUP)
            wait_for(lambda: "event=reload_refused" in n.logs(), what="refused reload")
            alice.ok("send", bob.address, "still anyone")
            self.assertIsNone(n.proc.poll())
        finally:
            n.cleanup()


class SystemdNotify(unittest.TestCase):
    def test_ready_reloading_and_stopping_reach_notify_socket(self):
        d = tempfile.mkdtemp(prefix="parley-notify-")
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        n = Node()
        try:
            n.start(env=dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000"))
            got = []

            def until(word):
                while not any(word in m for m in got):
                    got.append(sock.recv(4096).decode())
                return [m for m in got if word in m][0]
            ready = until("READY=1")
            self.assertIn("STATUS=serving", ready)
            until("WATCHDOG=1")  # every 200 ms, from the core thread
            os.kill(n.proc.pid, signal.SIGHUP)
            reloading = until("RELOADING=1")
            self.assertRegex(reloading, r"MONOTONIC_USEC=\d+")
            got.clear()
            until("READY=1")
            n.stop()
            until("STOPPING=1")
        finally:
            sock.close()
            n.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
