"""A fake Parley node for hostile-federation tests: it serves a key document (and a
/.well-known/parley) from a Python HTTP server and sends requests it signs with parley-fedtool, so
it can sign whatever a buggy or malicious node would: wrong keys, forged origins, replays, stale
timestamps, rotated keys with and without endorsements, oversize batches.
"""
import json
import os
import subprocess
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

from harness import BUILD, BackgroundHttp, mp_pack

FEDTOOL = os.path.join(BUILD, "tests", "parley-fedtool")


class FakeNode(BackgroundHttp):
    def __init__(self, name, workdir):
        self.name = name
        self.dir = os.path.join(workdir, "fake-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.key_doc = b""
        self.next_event = 1
        # name -> base URL answered at /NAME/.well-known/parley: this server also plays the web
        # servers of other organizations for discovery tests. Unlisted names get this fake node.
        self.well_known = {}
        # (method, path) of every signed request a node sent here, in arrival order.
        self.received = []
        # path -> function(body bytes) -> (status, content type, body bytes): answers to POSTs
        # (a conv_pull, say); a lookup without one gets "no such user", other POSTs 404.
        self.post_handlers = {}
        self.posts = []  # (path, body) of every POST received
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status, body, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                # A transaction: recorded and acknowledged whole (spec/federation.md section 4).
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.received.append(("PUT", self.path))
                last = self.path.rsplit("/", 1)[-1].split("-")[-1]
                body = json.dumps({"applied_upto": int(last) if last.isdigit() else 0}).encode()
                self._answer(200, body, "application/json")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.received.append(("POST", self.path))
                fake.posts.append((self.path, body))
                handler = fake.post_handlers.get(self.path)
                if handler:
                    status, ctype, out = handler(body)
                    self._answer(status, out, ctype)
                elif self.path.endswith("/lookup"):
                    self._answer(200, mp_pack({"exists": False}), "application/msgpack")
                else:
                    out = json.dumps({"code": "not_found", "message": "no such user"}).encode()
                    self._answer(404, out, "application/json")

            def do_GET(self):
                if self.path == "/federation/v1/key" and fake.key_doc:
                    body, ctype = fake.key_doc, "application/msgpack"
                elif self.path.endswith("/.well-known/parley"):
                    asked = self.path.split("/")[1]
                    body = json.dumps({"federation_url": fake.well_known.get(asked, fake.url)}).encode()
                    ctype = "application/json"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.serve(Handler)

    def keygen(self, label):
        """Creates key file `label`; returns its public key (ed25519:...)."""
        path = os.path.join(self.dir, label + ".key")
        out = subprocess.run([FEDTOOL, "keygen", path], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def publish(self, *labels, endorse=True, name=None, form="canonical"):
        """Serves a key document listing keys `labels` (oldest first; the last is current) for
        `name` (this node's by default), in `form` (parley-fedtool keydoc --form)."""
        args = [FEDTOOL, "keydoc", name or self.name, "--form", form]
        args += [] if endorse else ["--no-endorse"]
        args += [os.path.join(self.dir, l + ".key") for l in labels]
        self.key_doc = subprocess.run(args, capture_output=True, check=True).stdout

    def sign(self, label, method, path, dest, body, origin=None, ts=None):
        args = [FEDTOOL, "sign", os.path.join(self.dir, label + ".key"), method, path,
                origin or self.name, dest]
        if ts is not None:
            args.append(str(ts))
        return subprocess.run(args, input=body, capture_output=True, check=True).stdout.decode().strip()

    def signed_event(self, label, event, zero=False):
        """The signed group event ({"event", "sig"} bytes, canonical) with the fields of `event`
        (a dict), signed with key `label`, or with an all-zero signature."""
        return subprocess.run([FEDTOOL, "sign-event", os.path.join(self.dir, label + ".key"),
                               "zero" if zero else "valid"],
                              input=mp_pack(event), capture_output=True, check=True).stdout

    def transaction(self, payloads, origin=None, first_id=None):
        """A transaction body with fresh event ids; returns (path, body)."""
        first = self.next_event if first_id is None else first_id
        events = [{"id": first + i, "payload": mp_pack(p) if isinstance(p, dict) else p}
                  for i, p in enumerate(payloads)]
        if first_id is None:
            self.next_event += len(payloads)
        body = mp_pack({"origin": origin or self.name, "events": events})
        last = first + max(len(payloads) - 1, 0)
        return "/federation/v1/send/%d-%d" % (first, last), body

    @staticmethod
    def call(port, method, path, body, auth):
        """Sends one request to a node's federation port: (status, code or JSON, headers)."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                     method=method)
        if auth is not None:
            req.add_header("Authorization", auth)
        req.add_header("Content-Type", "application/msgpack")
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
        except urllib.error.HTTPError as e:
            raw = e.read() or b"{}"
            try:
                code = json.loads(raw).get("code")
            except ValueError:
                code = raw[:100]
            return e.code, code, dict(e.headers)
