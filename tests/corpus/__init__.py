"""Malformed input messages, one file of raw bytes per case (CONTRACT section 5).

``cases.json`` lists every case: the file (``<input topic>/<case>.bin``), the
record key (``key``, or ``key_hex`` for a key that is not UTF-8) and a fragment
of the reason the dead-letter record must carry. The unit tests decode each
case without Kafka; an integration test sends them all through a worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monitor.core.events import Topic

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Case:
    """One malformed record and the reason it must be rejected with."""

    name: str
    topic: Topic
    key: bytes | None
    value: bytes
    reason: str


def cases() -> list[Case]:
    """Every case of the corpus, in the order of ``cases.json``."""
    out = []
    for entry in json.loads((HERE / "cases.json").read_text()):
        topic_name, _ = entry["file"].split("/")
        if "key_hex" in entry:
            key = bytes.fromhex(entry["key_hex"])
        else:
            key = None if entry["key"] is None else entry["key"].encode()
        out.append(
            Case(
                name=entry["file"].removesuffix(".bin"),
                topic=Topic(topic_name),
                key=key,
                value=(HERE / entry["file"]).read_bytes(),
                reason=entry["reason"],
            )
        )
    return out
