"""``reserve-monitor keygen`` and ``reserve-monitor verify``: the signature commands.

``keygen PATH`` writes a new Ed25519 key pair: ``PATH`` (the private key, mode
0600, for ``RESERVE_MONITOR_SIGNING_KEY``) and ``PATH.pub`` (the public key,
for regulators). ``verify --public-key FILE [FILE|-]`` reads CloudEvents, one
JSON object a line: either the event itself (what a console consumer prints
of ``reserve.breaches``) or a dumped Kafka record ``{"topic", "key", "value"}``
whose value is the event. It prints one line per event and exits 0 when every
event verifies, 1 otherwise (naming each failing event) and on no events, and
2 when a key or the input cannot be read.
The canonical form is in `monitor.core.output.signing`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from monitor.core.errors import SignatureError
from monitor.core.output.signing import (
    generate_key_pair,
    key_id,
    load_public_keys,
    public_key_from_pem,
    verify,
)


def keygen(path: str | Path) -> tuple[Path, Path, str]:
    """Write a new key pair to ``path`` and ``path.pub``; return both paths and the key id.

    Refuses to replace an existing file: a lost private key cannot be recovered.
    """
    private_path, public_path = Path(path), Path(f"{path}.pub")
    if public_path.exists():  # checked first so that no private key is left without its pair
        raise FileExistsError(17, "exists", str(public_path))
    private_pem, public_pem = generate_key_pair()
    # O_EXCL: never overwrite; 0o600: the private key is readable by its owner only
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    with os.fdopen(os.open(private_path, flags, 0o600), "wb") as file:
        file.write(private_pem)
    with os.fdopen(os.open(public_path, flags, 0o644), "wb") as file:
        file.write(public_pem)
    return private_path, public_path, key_id(public_key_from_pem(public_pem))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins: refuse, so no one is fooled.
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise ValueError(
            f"duplicate member names {sorted({n for n in names if names.count(n) > 1})}"
        )
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_event(line: str) -> dict[str, Any]:
    """The CloudEvent of one input line: an event, or a dumped record whose value is one."""
    document = _strict_json(line)
    if isinstance(document, dict) and "specversion" not in document and "value" in document:
        document = document["value"]
        if isinstance(document, str):  # a record dumped with its value as text
            document = _strict_json(document)
    if not isinstance(document, dict) or "specversion" not in document:
        raise ValueError("not a CloudEvent (no specversion)")
    return document


def verify_lines(
    lines: Iterable[str], public_keys: Mapping[str, Ed25519PublicKey], out: IO[str]
) -> tuple[int, list[str]]:
    """Verify each event in ``lines``; return the count verified and one line per failure."""
    verified, failures = 0, []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except ValueError as error:
            failures.append(f"line {number}: unreadable: {error}")
            continue
        name = f"id {event.get('id')!r} (line {number}, subject {event.get('subject')!r})"
        try:
            signer = verify(event, public_keys)
        except SignatureError as error:
            failures.append(f"{name}: {error}")
            continue
        verified += 1
        print(f"verified {name} signed by key {signer}", file=out)
    return verified, failures


def verify_command(path: str, key_paths: list[str], out: IO[str], err: IO[str]) -> int:
    """``reserve-monitor verify``: exit status 0 when every event verifies, else 1."""
    try:
        public_keys = load_public_keys(key_paths)
    except SignatureError as error:
        print(f"error: {error}", file=err)
        return 2
    if path == "-":
        verified, failures = verify_lines(sys.stdin, public_keys, out)
    else:
        try:
            # undecodable bytes become U+FFFD: that line then fails, and is named
            with open(path, encoding="utf-8", errors="replace") as lines:
                verified, failures = verify_lines(lines, public_keys, out)
        except OSError as error:
            print(f"error: {path}: {error.strerror}", file=err)
            return 2
    for failure in failures:
        print(f"FAILED {failure}", file=err)
    if failures:
        print(f"{len(failures)} of {verified + len(failures)} events failed verification", file=err)
        return 1
    if not verified:
        print("no events to verify", file=err)
        return 1
    print(f"all {verified} events verified", file=err)
    return 0


def keygen_command(path: str, out: IO[str], err: IO[str]) -> int:
    """``reserve-monitor keygen``: exit status 0 when the pair is written."""
    try:
        private_path, public_path, kid = keygen(path)
    except FileExistsError as error:
        print(f"error: {error.filename} exists; not replacing a key", file=err)
        return 1
    print(f"key id {kid}", file=out)
    print(f"private key: {private_path} (set RESERVE_MONITOR_SIGNING_KEY to it)", file=out)
    print(f"public key:  {public_path} (give it to whoever verifies)", file=out)
    return 0
