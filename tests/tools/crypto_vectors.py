#!/usr/bin/env python3
"""Computes the test vectors of spec/crypto.md section 9 with the Python standard library only,
independently of Parley's C++ code: X25519 from RFC 7748 section 5, HKDF from RFC 5869, Ed25519
from RFC 8032 section 6 (its reference code), XChaCha20-Poly1305 from RFC 8439 plus HChaCha20
(draft-irtf-cfrg-xchacha), BLAKE2b and SHA-2 from hashlib, and a canonical msgpack writer.

Run it and paste its output into the vector block of spec/crypto.md section 9 (`--check
spec/crypto.md` compares the two instead; ctest runs that);
tests/unit/spec_vectors_test.cpp and ratchet_test.cpp check the C++ implementation against that
block. Every private key is SHA-256 of a label; nothing is random."""
import hashlib
import hmac
import struct

# ---- X25519 (RFC 7748 section 5) ----------------------------------------------------------------

P = 2**255 - 19
A24 = 121665


def x25519(k: bytes, u: bytes) -> bytes:
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    scalar = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (scalar >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def public(k: bytes) -> bytes:
    return x25519(k, (9).to_bytes(32, "little"))


# ---- HKDF, HMAC (RFC 5869) ----------------------------------------------------------------------


def hkdf(ikm: bytes, salt: bytes, info: bytes, n: int) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < n:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:n]


def kdf_ck(ck: bytes):
    """(next chain key, message key) of crypto.md section 4.1."""
    return (hmac.new(ck, b"\x02", hashlib.sha256).digest(),
            hmac.new(ck, b"\x01", hashlib.sha256).digest())


# ---- Ed25519 (RFC 8032 section 6) ---------------------------------------------------------------

Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _ed_add(p1, p2):
    a = (p1[1] - p1[0]) * (p2[1] - p2[0]) % P
    b = (p1[1] + p1[0]) * (p2[1] + p2[0]) % P
    c = 2 * p1[3] * p2[3] * D % P
    d = 2 * p1[2] * p2[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _ed_mul(s, p1):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _ed_add(q, p1)
        p1 = _ed_add(p1, p1)
        s >>= 1
    return q


def _ed_compress(p1):
    zinv = pow(p1[2], P - 2, P)
    x, y = p1[0] * zinv % P, p1[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _ed_recover_x(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _ed_recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def _ed_expand(seed: bytes):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed_public(seed: bytes) -> bytes:
    return _ed_compress(_ed_mul(_ed_expand(seed)[0], G))


def ed_sign(seed: bytes, msg: bytes) -> bytes:
    a, prefix = _ed_expand(seed)
    pub = _ed_compress(_ed_mul(a, G))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % Q
    rs = _ed_compress(_ed_mul(r, G))
    h = int.from_bytes(hashlib.sha512(rs + pub + msg).digest(), "little") % Q
    return rs + ((r + h * a) % Q).to_bytes(32, "little")


# ---- XChaCha20-Poly1305 (RFC 8439, HChaCha20) -------------------------------------------------


def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _chacha_rounds(s):
    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF
        s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF
        s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF
        s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF
        s[b] = _rotl(s[b] ^ s[c], 7)
    for _ in range(10):
        qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
        qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
    return s


_SIGMA = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]


def _chacha_block(key, counter, nonce12):
    init = _SIGMA + list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce12))
    s = _chacha_rounds(list(init))
    return struct.pack("<16I", *[(a + b) & 0xFFFFFFFF for a, b in zip(s, init)])


def _hchacha(key, nonce16):
    s = _chacha_rounds(_SIGMA + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16)))
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def _poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    acc = 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % (2**130 - 5)
    return ((acc + s) % 2**128).to_bytes(16, "little")


def xchacha_seal(key, nonce24, plaintext, ad):
    sub = _hchacha(key, nonce24[:16])
    n12 = bytes(4) + nonce24[16:]
    otk = _chacha_block(sub, 0, n12)[:32]
    ct = bytearray()
    for i in range(0, len(plaintext), 64):
        block = _chacha_block(sub, 1 + i // 64, n12)
        ct += bytes(a ^ b for a, b in zip(plaintext[i:i + 64], block))
    pad = lambda b: b + bytes(-len(b) % 16)  # noqa: E731
    mac = pad(ad) + pad(bytes(ct)) + struct.pack("<QQ", len(ad), len(ct))
    return bytes(ct) + _poly1305(otk, mac)


# ---- Canonical msgpack (keys in the order given, shortest forms) --------------------------------


class Bin(bytes):
    """A msgpack bin (plain str is a msgpack str)."""


def mp(v) -> bytes:
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        assert v >= 0
        for limit, head, fmt in ((2**7, None, None), (2**8, 0xCC, ">B"), (2**16, 0xCD, ">H"),
                                 (2**32, 0xCE, ">I"), (2**64, 0xCF, ">Q")):
            if v < limit:
                return bytes([v]) if head is None else bytes([head]) + struct.pack(fmt, v)
    if isinstance(v, Bin):
        n = len(v)
        head = (b"\xc4" + struct.pack(">B", n) if n < 2**8 else
                b"\xc5" + struct.pack(">H", n) if n < 2**16 else b"\xc6" + struct.pack(">I", n))
        return head + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        head = (bytes([0xA0 | n]) if n < 32 else b"\xd9" + struct.pack(">B", n) if n < 2**8 else
                b"\xda" + struct.pack(">H", n))
        return head + b
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return head + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(type(v))


# ---- Parley structures ---------------------------------------------------------------------------


def key(label: str) -> bytes:
    """A fixed private key (X25519 scalar or Ed25519 seed) for the vectors: SHA-256 of its label."""
    return hashlib.sha256(label.encode()).digest()


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def pad(m: bytes) -> bytes:
    """crypto.md section 5."""
    size = next((s for s in (64, 128, 256, 512, 1024, 2048, 4096) if s > len(m)), None)
    if size is None:
        size = (len(m) // 4096 + 1) * 4096
    return m + b"\x80" + bytes(size - len(m) - 1)


def safety_digits(address: str, identity: bytes) -> str:
    h = hashlib.sha512(b"parley-safety-number-v1\n" + identity + address.encode()).digest()
    for _ in range(5200):
        h = hashlib.sha512(h + identity).digest()
    return "".join("%05d" % (int.from_bytes(h[i:i + 5], "big") % 100000) for i in range(0, 30, 5))


def safety_number(addr_a, id_a, addr_b, id_b) -> str:
    halves = sorted([(addr_a.encode(), safety_digits(addr_a, id_a)),
                     (addr_b.encode(), safety_digits(addr_b, id_b))])
    digits = halves[0][1] + halves[1][1]
    return " ".join(digits[i:i + 5] for i in range(0, 60, 5))


LINES = []


def out(name, value):
    """One vector: hex (wrapped after 96 digits onto lines indented by 4 spaces) or "text"."""
    if isinstance(value, str):
        LINES.append('%s = "%s"' % (name, value))
        return
    h = value.hex()
    if len(h) <= 96:
        LINES.append("%s = %s" % (name, h))
        return
    LINES.append("%s =" % name)
    LINES.extend("    " + h[i:i + 96] for i in range(0, len(h), 96))


def main(print_lines=True):
    # X3DH and the first ratchet step (crypto.md sections 3, 4.1).
    ik_a, ek_a = key("alice identity"), key("alice ephemeral")
    ik_b, spk_b, opk_b = key("bob identity"), key("bob signed prekey"), key("bob one-time prekey")
    dh1 = x25519(ik_a, public(spk_b))
    dh2 = x25519(ek_a, public(ik_b))
    dh3 = x25519(ek_a, public(spk_b))
    dh4 = x25519(ek_a, public(opk_b))
    sk = hkdf(b"\xff" * 32 + dh1 + dh2 + dh3 + dh4, bytes(32), b"parley-x3dh-v1", 32)
    sk3 = hkdf(b"\xff" * 32 + dh1 + dh2 + dh3, bytes(32), b"parley-x3dh-v1", 32)
    out("x3dh.ik_a_private", ik_a)
    out("x3dh.ek_a_private", ek_a)
    out("x3dh.ik_b_private", ik_b)
    out("x3dh.spk_b_private", spk_b)
    out("x3dh.opk_b_private", opk_b)
    out("x3dh.ik_a_public", public(ik_a))
    out("x3dh.ek_a_public", public(ek_a))
    out("x3dh.sk", sk)
    out("x3dh.sk_without_opk", sk3)
    ratchet1 = key("alice ratchet 1")
    rk_dh = x25519(ratchet1, public(spk_b))
    okm = hkdf(rk_dh, sk, b"parley-ratchet-root-v1", 64)
    out("kdf_rk.dh_output", rk_dh)
    out("kdf_rk.root_key", okm[:32])
    out("kdf_rk.chain_key", okm[32:])
    next_ck, mk = kdf_ck(okm[32:])
    out("kdf_ck.next_chain_key", next_ck)
    out("kdf_ck.message_key", mk)
    mat = hkdf(mk, b"", b"parley-message-key-v1", 56)
    out("message.aead_key", mat[:32])
    out("message.nonce", mat[32:])

    # Published keys, certificates and device lists (crypto.md section 2).
    LINES.append("")
    alice_user, bob_user = key("alice user identity"), key("bob user identity")
    alice_dev, bob_dev = key("alice device signing"), key("bob device signing")
    out("keys.alice_identity_seed", alice_user)
    out("keys.alice_identity_public", ed_public(alice_user))
    out("keys.alice_device_seed", alice_dev)
    out("keys.alice_device_public", ed_public(alice_dev))
    out("keys.bob_identity_seed", bob_user)
    out("keys.bob_identity_public", ed_public(bob_user))
    out("keys.bob_device_seed", bob_dev)
    out("keys.bob_device_public", ed_public(bob_dev))
    out("keys.ik_b_public", public(ik_b))
    out("keys.spk_b_public", public(spk_b))
    out("keys.opk_b_public", public(opk_b))
    sign_a, dh_a = ed_public(alice_dev), public(ik_a)
    cert = mp({"v": 1, "sign": Bin(sign_a), "dh": Bin(dh_a),
               "sig": Bin(ed_sign(alice_dev, b"parley-device-cert-v1\n" + sign_a + dh_a))})
    out("cert.alice", cert)
    spk_input = b"parley-signed-prekey-v1\n" + u64(1) + public(spk_b)
    out("signed_prekey.bob",
        mp({"id": 1, "key": Bin(public(spk_b)), "sig": Bin(ed_sign(bob_dev, spk_input))}))
    out("one_time.bob", mp({"id": 2, "key": Bin(public(opk_b))}))
    inner_list = mp({"v": 1, "user": "alice@a.example", "version": 1,
                     "devices": [{"device": 7, "sign": Bin(sign_a), "dh": Bin(dh_a)}]})
    out("device_list.alice", mp({"list": Bin(inner_list),
                                 "sig": Bin(ed_sign(alice_user,
                                                    b"parley-device-list-v1\n" + inner_list))}))
    out("safety_number.alice_bob", safety_number("alice@a.example", ed_public(alice_user),
                                                 "bob@b.example", ed_public(bob_user)))

    # Padding (crypto.md section 5).
    LINES.append("")
    out("padding.abc", pad(b"abc"))

    # Alice's first 1:1 message to Bob (crypto.md sections 4.2, 8).
    LINES.append("")
    header = b"PRH1" + public(ratchet1) + u64(0) + u64(0)
    inner = mp({"id": "m1", "text": Bin(b"hello bob")})
    ad = public(ik_a) + public(ik_b)
    ct = xchacha_seal(mat[:32], mat[32:], pad(inner), ad + header)
    x = mp({"ik": Bin(public(ik_a)), "spk": 1, "opk": 2, "ek": Bin(public(ek_a))})
    out("message.header", header)
    out("message.inner", inner)
    out("message.ciphertext", ct)
    out("message.x", x)
    out("message.envelope",
        mp({"v": 1, "sd": 7, "to": [{"u": "bob@b.example", "d": 9, "h": Bin(header), "c": Bin(ct),
                                     "x": Bin(x)}]}))

    # Alice's first group message with her sender key (crypto.md sections 6, 8a).
    LINES.append("")
    conv, author, device = "g:00112233445566778899aabbccddeeff", "alice@a.example", 7
    chain_id, chain_key = key("alice sender chain id")[:16], key("alice sender chain key")
    signing = key("alice sender signing")
    out("sender.chain_id", chain_id)
    out("sender.chain_key", chain_key)
    out("sender.signing_seed", signing)
    out("sender.distribution", b"PSD1" + chain_id + u64(0) + chain_key + ed_public(signing))
    group_ad = ("parley-group-v1\n%s\n%s\n%d" % (conv, author, device)).encode()
    group_inner = mp({"group": conv, "text": Bin(b"hello group")})
    _, gmk = kdf_ck(chain_key)
    gmat = hkdf(gmk, b"", b"parley-sender-message-key-v1", 56)
    h = b"PSK1" + chain_id + u64(0)
    c = xchacha_seal(gmat[:32], gmat[32:], pad(group_inner), h + group_ad)
    sk_msg = h + c + ed_sign(signing, b"parley-sender-key-v1\n" + h + c)
    out("sender.ad", group_ad)
    out("sender.inner", group_inner)
    out("sender.message", sk_msg)
    body = mp({"v": 2, "sd": device, "sk": Bin(sk_msg)})
    out("group.body", body)

    # That message as a signed group event in a federation transaction (ordering.md section 1,
    # federation.md section 4).
    LINES.append("")
    node_seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    event = mp({"v": 1, "conv": conv, "origin": "a.example", "epoch": 0, "seq": 2,
                "clock": {"a.example#0": 2, "b.example#0": 1}, "kind": "message",
                "author": author, "target": "", "role": "", "body": Bin(body),
                "wall_ms": 1800000000000})
    event_id = hashlib.blake2b(event, digest_size=32).hexdigest()
    sig = ed_sign(node_seed, b"parley-conv-event-v1\n" + event_id.encode())
    signed = mp({"event": Bin(event), "sig": Bin(sig)})
    out("event.bytes", event)
    out("event.id", bytes.fromhex(event_id))
    out("event.sig", sig)
    out("event.signed", signed)
    payload = mp({"type": "conv", "ev": Bin(signed)})
    out("transaction.body",
        mp({"origin": "a.example", "epoch": 0, "events": [{"id": 1, "payload": Bin(payload)}]}))
    if print_lines:
        print("\n".join(LINES))


def self_test():
    """Known answers for the primitives written here (RFC 8032 7.1 test 1; XChaCha20-Poly1305
    from draft-irtf-cfrg-xchacha A.3.1)."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert ed_public(seed).hex() == ("d75a980182b10ab7d54bfed3c964073a"
                                     "0ee172f3daa62325af021a68f707511a")
    assert ed_sign(seed, b"").hex().startswith("e5564300c360ac729086e2cc806e828a")
    pt = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
          b"future, sunscreen would be it.")
    ct = xchacha_seal(bytes(range(0x80, 0xA0)), bytes(range(0x40, 0x58)), pt,
                      bytes.fromhex("50515253c0c1c2c3c4c5c6c7"))
    assert ct.hex().startswith("bd6d179d3e83d43b9576579493c0e939"), ct.hex()
    assert ct.hex().endswith("c0875924c1c7987947deafd8780acf49"), ct.hex()


def check(spec_path):
    """Exit status 1 unless the vector block of `spec_path` is exactly what main() prints."""
    import sys
    with open(spec_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    first = lines.index(LINES[0])
    block = lines[first:lines.index("```", first)]
    if block != LINES:
        for want, got in zip(LINES, block):
            if want != got:
                print("spec: %s\ntool: %s" % (got, want), file=sys.stderr)
                break
        print("%s section 9 differs from tests/tools/crypto_vectors.py" % spec_path,
              file=sys.stderr)
        sys.exit(1)
    print("%s: %d vector lines as computed" % (spec_path, len(LINES)))


if __name__ == "__main__":
    import sys
    self_test()
    main(print_lines=len(sys.argv) < 3)
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
