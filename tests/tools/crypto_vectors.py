#!/usr/bin/env python3
"""Computes the test vectors of spec/crypto.md with the Python standard library only (an X25519
written from RFC 7748 section 5, HKDF from RFC 5869), independently of Parley's C++ code."""
import hashlib
import hmac

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


def hkdf(ikm: bytes, salt: bytes, info: bytes, n: int) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < n:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:n]


def key(label: str) -> bytes:
    """A fixed private key for the vectors: SHA-256 of its label."""
    return hashlib.sha256(label.encode()).digest()


ik_a, ek_a = key("alice identity"), key("alice ephemeral")
ik_b, spk_b, opk_b = key("bob identity"), key("bob signed prekey"), key("bob one-time prekey")
dh1 = x25519(ik_a, public(spk_b))
dh2 = x25519(ek_a, public(ik_b))
dh3 = x25519(ek_a, public(spk_b))
dh4 = x25519(ek_a, public(opk_b))
sk = hkdf(b"\xff" * 32 + dh1 + dh2 + dh3 + dh4, bytes(32), b"parley-x3dh-v1", 32)
sk3 = hkdf(b"\xff" * 32 + dh1 + dh2 + dh3, bytes(32), b"parley-x3dh-v1", 32)
print("x3dh.ik_a_private =", ik_a.hex())
print("x3dh.ek_a_private =", ek_a.hex())
print("x3dh.ik_b_private =", ik_b.hex())
print("x3dh.spk_b_private =", spk_b.hex())
print("x3dh.opk_b_private =", opk_b.hex())
print("x3dh.ik_a_public =", public(ik_a).hex())
print("x3dh.ek_a_public =", public(ek_a).hex())
print("x3dh.sk =", sk.hex())
print("x3dh.sk_without_opk =", sk3.hex())
rk_dh = x25519(key("alice ratchet 1"), public(spk_b))
okm = hkdf(rk_dh, sk, b"parley-ratchet-root-v1", 64)
print("kdf_rk.dh_output =", rk_dh.hex())
print("kdf_rk.root_key =", okm[:32].hex())
print("kdf_rk.chain_key =", okm[32:].hex())
ck = okm[32:]
print("kdf_ck.next_chain_key =", hmac.new(ck, b"\x02", hashlib.sha256).hexdigest())
mk = hmac.new(ck, b"\x01", hashlib.sha256).digest()
print("kdf_ck.message_key =", mk.hex())
mat = hkdf(mk, b"", b"parley-message-key-v1", 56)
print("message.aead_key =", mat[:32].hex())
print("message.nonce =", mat[32:].hex())
