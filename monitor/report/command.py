"""``reserve-monitor report FILE… --html OUT``: a replay input as one HTML page.

The input is read as ``replay`` reads it (several files merged by their record
timestamps, ``-`` for stdin), judged by the same engine under the same policy,
and drawn by :mod:`monitor.report.html`. :func:`write_report` does the same for
a caller holding records rather than files (``make demo``).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from monitor.core.errors import SourceError
from monitor.core.policy import Policy, load_policy
from monitor.core.status import Status
from monitor.progress import Progress
from monitor.replay import DEFAULT_APP_ID, merged, read_lines
from monitor.report.html import render
from monitor.report.series import Observed, observe

if TYPE_CHECKING:
    from monitor.synthetic.scenarios import Record

Source = str | Path | Sequence[str | Path] | Iterable["Record"]


def run(args: argparse.Namespace) -> int:
    """The command: write ``args.html`` from ``args.file``; 1 with the reason on stderr."""
    policy = load_policy(args.policy or os.environ.get("RESERVE_MONITOR_POLICY") or None)
    app_id = os.environ.get("RESERVE_MONITOR_APP_ID") or DEFAULT_APP_ID
    try:
        if args.from_topic:
            if args.file:
                raise SourceError("give replay files or --from-topic, not both")
            from monitor.report.topics import topic_lines

            _writable(args.html)
            observed = observe(iter(topic_lines()), policy, app_id=app_id)
            out = _save(observed, ["the deployment's topics"], args.html, policy)
        elif not args.file:
            raise SourceError("give replay files (- for stdin), or --from-topic")
        else:
            names = [str(name) for name in args.file]
            out, observed = _write(names, args.html, policy, app_id, progress_to=sys.stderr)
    except SourceError as error:
        print(f"report: {error}", file=sys.stderr)
        return 1
    print(f"report written to {out}: {describe(observed)}")
    if observed.problems:
        print(
            f"{len(observed.problems)} input lines were rejected; the first: "
            f"{observed.problems[0]}",
            file=sys.stderr,
        )
    return 0


def write_report(
    source: Source,
    out_path: str | Path,
    *,
    policy: Policy | None = None,
    app_id: str = DEFAULT_APP_ID,
) -> Path:
    """Write the HTML report of ``source`` to ``out_path`` and return its path.

    ``source`` is a replay file, several (merged as ``replay`` merges them), or
    synthetic records (:class:`monitor.synthetic.scenarios.Record`) in the order
    they were produced. ``policy`` defaults to the built-in packs ``jp`` and ``ops``.
    Raises :class:`~monitor.core.errors.SourceError` when the input holds no
    exchange to report on or ``out_path`` cannot be written.
    """
    policy = policy if policy is not None else load_policy(None)
    if isinstance(source, str | Path):
        return _write([str(source)], out_path, policy, app_id)[0]
    items = list(source)
    if all(isinstance(item, str | Path) for item in items):
        return _write([str(item) for item in items], out_path, policy, app_id)[0]
    from monitor.synthetic.simulator import write_jsonl

    text = io.StringIO()
    write_jsonl(items, text)  # type: ignore[arg-type]  # not paths: records
    text.seek(0)
    _writable(out_path)
    observed = observe(read_lines(text), policy, app_id=app_id)
    return _save(observed, ["(records)"], out_path, policy)


def describe(observed: Observed) -> str:
    """One line: what the report covers."""
    breaches = sum(1 for alert in observed.alerts if alert.status is Status.BREACH)
    exchanges, changes = len(observed.exchanges), len(observed.alerts)
    return (
        f"{exchanges} exchange{'s' if exchanges != 1 else ''}, "
        f"{changes} status change{'s' if changes != 1 else ''}, {breaches} into breach"
    )


def _write(
    names: list[str],
    out_path: str | Path,
    policy: Policy,
    app_id: str,
    progress_to: IO[str] | None = None,
) -> tuple[Path, Observed]:
    """The report of the files ``names`` (``-``: stdin); a read of files says how far it
    has come on ``progress_to``, when given (:mod:`monitor.progress`)."""
    _writable(out_path)
    with ExitStack() as stack:
        inputs: list[TextIO] = []
        for name in names:
            if name == "-":
                inputs.append(sys.stdin)
                continue
            try:
                inputs.append(stack.enter_context(open(name, encoding="utf-8")))
            except OSError as error:
                raise SourceError(f"cannot read {name}: {error.strerror}") from None
        lines = merged(list(inputs), names if len(names) > 1 else None)
        progress = (
            Progress("report", inputs, progress_to)
            if progress_to is not None and "-" not in names
            else None
        )
        try:
            observed = observe(lines, policy, app_id=app_id, progress=progress)
        except UnicodeDecodeError as error:
            raise SourceError(f"the input is not UTF-8 text: {error.reason}") from None
    return _save(observed, names, out_path, policy), observed


def _writable(out_path: str | Path) -> None:
    """Fail before the work when the page has nowhere to go."""
    folder = Path(out_path).parent
    if not folder.is_dir():
        raise SourceError(f"cannot write {out_path}: no directory {folder}")


def _save(observed: Observed, names: list[str], out_path: str | Path, policy: Policy) -> Path:
    if not observed.exchanges:
        rejected = (
            f"; {len(observed.problems)} lines were rejected, the first: {observed.problems[0]}"
            if observed.problems
            else ""
        )
        raise SourceError(f"the input holds no exchange record to report on{rejected}")
    packs = {name: list(policy.for_exchange(name).packs) for name in observed.exchanges}
    page = render(observed, sources=["stdin" if n == "-" else n for n in names], packs=packs)
    out = Path(out_path)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as error:
        raise SourceError(f"cannot write {out}: {error.strerror}") from None
    return out
