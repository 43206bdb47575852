"""The node's HTTP listeners under attack (issue 14, denial of service): floods of unauthenticated
and slow federation requests, unbounded chunked bodies, connection floods from one source,
descriptor exhaustion, and discovery aimed at the node's own network. Each case runs real parleyd
processes and is bounded in time; attackers connect from other loopback addresses (127.0.0.x) than
the real peers (127.0.0.1), as they would from other hosts."""
import base64
import json
import os
import socket
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import MEMORY_SCALE, Node, User, befriend_across, rss_kib, wait_for


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fake_authorization(dest, origin="evil.example"):
    """A well-formed Parley-Sig header with a signature that cannot verify."""
    return ("Parley-Sig v=1,origin=%s,dest=%s,ts=%d,nonce=%s,key=ed25519:%s,sig=%s"
            % (origin, dest, int(time.time() * 1000), b64u(os.urandom(16)), b64u(os.urandom(32)),
               b64u(os.urandom(64))))


def connect(port, source="127.0.0.1", timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def read_status(sock, timeout=10):
    """The status code of the first response on `sock`, or None if it closed without one."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    return int(data.split(b" ")[1])


def closed_by_peer(sock, timeout):
    """True when the other side closes (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def health(node, timeout=2):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % node.metrics_port,
                                timeout=timeout) as r:
        return r.status


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class FloodedFederationPort(unittest.TestCase):
    """Two federating nodes; b's federation port is attacked while a talks to it."""

    def setUp(self):
        self.a, self.b, self.alice, self.bob = flooded_pair()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.a.cleanup()
        self.b.cleanup()

    def test_unauthenticated_and_slow_requests_leave_peers_admin_and_health_answering(self):
        port = self.b.fed_port
        befriend_across(self.alice, self.bob)
        # 60 small requests without an Authorization header, from 60 addresses: each is refused
        # from its header alone (400), before any body is read, and the refusal is immediate.
        for i in range(60):
            s = connect(port, "127.0.0.%d" % (10 + i))
            s.sendall(b"PUT /federation/v1/send/1-1 HTTP/1.1\r\nHost: b\r\n"
                      b"Content-Length: 100000\r\n\r\n")
            self.socks.append(s)
        started = time.time()
        self.assertEqual([read_status(s) for s in self.socks[-60:]], [400] * 60)
        self.assertLess(time.time() - started, 5)
        # 60 slow bodies with well-formed (unverifiable) headers, from 60 more addresses: they
        # hold connections, not the node.
        slow = []
        for i in range(60):
            s = connect(port, "127.0.1.%d" % (10 + i))
            s.sendall(("PUT /federation/v1/send/1-1 HTTP/1.1\r\nHost: b\r\nAuthorization: %s\r\n"
                       "Content-Length: 1000\r\n\r\nx" % fake_authorization("b.example")).encode())
            slow.append(s)
        self.socks += slow
        # Meanwhile the peer's signed traffic, the admin API and /health work.
        t0 = time.time()
        self.alice.ok("send", self.bob.address, "through the flood")
        wait_for(lambda: "through the flood" in self.bob.ok("sync"), timeout=20, what="delivery")
        self.assertEqual(health(self.b), 200)
        self.assertEqual(self.b.parleyd("status", "--json").returncode, 0)
        self.assertLess(time.time() - t0, 20)
        # A body that does not arrive within federation.request_timeout_seconds (3 here) is
        # answered 408 and the connection closed.
        self.assertEqual(read_status(slow[0], timeout=15), 408)
        # And the node still stops on SIGTERM (Node.stop fails the test otherwise).
        self.assertEqual(self.b.stop(), 0)

    def test_a_chunked_body_is_counted_as_it_arrives_and_cut_off_at_the_limit(self):
        pid = self.b.proc.pid
        before = rss_kib(pid)
        s = connect(self.b.fed_port, "127.0.2.1")
        self.socks.append(s)
        s.sendall(("PUT /federation/v1/send/1-1 HTTP/1.1\r\nHost: b\r\nAuthorization: %s\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % fake_authorization("b.example")).encode())
        chunk = b"%x\r\n" % (1 << 20) + b"\0" * (1 << 20) + b"\r\n"
        sent = 0
        try:
            for _ in range(512):  # up to 512 MiB if the node kept reading
                s.sendall(chunk)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertLess(sent, 64, "the node kept reading a chunked body far past 4 MiB")
        grew = rss_kib(pid) - before
        self.assertLess(grew, 64 * 1024 * MEMORY_SCALE, "RSS grew by %d KiB" % grew)
        self.assertEqual(health(self.b), 200)

    def test_connections_are_capped_per_source_and_idle_ones_closed(self):
        port = self.b.fed_port
        flood = [connect(port, "127.0.3.1") for _ in range(40)]
        self.socks += flood
        # The first 8 (max_connections_per_source here) stay; the others are closed at once.
        closed = [closed_by_peer(s, 0.5) for s in flood]
        self.assertEqual(closed.count(False), 8, closed)
        # The admin sees it.
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.b.metrics_port,
                                    timeout=5) as r:
            metrics = r.read().decode()
        self.assertIn('parley_http_refused_total{listener="federation",reason="connection"} 32',
                      metrics)
        # Another source is not affected.
        other = connect(port, "127.0.3.2")
        self.socks.append(other)
        other.sendall(b"GET /federation/v1/key HTTP/1.1\r\nHost: b\r\n\r\n")
        self.assertEqual(read_status(other), 200)
        # Idle connections are closed after federation.idle_timeout_seconds (2 here) and the
        # header timeout.
        self.assertTrue(all(closed_by_peer(s, 15) for s in flood if not closed_by_peer(s, 0.01)))
        self.assertTrue(closed_by_peer(other, 10))
        # Their slots are free again.
        again = connect(port, "127.0.3.1")
        self.socks.append(again)
        again.sendall(b"GET /federation/v1/key HTTP/1.1\r\nHost: b\r\n\r\n")
        self.assertEqual(read_status(again), 200)


def flooded_settings():
    return {"federation.request_timeout_seconds": "3", "federation.idle_timeout_seconds": "2",
            "federation.max_connections_per_source": "8"}


def flooded_pair():
    """a.example (alice) and b.example (bob), peers of each other, policy anyone; b (the attacked
    node) has tight listener bounds so the tests run in seconds."""
    a = Node(name="a.example", policy="anyone", federation=True).start()
    b = Node(name="b.example", policy="anyone", federation=True, settings=flooded_settings()).start()
    a.add_user("alice")
    b.add_user("bob")
    a.parleyd("peer", "add", "b.example", "http://127.0.0.1:%d" % b.fed_port, check=True)
    b.parleyd("peer", "add", "a.example", "http://127.0.0.1:%d" % a.fed_port, check=True)
    alice, bob = User(a, "alice"), User(b, "bob")
    for u in (alice, bob):
        r = u.login()
        if r.returncode != 0:
            raise AssertionError("login failed: " + r.stderr)
    return a, b, alice, bob


class OutOfDescriptors(unittest.TestCase):
    def test_accepting_backs_off_when_descriptors_run_out_and_recovers(self):
        env = dict(os.environ)
        if "UBSAN_OPTIONS" in env:  # scripts/test-sanitized.sh: see the suppression's reason
            supp = os.path.join(os.path.dirname(__file__), "..", "sanitizers",
                                "ubsan_no_descriptors.supp")
            env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:suppressions=" + supp
        node = Node(name="fd.example", federation=True).start(env=env)
        socks = []
        try:
            pid = node.proc.pid
            subprocess.run(["prlimit", "--pid", str(pid), "--nofile=160:160"], check=True)
            # Fill the descriptor table from many sources (the per-source cap does not help here).
            for i in range(200):
                try:
                    socks.append(connect(node.fed_port, "127.0.4.%d" % (1 + i % 200), timeout=1))
                except OSError:
                    break
            time.sleep(1)
            used = cpu_seconds(pid)
            time.sleep(3)
            burn = (cpu_seconds(pid) - used) / 3
            self.assertLess(burn, 0.3, "the node burned %.0f%% CPU while out of descriptors"
                            % (burn * 100))
            self.assertIn("event=accept_failed", node.logs())
            for s in socks:
                s.close()
            socks = []
            # Once descriptors are free again, new connections are served.
            def key_served():
                try:
                    s = connect(node.fed_port, "127.0.5.1", timeout=2)
                    s.sendall(b"GET /federation/v1/key HTTP/1.1\r\nHost: x\r\n\r\n")
                    ok = read_status(s, timeout=2) == 200
                    s.close()
                    return ok
                except OSError:
                    return False
            wait_for(key_served, timeout=20, what="accepting again")
            self.assertEqual(health(node), 200)
        finally:
            for s in socks:
                s.close()
            node.cleanup()


class DiscoveryTargets(unittest.TestCase):
    """Names and URLs that come from others never make the node contact its own network."""

    def setUp(self):
        # A listener nothing may connect to: it plays an internal service.
        self.internal = socket.socket()
        self.internal.bind(("127.0.0.1", 0))
        self.internal.listen(16)
        self.internal.settimeout(0.2)
        self.internal_port = self.internal.getsockname()[1]
        # A web server whose /.well-known/parley points at that internal service.
        from harness import BackgroundHttp
        from http.server import BaseHTTPRequestHandler
        target = "http://127.0.0.1:%d" % self.internal_port

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"federation_url": target}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.web = BackgroundHttp()
        self.web.serve(Handler)

    def tearDown(self):
        self.internal.close()
        self.web.close()

    def internal_connections(self):
        n = 0
        while True:
            try:
                c, _ = self.internal.accept()
                c.close()
                n += 1
            except socket.timeout:
                return n

    def node(self, discovery):
        n = Node(name="d.example", policy="anyone", federation=True,
                 settings={"federation.discovery_url": discovery,
                           "federation.allow_private_addresses": "false"}).start()
        n.add_user("dave")
        dave = User(n, "dave")
        self.assertEqual(dave.login().returncode, 0)
        return n, dave

    def test_a_discovered_url_on_a_private_address_is_refused_with_a_generic_error(self):
        n, dave = self.node('"%s/{name}/.well-known/parley"' % self.web.url)
        try:
            r = dave.run("lookup", "someone@corp.example")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("cannot reach corp.example", r.stderr)
            self.assertNotIn("127.0.0.1", r.stderr)
            self.assertNotIn("refused", r.stderr.lower())
            self.assertEqual(self.internal_connections(), 0)
            self.assertIn("not a public address", n.logs())
        finally:
            n.cleanup()

    def test_a_name_that_is_a_private_address_is_never_contacted(self):
        # The default template puts the name in the host part: lookup of user@127.0.0.1 and a
        # federation request claiming to come from origin 127.0.0.1 must not connect there.
        n, dave = self.node('"http://{name}:%d/.well-known/parley"' % self.internal_port)
        try:
            r = dave.run("lookup", "someone@127.0.0.1")
            self.assertNotEqual(r.returncode, 0)
            s = connect(n.fed_port, "127.0.6.1")
            body = b"\x80"
            s.sendall(("POST /federation/v1/query/lookup HTTP/1.1\r\nHost: d\r\n"
                       "Authorization: %s\r\nContent-Length: 1\r\n\r\n"
                       % fake_authorization("d.example", origin="127.0.0.1")).encode() + body)
            self.assertIn(read_status(s), (400, 401))
            s.close()
            self.assertEqual(self.internal_connections(), 0)
        finally:
            n.cleanup()


class HangingPeer(unittest.TestCase):
    def test_questions_to_a_node_that_hangs_do_not_delay_questions_to_others(self):
        # h.example accepts connections and never answers (a host that went away mid-request).
        hang = socket.socket()
        hang.bind(("127.0.0.1", 0))
        hang.listen(64)
        a, b, alice, bob = flooded_pair()
        try:
            a.parleyd("peer", "add", "h.example", "http://127.0.0.1:%d" % hang.getsockname()[1],
                      check=True)
            stuck = [subprocess.Popen([alice_cli for alice_cli in alice_command(alice)]
                                      + ["lookup", "user%d@h.example" % i],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(4)]
            time.sleep(1)  # the four questions to h.example are in flight or waiting
            started = time.time()
            out = alice.ok("lookup", bob.address, timeout=30)
            self.assertIn("bob", out)
            self.assertLess(time.time() - started, 5,
                            "a question to b.example waited behind the hanging node")
            for p in stuck:
                p.kill()
                p.wait()
        finally:
            hang.close()
            a.cleanup()
            b.cleanup()


def alice_command(user):
    from harness import PARLEY
    return [PARLEY, "--profile", user.profile]


class AdminApiOnItsOwn(unittest.TestCase):
    def test_admin_requests_without_the_token_are_refused_before_their_body(self):
        node = Node(name="adm.example").start()
        try:
            s = connect(node.admin_port)
            s.sendall(b"POST /admin/v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            self.assertEqual(read_status(s, timeout=5), 401)
            s.close()
            self.assertEqual(node.parleyd("status", "--json").returncode, 0)
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
