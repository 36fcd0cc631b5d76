"""Ed25519 signatures on CloudEvents, and the canonical form they cover.

A signed event carries two CloudEvents extension attributes:

- ``signaturekeyid``: the key that signed it, the first 16 hex digits of the
  SHA-256 of the raw 32-byte Ed25519 public key (`key_id`);
- ``signature``: the 64-byte Ed25519 signature (RFC 8032), base64 with padding.

The signature covers the *canonical bytes* of the event: the event as a JSON
object without its ``signature`` attribute (``signaturekeyid`` stays in, so
the key id is signed too), keys sorted at every level, no whitespace,
non-ASCII characters written as themselves, UTF-8::

    json.dumps(event_without_signature, sort_keys=True, separators=(",", ":"),
               ensure_ascii=False).encode("utf-8")

So a verifier parses the event it received, drops ``signature``, serialises it
this way and checks the signature; the bytes on the wire (spacing, key order,
escapes) do not matter. Ed25519 is deterministic, so ``replay`` signs the same
event to the same signature every time. Kafka keys and headers are outside the
event and are not covered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from monitor.core.errors import SignatureError

SIGNATURE = "signature"
KEY_ID = "signaturekeyid"


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the event without ``signature``, canonical JSON, UTF-8."""
    unsigned = {name: value for name, value in event.items() if name != SIGNATURE}
    text = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    """The id events name their signing key by: 16 hex digits of SHA-256 of the raw key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """Signs CloudEvents with one Ed25519 private key."""

    private_key: Ed25519PrivateKey
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", key_id(self.private_key.public_key()))

    def __repr__(self) -> str:  # never the key itself
        return f"Signer(key_id={self.key_id!r})"

    def sign(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``event`` with ``signaturekeyid`` and ``signature`` set."""
        signed = {name: value for name, value in event.items() if name != SIGNATURE}
        signed[KEY_ID] = self.key_id
        signature = self.private_key.sign(canonical_bytes(signed))
        signed[SIGNATURE] = base64.b64encode(signature).decode("ascii")
        return signed


def verify(event: Mapping[str, Any], public_keys: Mapping[str, Ed25519PublicKey]) -> str:
    """Check the signature of ``event`` against the keys (by key id); return the key id.

    Raises `SignatureError` saying why when it is missing or does not verify.
    """
    signature, signer_id = event.get(SIGNATURE), event.get(KEY_ID)
    if not isinstance(signature, str) or not isinstance(signer_id, str):
        raise SignatureError(f"not signed: no {SIGNATURE} and {KEY_ID} attributes")
    public_key = public_keys.get(signer_id)
    if public_key is None:
        known = ", ".join(sorted(public_keys)) or "none"
        raise SignatureError(f"signed by key {signer_id}, not one of the keys given ({known})")
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise SignatureError(f"{SIGNATURE} is not base64") from None
    try:
        public_key.verify(raw, canonical_bytes(event))
    except InvalidSignature:
        raise SignatureError(
            f"signature does not match the event: altered after signing by key {signer_id}"
        ) from None
    return signer_id


# -- keys ------------------------------------------------------------------------------


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new key pair as PEM: (PKCS #8 private key, unencrypted; SubjectPublicKeyInfo)."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise SignatureError(f"not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"not an Ed25519 key but {type(key).__name__}")
    return key


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise SignatureError(f"not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"not an Ed25519 key but {type(key).__name__}")
    return key


def load_signer(path: str | Path) -> Signer:
    """The signer of the PEM private key file at ``path``."""
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise SignatureError(f"signing key {path}: {error.strerror}") from None
    try:
        return Signer(private_key_from_pem(pem))
    except SignatureError as error:
        raise SignatureError(f"signing key {path}: {error}") from None


def load_public_keys(paths: Iterable[str | Path]) -> dict[str, Ed25519PublicKey]:
    """The public keys in the PEM files at ``paths``, by key id."""
    keys = {}
    for path in paths:
        try:
            key = public_key_from_pem(Path(path).read_bytes())
        except OSError as error:
            raise SignatureError(f"public key {path}: {error.strerror}") from None
        except SignatureError as error:
            raise SignatureError(f"public key {path}: {error}") from None
        keys[key_id(key)] = key
    return keys
