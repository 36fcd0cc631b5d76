"""Signed CloudEvents: what verifies, what does not, and the commands that make and check keys."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from monitor.core.engine import Engine
from monitor.core.errors import SignatureError
from monitor.core.output.signing import (
    KEY_ID,
    SIGNATURE,
    Signer,
    canonical_bytes,
    load_public_keys,
    load_signer,
    verify,
)
from monitor.core.policy import load_policy
from monitor.replay import replay
from monitor.signatures import keygen, verify_command
from tests.unit.test_replay import CLI, story

# CloudEvents 1.0: extension attribute names are lower-case letters and digits, at most 20
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


def replayed(signer: Signer | None) -> list[dict[str, Any]]:
    """The CloudEvents of the replay story, as the worker would publish them."""
    out = io.StringIO()
    replay(story(), Engine(load_policy()), out, signer=signer)
    return [json.loads(text) for text in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def breach(signer: Signer) -> dict[str, Any]:
    """A real signed CloudEvent: the story's change into breach."""
    return next(e for e in replayed(signer) if e["data"]["status"] == "breach")


def keys_of(*signers: Signer) -> dict[str, Any]:
    return {s.key_id: s.private_key.public_key() for s in signers}


# -- the signature -----------------------------------------------------------------------


def test_a_signed_event_verifies_with_its_key(signer: Signer, breach: dict[str, Any]) -> None:
    assert verify(breach, keys_of(signer)) == signer.key_id
    assert breach[KEY_ID] == signer.key_id
    assert all(EXTENSION_NAME.match(name) for name in (SIGNATURE, KEY_ID))


def test_changed_data_does_not_verify(signer: Signer, breach: dict[str, Any]) -> None:
    tampered = json.loads(json.dumps(breach))
    tampered["data"]["shortfall"] = "1"
    with pytest.raises(SignatureError, match="altered after signing"):
        verify(tampered, keys_of(signer))


def test_a_changed_attribute_or_key_id_does_not_verify(
    signer: Signer, breach: dict[str, Any]
) -> None:
    other = Signer(Ed25519PrivateKey.generate())
    for name, value in [
        ("subject", "other/jp.liability_reserve"),
        ("time", "2030-01-01T00:00:00Z"),
    ]:
        with pytest.raises(SignatureError):
            verify({**breach, name: value}, keys_of(signer))
    # the key id is signed too: pointing it at another trusted key breaks the signature
    with pytest.raises(SignatureError, match="altered"):
        verify({**breach, KEY_ID: other.key_id}, keys_of(signer, other))


def test_an_event_signed_with_another_key_does_not_verify(breach: dict[str, Any]) -> None:
    stranger = Signer(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match=f"signed by key {breach[KEY_ID]}, not one of"):
        verify(breach, keys_of(stranger))
    # a forger who names the trusted key id still cannot sign for it
    trusted = Signer(Ed25519PrivateKey.generate())
    forged = {k: v for k, v in breach.items() if k != SIGNATURE} | {KEY_ID: trusted.key_id}
    signature = stranger.private_key.sign(canonical_bytes(forged))
    forged[SIGNATURE] = base64.b64encode(signature).decode()
    with pytest.raises(SignatureError, match="altered"):
        verify(forged, keys_of(trusted))


def test_a_missing_or_malformed_signature_does_not_verify(
    signer: Signer, breach: dict[str, Any]
) -> None:
    unsigned = {k: v for k, v in breach.items() if k != SIGNATURE}
    with pytest.raises(SignatureError, match="not signed"):
        verify(unsigned, keys_of(signer))
    with pytest.raises(SignatureError, match="not signed"):
        verify(replayed(None)[0], keys_of(signer))
    with pytest.raises(SignatureError, match="not base64"):
        verify({**breach, SIGNATURE: "%%%"}, keys_of(signer))


def test_the_canonical_form_is_sorted_compact_utf8_json_without_the_signature() -> None:
    event = {"b": 1, "a": {"d": "¥58 bn", "c": [2, None, True]}, SIGNATURE: "x", KEY_ID: "k"}
    assert (
        canonical_bytes(event)
        == '{"a":{"c":[2,null,true],"d":"¥58 bn"},"b":1,"signaturekeyid":"k"}'.encode()
    )


def test_wire_formatting_does_not_matter(signer: Signer, breach: dict[str, Any]) -> None:
    # spacing, key order and \\u escapes change the bytes on the wire, not the event
    rewritten = json.dumps(dict(reversed(list(breach.items()))), indent=2, ensure_ascii=True)
    assert verify(json.loads(rewritten), keys_of(signer)) == signer.key_id


def test_signing_adds_only_the_two_attributes_and_is_deterministic(signer: Signer) -> None:
    signed, unsigned = replayed(signer), replayed(None)
    assert replayed(signer) == signed  # Ed25519 signatures are deterministic: replay stays so
    assert [
        {k: v for k, v in e.items() if k not in (SIGNATURE, KEY_ID)} for e in signed
    ] == unsigned
    assert all(verify(e, keys_of(signer)) for e in signed)


def test_the_signer_never_shows_its_key(signer: Signer) -> None:
    raw = signer.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert raw.hex() not in repr(signer)
    assert repr(signer) == f"Signer(key_id={signer.key_id!r})"


# -- keys and the commands ------------------------------------------------------------------


def test_keygen_writes_a_private_key_for_its_owner_and_a_public_key(tmp_path: Path) -> None:
    private, public, kid = keygen(tmp_path / "monitor.key")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public == tmp_path / "monitor.key.pub"
    assert load_signer(private).key_id == kid
    assert list(load_public_keys([public])) == [kid]
    with pytest.raises(FileExistsError):
        keygen(private)
    assert load_signer(private).key_id == kid  # the old key is still there


def test_keys_that_are_not_ed25519_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "x25519.key"
    other.write_bytes(
        X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SignatureError, match="not an Ed25519 key"):
        load_signer(other)
    with pytest.raises(SignatureError, match="No such file"):
        load_signer(tmp_path / "missing.key")
    with pytest.raises(SignatureError, match="not a PEM public key"):
        load_public_keys([other])


def test_verify_names_each_failing_event(
    tmp_path: Path, signer: Signer, breach: dict[str, Any]
) -> None:
    public = tmp_path / "monitor.pub"
    public.write_bytes(
        signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    tampered = json.loads(json.dumps(breach))
    tampered["data"]["status"] = "ok"
    tampered["id"] = "tampered-1"
    record = {"topic": "reserve.breaches", "key": "dmm", "value": breach}
    lines = tmp_path / "events.jsonl"

    def run(*events: Any) -> tuple[int, str, str]:
        lines.write_text("".join(e if isinstance(e, str) else json.dumps(e) + "\n" for e in events))
        out, err = io.StringIO(), io.StringIO()
        status = verify_command(str(lines), [str(public)], out, err)
        return status, out.getvalue(), err.getvalue()

    status, out, err = run(breach, record, json.dumps(breach["data"]) + "\n", "[" * 10**5 + "\n")
    assert status == 1
    assert out.count(f"verified id {breach['id']!r}") == 2  # the event, and the dumped record
    assert "line 3: unreadable: not a CloudEvent" in err
    assert "line 4: unreadable: nested too deeply" in err

    status, out, err = run(breach, tampered)
    assert status == 1
    assert "FAILED id 'tampered-1' (line 2" in err
    assert "1 of 2 events failed" in err

    # two "data" members: parsers disagree on which wins, so the line is refused
    doubled = json.dumps(breach)[:-1] + ', "data": {}}\n'
    assert run(doubled)[0] == 1
    assert run()[0] == 1  # nothing to verify is not a success
    status, out, err = run(breach)
    assert (status, err) == (0, "all 1 events verified\n")
    assert out == f"verified id {breach['id']!r} (line 1, subject {breach['subject']!r}) " + (
        f"signed by key {signer.key_id}\n"
    )


def test_verify_cannot_read_its_key_or_input(tmp_path: Path) -> None:
    key = tmp_path / "monitor.key"
    keygen(key)
    out, err = io.StringIO(), io.StringIO()
    assert verify_command(str(tmp_path / "none.jsonl"), [f"{key}.pub"], out, err) == 2
    assert verify_command("-", [str(tmp_path / "none.pub")], out, err) == 2
    assert "none.jsonl: No such file" in err.getvalue()
    assert "none.pub: No such file" in err.getvalue()


def test_keygen_replay_and_verify_commands_agree(tmp_path: Path) -> None:
    """The regulator's round trip: keygen, a signed replay, verify from stdin."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RESERVE_MONITOR_")}

    def cli(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLI), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**environment, **env},
            timeout=60,
            check=False,
        )

    key = tmp_path / "monitor.key"
    made = cli("keygen", str(key))
    assert made.returncode == 0, made.stderr
    assert cli("keygen", str(key)).returncode == 1  # never replaces a key
    stories = tmp_path / "story.jsonl"
    stories.write_text("".join(story()), encoding="utf-8")
    signed = cli("replay", str(stories), RESERVE_MONITOR_SIGNING_KEY=str(key))
    assert signed.returncode == 0, signed.stderr
    kid = load_signer(key).key_id
    assert all(json.loads(e)[KEY_ID] == kid for e in signed.stdout.splitlines())

    checked = cli("verify", "--public-key", f"{key}.pub", "-", stdin=signed.stdout)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count("verified id") == len(signed.stdout.splitlines())

    altered = signed.stdout.replace('"breach"', '"warning"', 1)
    refused = cli("verify", "--public-key", f"{key}.pub", "-", stdin=altered)
    assert refused.returncode == 1
    assert "FAILED id" in refused.stderr
