"""The ``reserve-monitor`` command: worker, replay, simulate, policy check and explain,
keygen and verify."""

from __future__ import annotations

import argparse
import os
import sys

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


def _keygen(args: argparse.Namespace) -> int:
    from monitor.signatures import keygen_command

    return keygen_command(args.path, sys.stdout, sys.stderr)


def _verify(args: argparse.Namespace) -> int:
    from monitor.signatures import verify_command

    return verify_command(args.file, args.public_key, sys.stdout, sys.stderr)


def _simulate(rest: list[str]) -> int:
    from connectors.simulator import main as simulate

    return simulate(rest) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reserve-monitor",
        description="Continuous reserve-adequacy monitoring of crypto exchanges.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run a stream-processing worker (Faust)")
    worker.set_defaults(run=_worker)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:
        return _simulate(argv[1:])
    args = build_parser().parse_args(argv)
    try:
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


if __name__ == "__main__":
    sys.exit(main())
