"""Refuse compiled core modules that no longer match their sources.

``make compile`` (``deploy/compile_core.py``) compiles the engine and its state with
mypyc into extension modules beside their sources, which Python imports in their
place, and writes the SHA-256 of each source it compiled to ``compiled.json``. A
source edited since would not run: its old compiled form would. So importing
:mod:`monitor.core` checks, and stops with a clear error instead. Without compiled
modules (a fresh checkout, an installed wheel) there is nothing to check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_CORE = Path(__file__).resolve().parent
STAMP = "compiled.json"  # beside this module: each compiled source's digest, by path
# the library the compiled modules share, in this package (mypyc names its file
# ``<group>__mypyc``); it has no source of its own
GROUP = "_native"
_SHARED = GROUP + "__mypyc"


def digest(source: Path) -> str:
    """What the stamp holds for a source: the SHA-256 of its bytes."""
    return hashlib.sha256(source.read_bytes()).hexdigest()


def write_stamp(core: Path, sources: list[Path]) -> Path:
    """Stamp ``sources`` (under the project of ``core``) as the ones compiled."""
    root = core.parent.parent
    stamp = {source.relative_to(root).as_posix(): digest(source) for source in sources}
    path = core / STAMP
    path.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def stale_modules(core: Path = _CORE) -> list[str]:
    """The compiled modules under ``core`` whose source is not the one compiled, by source
    path from the project root (all of them when no stamp vouches for them)."""
    compiled = sorted(p for p in core.rglob("*.so") if not p.name.startswith(_SHARED))
    if not compiled:
        return []
    root = core.parent.parent
    try:
        stamp = json.loads((core / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = {}
    stale = []
    for extension in compiled:
        source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
        name = source.relative_to(root).as_posix()
        try:
            held = digest(source)
        except OSError:
            held = None
        if held is None or stamp.get(name) != held:
            stale.append(name)
    return stale


def refuse_stale(core: Path = _CORE) -> None:
    """Raise ImportError when a compiled module of ``core`` is stale (see the module)."""
    stale = stale_modules(core)
    if stale:
        raise ImportError(
            "compiled modules that do not match their sources: "
            + ", ".join(stale)
            + "; run `make compile` to compile the sources again, or `make uncompile` "
            "to run the sources"
        )


def running_compiled() -> bool:
    """Whether the engine this process imports is its compiled module (``make compile``),
    not its source: what the benchmarks say they measured."""
    from monitor.core import engine  # here, not at the top: compile_core loads this alone

    return (engine.__file__ or "").endswith(".so")
