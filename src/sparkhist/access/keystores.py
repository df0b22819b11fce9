"""Java key stores (JKS, PKCS12) read into a private key and its certificate chain, as PEM.

PKCS12 is read by ``cryptography``. JKS (Sun's format) is read here: a short binary
layout whose private keys are protected by Sun's ``KeyProtector`` (a SHA-1 keystream
XOR, with a SHA-1 check) and whose whole content is signed with a SHA-1 digest keyed by
the store password; both are verified, so a wrong password is a clear error. JCEKS and
other types are refused with the ``keytool`` command that converts them to PKCS12.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sparkhist.errors import ConfigError

JKS_MAGIC = 0xFEEDFEED
_KEY_PROTECTOR_OID = bytes.fromhex("2b060104012a02110101")  # 1.3.6.1.4.1.42.2.17.1.1


@dataclass(frozen=True)
class KeyMaterial:
    """A private key and its certificate chain (leaf first), as PEM bytes."""

    key_pem: bytes
    chain_pem: bytes


def load_keystore(data: bytes, kind: str | None, store_password: str | None, key_password: str | None,
                  where: str) -> KeyMaterial:
    """The one private key of a JKS or PKCS12 store (``kind`` None: told apart by its first bytes)."""
    kind = (kind or ("JKS" if data[:4] == struct.pack(">I", JKS_MAGIC) else "PKCS12")).upper()
    if kind == "JKS":
        return _jks(data, store_password, key_password, where)
    if kind in ("PKCS12", "PKCS#12", "P12", "PFX"):
        return _pkcs12(data, store_password, key_password, where)
    raise ConfigError(f"key store {where} is of type {kind}, which sparkhist cannot read: convert it with "
                      f"keytool -importkeystore -srckeystore {where} -srcstoretype {kind} -destkeystore store.p12 "
                      "-deststoretype PKCS12")


def _pem(key: object, certs: list[x509.Certificate]) -> KeyMaterial:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                serialization.NoEncryption())
    return KeyMaterial(key_pem, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def _pkcs12(data: bytes, store_password: str | None, key_password: str | None, where: str) -> KeyMaterial:
    tried: list[str | None] = [store_password] + ([key_password] if key_password not in (None, store_password) else [])
    for password in tried:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
        except ValueError:
            continue
        if key is None or cert is None:
            raise ConfigError(f"key store {where} holds no private key with its certificate")
        return _pem(key, [cert, *extra])
    raise ConfigError(f"key store {where} cannot be opened: wrong password, or not a PKCS12 file")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def utf(self) -> str:
        return self.take(self.u16()).decode("utf-8", "replace")


def _jks(data: bytes, store_password: str | None, key_password: str | None, where: str) -> KeyMaterial:
    try:
        r = _Reader(data)
        if r.u32() != JKS_MAGIC:
            raise ValueError("not a JKS file")
        version = r.u32()
        if version not in (1, 2):
            raise ValueError(f"JKS version {version}")
        keys: list[tuple[str, bytes, list[bytes]]] = []
        for _ in range(r.u32()):
            tag = r.u32()
            alias = r.utf()
            r.take(8)  # creation time
            if tag == 1:
                protected = r.take(r.u32())
                chain = []
                for _ in range(r.u32()):
                    if version == 2:
                        r.utf()  # certificate type (X.509)
                    chain.append(r.take(r.u32()))
                keys.append((alias, protected, chain))
            elif tag == 2:
                if version == 2:
                    r.utf()
                r.take(r.u32())
            else:
                raise ValueError(f"entry tag {tag}")
        body_end = r.at
        digest = r.take(20)
    except (ValueError, struct.error) as exc:
        raise ConfigError(f"key store {where} is not a readable JKS file ({exc})") from None
    if store_password is not None:
        expected = hashlib.sha1(_utf16(store_password) + b"Mighty Aphrodite" + data[:body_end]).digest()
        if not hmac.compare_digest(expected, digest):
            raise ConfigError(f"key store {where} cannot be opened: wrong keyStorePassword (its integrity check fails)")
    if len(keys) != 1:
        raise ConfigError(f"key store {where} holds {len(keys)} private keys; sparkhist serves one")
    alias, protected, chain = keys[0]
    password = key_password if key_password is not None else store_password
    if password is None:
        raise ConfigError(f"key store {where}: a key password is needed (keyPassword or keyStorePassword)")
    pkcs8 = _unprotect(protected, password, where, alias)
    try:
        key = serialization.load_der_private_key(pkcs8, None)
        certs = [x509.load_der_x509_certificate(c) for c in chain]
    except ValueError as exc:
        raise ConfigError(f"key store {where}: entry {alias} cannot be read ({exc})") from None
    return _pem(key, certs)


def _utf16(password: str) -> bytes:
    return password.encode("utf-16-be")


def _der(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``at``."""
    tag = data[at]
    length = data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _unprotect(protected: bytes, password: str, where: str, alias: str) -> bytes:
    """Sun's KeyProtector: EncryptedPrivateKeyInfo{alg, salt(20) | key XOR keystream | SHA1(pw | key)}."""
    try:
        tag, start, _end = _der(protected, 0)  # EncryptedPrivateKeyInfo
        alg_tag, alg_start, alg_end = _der(protected, start)  # AlgorithmIdentifier
        oid_tag, oid_start, oid_end = _der(protected, alg_start)
        octets_tag, o_start, o_end = _der(protected, alg_end)
        if (tag, alg_tag, oid_tag, octets_tag) != (0x30, 0x30, 0x06, 0x04):
            raise ValueError("unexpected structure")
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"key store {where}: entry {alias} is not a JKS protected key ({exc})") from None
    if protected[oid_start:oid_end] != _KEY_PROTECTOR_OID:
        raise ConfigError(f"key store {where}: entry {alias} is protected by an algorithm other than JKS's; "
                          "convert the store to PKCS12 with keytool -importkeystore")
    encrypted = protected[o_start:o_end]
    salt, body, check = encrypted[:20], encrypted[20:-20], encrypted[-20:]
    pw = _utf16(password)
    stream = bytearray()
    digest = salt
    while len(stream) < len(body):
        digest = hashlib.sha1(pw + digest).digest()
        stream += digest
    plain = bytes(a ^ b for a, b in zip(body, stream, strict=False))
    if not hmac.compare_digest(hashlib.sha1(pw + plain).digest(), check):
        raise ConfigError(f"key store {where}: wrong keyPassword for entry {alias}")
    return plain
