"""Helpers for Parley's multi-process integration tests: real parleyd/parley processes on loopback.

Only the Python standard library is used; `mp_pack`/`mp_unpack` are a minimal msgpack codec for the
raw-socket tests (just the types the client protocol uses).
"""
import atexit
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

BUILD = os.environ.get("PARLEY_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
PARLEYD = os.path.join(BUILD, "cli", "parleyd")
PARLEY = os.path.join(BUILD, "cli", "parley")
# Sanitized builds start and stop several times slower (scripts/test-sanitized.sh sets 3).
SLOW = float(os.environ.get("PARLEY_TEST_TIME_SCALE", "1"))
# Bounds on a node's memory growth are multiplied by this: AddressSanitizer keeps freed memory in
# quarantine (256 MiB) and adds shadow memory (scripts/test-sanitized.sh sets 4).
MEMORY_SCALE = float(os.environ.get("PARLEY_TEST_MEMORY_SCALE", "1"))


def rss_kib(pid):
    """The resident set of process `pid`, from /proc, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


# Every process spawn() started that may still run. A test whose setUp fails never reaches its
# tearDown, so whatever it started is killed here at exit (also when the runner is sent SIGTERM
# or SIGINT, e.g. by ctest's timeout); each runs in its own process group, so whatever it started
# goes too.
_live = set()


def spawn(args, **kw):
    """subprocess.Popen in a new process group, killed at the latest when this process exits."""
    p = subprocess.Popen(args, start_new_session=True, **kw)
    _live.add(p)
    return p


def kill_all():
    """Kills every process spawn() started that still runs (and its process group)."""
    for p in list(_live):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                p.kill()
            p.wait()
        _live.discard(p)


atexit.register(kill_all)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # runs atexit, hence kill_all


for _sig in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_sig) in (signal.SIG_DFL, None):
        signal.signal(_sig, _exit_on_signal)


# Ports for nodes come from below the kernel's ephemeral range (ip_local_port_range, 32768 and up
# on Debian), where no outgoing connection of this or a parallel test run takes one between the
# check here and parleyd's bind; each run starts at its own random place in the range.
_PORT_LOW, _PORT_HIGH = 20000, 32000
_next_port = [random.randrange(_PORT_LOW, _PORT_HIGH)]


def free_port():
    for _ in range(_PORT_HIGH - _PORT_LOW):
        port = _next_port[0]
        _next_port[0] = _PORT_LOW + (port + 1 - _PORT_LOW) % (_PORT_HIGH - _PORT_LOW)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in %d-%d" % (_PORT_LOW, _PORT_HIGH))


# ---- minimal msgpack ---------------------------------------------------------------------------

def mp_pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 2**8:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v < 2**16:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(mp_pack(x) for x in v)
    if isinstance(v, dict):
        out = b"\xdf" + struct.pack(">I", len(v))
        for k, x in v.items():
            out += mp_pack(k) + mp_pack(x)
        return out
    raise TypeError(type(v))


def _container(b, i, fix_lo, fix_hi, op16, op32):
    """Length and offset after the header of a msgpack map or array starting at b[i], or None."""
    t = b[i]
    if fix_lo <= t <= fix_hi:
        return t & 0x0F, i + 1
    if t == op16:
        return struct.unpack_from(">H", b, i + 1)[0], i + 3
    if t == op32:
        return struct.unpack_from(">I", b, i + 1)[0], i + 5
    return None


def mp_unpack(b, i=0):
    t = b[i]
    if t < 0x80:
        return t, i + 1
    header = _container(b, i, 0x80, 0x8F, 0xDE, 0xDF)
    if header:
        n, i = header
        d = {}
        for _ in range(n):
            k, i = mp_unpack(b, i)
            d[k], i = mp_unpack(b, i)
        return d, i
    header = _container(b, i, 0x90, 0x9F, 0xDC, 0xDD)
    if header:
        n, i = header
        arr = []
        for _ in range(n):
            x, i = mp_unpack(b, i)
            arr.append(x)
        return arr, i
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if t == 0xC0:
        return None, i + 1
    if t == 0xC2:
        return False, i + 1
    if t == 0xC3:
        return True, i + 1
    sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
    if t in sizes:
        s = sizes[t]
        n = int.from_bytes(b[i + 1:i + 1 + s], "big")
        raw = b[i + 1 + s:i + 1 + s + n]
        return (raw if t in (0xC4, 0xC5, 0xC6) else raw.decode()), i + 1 + s + n
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i",
            0xD3: ">q"}
    if t in ints:
        fmt = ints[t]
        return struct.unpack_from(fmt, b, i + 1)[0], i + 1 + struct.calcsize(fmt)
    if t >= 0xE0:
        return t - 256, i + 1
    raise ValueError("unsupported msgpack type 0x%02x" % t)


class RawClient:
    """A client speaking the wire protocol directly, for malformed input and timing tests."""

    def __init__(self, port, timeout=10, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.next_id = 1
        self.pushed = []

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, frame):
        payload = mp_pack(frame)
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv_frame(self):
        """Next frame as a dict, or None when the node closed the connection."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return mp_unpack(payload)[0]
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def request(self, t, **fields):
        rid = self.next_id
        self.next_id += 1
        self.send(dict(t=t, id=rid, **fields))
        while True:
            f = self.recv_frame()
            if f is None:
                raise ConnectionError("closed while waiting for response to %s" % t)
            if f.get("t") == "re" and f.get("id") == rid:
                return f
            self.pushed.append(f)

    def closed_within(self, seconds):
        """Reads until the node closes; returns the frames seen (the last is usually 'bye')."""
        self.sock.settimeout(seconds)
        frames = []
        while True:
            f = self.recv_frame()
            if f is None:
                return frames
            frames.append(f)

    def close(self):
        self.sock.close()


class Node:
    """A real parleyd process with its own data directory and loopback ports."""

    def __init__(self, name="example.org", policy="friends", heartbeat=None, max_outbound=None,
                 federation=False, extra_config="", settings=None):
        self.dir = tempfile.mkdtemp(prefix="parley-it-")
        self.data = os.path.join(self.dir, "data")
        self.name = name
        self.client_port = free_port()
        self.admin_port = free_port()
        self.fed_port = free_port()
        self.metrics_port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "parleyd.log")
        r = self.parleyd("init", "--name", name, "--client-listen", "127.0.0.1:%d" % self.client_port,
                         "--federation-listen", "127.0.0.1:%d" % self.fed_port,
                         "--admin-listen", "127.0.0.1:%d" % self.admin_port,
                         "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
                         "--dm-policy", policy, check=True)
        cfg_path = os.path.join(self.data, "config.toml")
        with open(cfg_path) as f:
            cfg = f.read()
        # Test suites create many users: cheap password hashing, explicitly.
        cfg = cfg.replace('password_hash = "interactive"', 'password_hash = "test-only-minimal"')
        if heartbeat is not None:
            cfg = cfg.replace("heartbeat_timeout_seconds = 60", "heartbeat_timeout_seconds = %d" % heartbeat)
        if federation:  # plain http between nodes and discovery on loopback: tests only
            cfg = cfg.replace("allow_plaintext_http = false", "allow_plaintext_http = true")
            cfg = cfg.replace("allow_private_addresses = false", "allow_private_addresses = true")
        if max_outbound is not None:
            cfg = cfg.replace("max_outbound_frames = 1024", "max_outbound_frames = %d" % max_outbound)
        # settings: {"federation.requests_per_second": "2", ...} (TOML literals) put at the top of
        # their section; a key the template already has is replaced.
        for full, literal in (settings or {}).items():
            section, key = full.split(".", 1)
            lines = cfg.split("\n")
            lines = [l for l in lines if not l.startswith(key + " = ")
                     or not self._in_section(lines, l, section)]
            at = lines.index("[%s]" % section) + 1
            lines.insert(at, "%s = %s" % (key, literal))
            cfg = "\n".join(lines)
        with open(cfg_path, "w") as f:
            f.write(cfg + extra_config)
        self.init_output = r.stdout

    @staticmethod
    def _in_section(lines, line, section):
        current = None
        for l in lines:
            if l.startswith("["):
                current = l.strip("[]")
            if l is line:
                return current == section
        return False

    def parleyd(self, *args, input=None, check=False):
        r = subprocess.run([PARLEYD, "--data", self.data] + list(args), input=input,
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("parleyd %s failed (%d): %s" % (args, r.returncode, r.stderr))
        return r

    def start(self, env=None):
        self.log = open(self.log_path, "a")  # closed by stop()
        self.proc = spawn([PARLEYD, "--data", self.data, "serve"], stdout=self.log,
                          stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("parleyd exited at start: " + self.logs())
            try:
                socket.create_connection(("127.0.0.1", self.client_port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.metrics_port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.proc.kill()  # the caller's setUp fails here: nobody else would stop it
        self.proc.wait()
        raise AssertionError("parleyd did not start listening")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("parleyd did not stop on SIGTERM")
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return rc

    def add_user(self, name, password="correct horse battery"):
        return self.parleyd("user", "add", name, "--password-stdin", input=password + "\n", check=True)

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class User:
    """A `parley` CLI profile for one device of one user."""

    def __init__(self, node, name, password="correct horse battery", device="laptop"):
        self.node = node
        self.address = "%s@%s" % (name, node.name)
        self.profile = os.path.join(node.dir, "profile-%s-%s" % (name, device))
        self.password = password
        self.device = device

    def run(self, *args, input=None, timeout=60):
        return subprocess.run([PARLEY, "--profile", self.profile] + list(args), input=input,
                              capture_output=True, text=True, timeout=timeout)

    def login(self, password=None):
        return self.run("login", self.address, "--server", "127.0.0.1:%d" % self.node.client_port,
                        "--password-stdin", "--device", self.device,
                        input=(password or self.password) + "\n")

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        if r.returncode != 0:
            raise AssertionError("parley %s failed (%d): %s %s" % (args, r.returncode, r.stdout, r.stderr))
        return r.stdout


def wait_for(fn, timeout=30, what="condition"):
    """Polls fn until it returns something true; returns that, or fails after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def signed_in(node, *names):
    """Adds these users to a started node and logs each in with a CLI profile; returns the
    Users in order."""
    users = []
    for name in names:
        node.add_user(name)
        u = User(node, name)
        r = u.login()
        if r.returncode != 0:
            raise AssertionError("login of %s failed: %s" % (name, r.stderr))
        users.append(u)
    return users


def two_nodes(policy="friends", url_of=None):
    """Started nodes a.example (user alice) and b.example (user bob), each with a static plain-HTTP
    peer entry for the other (`url_of(node)` may point it elsewhere, e.g. at a proxy), both users
    logged in. Returns (a, b, alice, bob); the caller cleans up the nodes."""
    a = Node(name="a.example", policy=policy, federation=True).start()
    b = Node(name="b.example", policy=policy, federation=True).start()
    url_of = url_of or (lambda n: "http://127.0.0.1:%d" % n.fed_port)
    a.add_user("alice")
    b.add_user("bob")
    a.parleyd("peer", "add", "b.example", url_of(b), check=True)
    b.parleyd("peer", "add", "a.example", url_of(a), check=True)
    alice, bob = User(a, "alice"), User(b, "bob")
    for u in (alice, bob):
        r = u.login()
        if r.returncode != 0:
            raise AssertionError("login failed: " + r.stderr)
    return a, b, alice, bob


def befriend_across(alice, bob):
    """A friend request from alice accepted by bob, across nodes, seen on both sides."""
    alice.ok("friend", "request", bob.address)
    wait_for(lambda: "FRIEND request " + alice.address in bob.ok("sync"), what="request")
    bob.ok("friend", "accept", alice.address)
    wait_for(lambda: "FRIEND accepted " + bob.address in alice.ok("sync"), what="accept")


class BackgroundHttp:
    """A quiet threaded HTTP server on a loopback port; subclasses pass their handler class."""

    def serve(self, handler_class):
        handler_class.log_message = lambda *args: None
        from http.server import ThreadingHTTPServer
        import threading
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
