"""The ``reserve-monitor`` command: worker, reset, replay, simulate, policy check and explain,
keygen and verify."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

from monitor.core.errors import PolicyError, SignatureError
from monitor.core.output.signing import load_signer
from monitor.core.policy import Policy, load_policy


def _policy(path: str | None) -> Policy:
    return load_policy(path or os.environ.get("RESERVE_MONITOR_POLICY") or None)


def _replay(args: argparse.Namespace) -> int:
    from monitor.replay import run

    app_id = os.environ.get("RESERVE_MONITOR_APP_ID") or "reserve-monitor"
    key = os.environ.get("RESERVE_MONITOR_SIGNING_KEY")  # signs as the worker would
    signer = load_signer(key) if key else None
    return run(args.file, _policy(args.policy), sys.stdout, sys.stderr, app_id, signer)


def _policy_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    named = sorted(set(policy.resolved) - {"default"})
    print(
        f"{args.file}: valid; reporting currency {policy.reporting_currency}; "
        f"default packs {', '.join(policy.resolved['default'].packs) or 'none'}"
        + (f"; {len(named)} exchanges named: {', '.join(named)}" if named else "")
    )
    return 0


def _policy_explain(args: argparse.Namespace) -> int:
    from monitor.explain import run

    if args.url and args.policy:
        print(
            "policy explain: --policy applies to --input; a worker judges by its own policy",
            file=sys.stderr,
        )
        return 1
    policy = _policy(args.policy) if args.input is not None else None
    return run(
        args.exchange,
        input_path=args.input,
        policy=policy,
        url=args.url,
        out=sys.stdout,
        err=sys.stderr,
    )


def _worker(args: argparse.Namespace) -> int:
    from monitor.worker.main import run_worker

    return run_worker()


def _reset(args: argparse.Namespace) -> int:
    import asyncio

    from aiokafka.errors import KafkaError
    from pydantic import ValidationError

    from monitor.settings import Settings
    from monitor.worker.reset import ResetIncomplete, ResetRefused, reset

    try:
        settings = Settings()
    except ValidationError as error:
        print(f"reset: bad settings: {error}", file=sys.stderr)
        return 1
    try:
        plan = asyncio.run(
            reset(settings, args.application_id, to=args.to_datetime, dry_run=args.dry_run)
        )
    except ResetRefused as error:
        print(f"reset refused: {error}", file=sys.stderr)
        return 1
    except ResetIncomplete as error:
        print(f"reset incomplete: {error}", file=sys.stderr)
        return 1
    except (KafkaError, TimeoutError, OSError) as error:  # the broker, unreachable or refusing
        print(f"reset failed: {error!r}", file=sys.stderr)
        return 1
    for line in plan.report(done=not args.dry_run):
        print(line)
    return 0


def _rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time with an offset, e.g. 2024-05-31T13:00:00Z"
        )
    return moment


def _keygen(args: argparse.Namespace) -> int:
    from monitor.signatures import keygen_command

    return keygen_command(args.path, sys.stdout, sys.stderr)


def _verify(args: argparse.Namespace) -> int:
    from monitor.signatures import verify_command

    return verify_command(args.file, args.public_key, sys.stdout, sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from monitor.report.command import run

    return int(run(args))


def _simulate(rest: list[str]) -> int:
    from monitor.synthetic.simulator import main as simulate

    return simulate(rest) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reserve-monitor",
        description="Continuous reserve-adequacy monitoring of crypto exchanges.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser(
        "worker", help="run a stream-processing worker (a Kafka consumer-group member)"
    )
    worker.set_defaults(run=_worker)

    reset = commands.add_parser(
        "reset",
        help="rewind an application's input offsets and delete its changelogs (stop its workers)",
        description="Rewind the group's committed offsets on the input topics and delete its "
        "changelog topics (and the legacy worker's, if present), so the next workers rebuild "
        "their state from the input topics. Refused while the group has members. Topics come "
        "from the environment, as for the worker. See docs/operations-reset.md.",
    )
    reset.add_argument(
        "--application-id",
        required=True,
        metavar="ID",
        help="the application to reset; must equal RESERVE_MONITOR_APP_ID",
    )
    target = reset.add_mutually_exclusive_group()
    target.add_argument(
        "--to-earliest",
        action="store_const",
        const=None,
        dest="to_datetime",
        help="rewind to the earliest offset the brokers hold (the default)",
    )
    target.add_argument(
        "--to-datetime",
        type=_rfc3339,
        metavar="RFC3339",
        help="rewind each partition to its first record appended at or after this time",
    )
    reset.add_argument(
        "--dry-run", action="store_true", help="print what would be done and change nothing"
    )
    reset.set_defaults(run=_reset)

    replay = commands.add_parser("replay", help="run the rules over JSON Lines, no Kafka")
    replay.add_argument(
        "file",
        nargs="+",
        help="JSON Lines files (- for stdin); several are merged by their records' timestamp",
    )
    replay.add_argument(
        "--policy",
        help="policy file (default: $RESERVE_MONITOR_POLICY, else the built-in packs jp and ops)",
    )
    replay.set_defaults(run=_replay)

    commands.add_parser(
        "simulate", help="produce synthetic events (see simulate --help)", add_help=False
    )

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file")
    check.set_defaults(run=_policy_check)
    explain = policy_commands.add_parser(
        "explain", help="each rule of one exchange: its inputs, arithmetic and status"
    )
    explain.add_argument("--exchange", required=True, help="the exchange id")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="FILE", help="replay JSON Lines, or - for stdin")
    source.add_argument("--url", help="a running worker, e.g. http://127.0.0.1:6066")
    explain.add_argument("--policy", help="policy file for --input (default as for replay)")
    explain.set_defaults(run=_policy_explain)

    keygen = commands.add_parser("keygen", help="write an Ed25519 key pair to sign CloudEvents")
    keygen.add_argument("path", help="private key file to create; the public key goes to PATH.pub")
    keygen.set_defaults(run=_keygen)

    verify = commands.add_parser("verify", help="verify the signatures of CloudEvents")
    verify.add_argument(
        "--public-key",
        action="append",
        required=True,
        metavar="FILE",
        help="PEM public key (repeat for several keys; events pick theirs by key id)",
    )
    verify.add_argument("file", nargs="?", default="-", help="JSON Lines file, or - for stdin")
    verify.set_defaults(run=_verify)

    report = commands.add_parser(
        "report", help="a self-contained HTML report of a replay input (inline SVG)"
    )
    report.add_argument("file", nargs="*", help="replay JSON Lines (- for stdin)")
    report.add_argument(
        "--from-topic",
        action="store_true",
        help="read a running deployment's input topics instead (KAFKA_BOOTSTRAP_SERVERS, "
        "RESERVE_MONITOR_TOPIC_PREFIX), from their first record to now",
    )
    report.add_argument("--html", required=True, metavar="OUT", help="the HTML file to write")
    report.add_argument("--policy", help="policy file (default as for replay)")
    report.set_defaults(run=_report)

    from connectors.commands import add_commands

    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["simulate"]:
            return _simulate(argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except PolicyError as error:
        print("policy errors:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except SignatureError as error:  # an unusable signing key
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:  # a file named
        print(f"error: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    except Exception as error:
        if _from_kafka(error):
            # a command that writes to Kafka, with no broker to answer or one that refuses it
            refused = _refusal(error)
            print(
                f"error: {refused}"
                if refused is not None
                else f"error: {error} (KAFKA_BOOTSTRAP_SERVERS and the KAFKA_* security "
                "settings say where Kafka is and how to connect)",
                file=sys.stderr,
            )
            return 1
        if _bad_settings(error):
            print(f"error: bad settings in the environment: {error}", file=sys.stderr)
            return 1
        raise


def _from_kafka(error: BaseException) -> bool:
    """Whether ``error`` is the Kafka client's (aiokafka is imported only by the commands
    that use it: one that never was cannot have raised)."""
    errors = sys.modules.get("aiokafka.errors")
    return errors is not None and isinstance(error, errors.KafkaError)


def _refusal(error: BaseException) -> str | None:
    """Why Kafka turned the command away (a certificate not trusted, a login refused), if
    ``error`` (the Kafka client's) hides it: the client says only that it could not connect
    (:func:`monitor.worker.connection.refusal`)."""
    import asyncio

    from aiokafka.errors import KafkaConnectionError

    from monitor.settings import KafkaClientSettings
    from monitor.worker.connection import refusal

    if not isinstance(error, KafkaConnectionError):
        return None
    return asyncio.run(refusal(KafkaClientSettings()))


def _bad_settings(error: BaseException) -> bool:
    """Whether ``error`` is the refusal of the settings read from the environment
    (:mod:`monitor.settings`), which names each variable and why."""
    from pydantic import ValidationError

    from monitor.settings import KafkaClientSettings, Settings

    return isinstance(error, ValidationError) and error.title in {
        Settings.__name__,
        KafkaClientSettings.__name__,
    }


if __name__ == "__main__":
    sys.exit(main())
