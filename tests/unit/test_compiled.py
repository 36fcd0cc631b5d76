"""Compiled core modules run only while they match their sources (monitor.core.compiled)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.compiled import refuse_stale, stale_modules, write_stamp

SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


def _core(tmp_path: Path) -> Path:
    """A project tree with one compiled module of its core, stamped as compiled."""
    core = tmp_path / "monitor" / "core"
    (core / "state").mkdir(parents=True)
    source = core / "state" / "peaks.py"
    source.write_text("PEAK = 1\n")
    (core / "state" / ("peaks" + SUFFIX)).write_bytes(b"\x7fELF")
    (core / ("_native__mypyc" + SUFFIX)).write_bytes(b"\x7fELF")  # shared: no source
    write_stamp(core, [source])  # as make compile does once it has compiled
    return core


def test_compiled_modules_that_match_their_sources_pass(tmp_path: Path) -> None:
    core = _core(tmp_path)
    assert stale_modules(core) == []
    refuse_stale(core)


def test_a_source_edited_since_it_was_compiled_is_refused_by_name(tmp_path: Path) -> None:
    core = _core(tmp_path)
    (core / "state" / "peaks.py").write_text("PEAK = 2\n")
    assert stale_modules(core) == ["monitor/core/state/peaks.py"]
    with pytest.raises(ImportError, match=r"state/peaks\.py.*make compile.*make uncompile"):
        refuse_stale(core)


def test_compiled_modules_without_a_stamp_are_refused(tmp_path: Path) -> None:
    core = _core(tmp_path)
    (core / "compiled.json").unlink()
    assert stale_modules(core) == ["monitor/core/state/peaks.py"]


def test_a_compiled_module_whose_source_is_gone_is_refused(tmp_path: Path) -> None:
    core = _core(tmp_path)
    (core / "state" / "peaks.py").unlink()
    assert stale_modules(core) == ["monitor/core/state/peaks.py"]


def test_sources_alone_have_nothing_to_check(tmp_path: Path) -> None:
    core = _core(tmp_path)
    for extension in core.rglob("*.so"):
        extension.unlink()
    (core / "compiled.json").unlink()
    assert stale_modules(core) == []
