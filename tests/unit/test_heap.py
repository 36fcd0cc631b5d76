"""What survives a full collection is frozen, out of the next ones; thawed when asked."""

from __future__ import annotations

import gc
import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from monitor.core.engine import Engine
from monitor.core.policy import load_policy
from monitor.heap import HeapKeeper
from monitor.replay import replay
from monitor.synthetic.scenarios import steady
from monitor.synthetic.simulator import write_jsonl


@pytest.fixture(autouse=True)
def _nothing_left_frozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_a_full_collection_leaves_is_frozen_at_the_next_settle() -> None:
    keeper = HeapKeeper()
    try:
        assert not keeper.settle()  # no full collection yet: nothing frozen
        assert gc.get_freeze_count() == 0
        gc.collect(1)  # a younger collection is not a full one
        assert not keeper.settle()
        gc.collect()
        assert gc.get_freeze_count() == 0  # not inside the collection: at the settle
        assert keeper.settle()
        frozen = gc.get_freeze_count()
        assert frozen > 0 and keeper.frozen == 1
        assert not keeper.settle()  # once a collection
        kept = [object() for _ in range(10)]  # noqa: F841  (kept alive, never frozen yet)
        keeper.thaw()
        assert gc.get_freeze_count() == 0
    finally:
        keeper.close()
    gc.collect()
    assert not keeper.settle()  # closed: collections are no longer noted


def test_a_replay_freezes_the_engine_s_state_as_it_goes_and_thaws_it_at_the_end() -> None:
    frozen_midway: list[int] = []

    text = io.StringIO()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    write_jsonl(itertools.islice(steady(start, 1, exchanges=3, duration=None), 400), text)
    records = text.getvalue().splitlines()

    def lines() -> Iterator[str]:
        for n, record in enumerate(records):
            if n == 200:
                gc.collect()  # a full collection while the replay runs
            if n == 202:
                frozen_midway.append(gc.get_freeze_count())
            yield record

    replay(lines(), Engine(load_policy(None), journal=False), io.StringIO())
    assert frozen_midway and frozen_midway[0] > 0  # frozen at the next line taken
    assert gc.get_freeze_count() == 0  # given back when the replay ends
