"""A Kafka broker and monitor workers on this machine, started one way for all who need them.

`make demo`, the integration tests and the bench all run a broker through
``deploy/kafka/kafka.sh`` and workers as ``reserve-monitor worker`` subprocesses
configured by environment variables. This module is that code, once:

- `LocalBroker` runs ``kafka.sh`` (or ``kafka-secure.sh``) for one port; `local_broker`
  reuses a broker already running there, or starts one and stops it afterwards.
- `worker_env` is the environment of a worker of one tenant (topic prefix, app id, port).
- `WorkerProcess` launches a worker with its output in a log file, waits for it to
  be healthy, reads its pages and stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"
WORKER_COMMAND = (sys.executable, "-m", "monitor.cli", "worker")

# No proxy for a worker on loopback, whatever http_proxy says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalError(RuntimeError):
    """A local broker or worker did not do what was asked; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bootstrap_of(stdout: str) -> str | None:
    """The address in kafka.sh's ``KAFKA_BOOTSTRAP_SERVERS=…`` line, if it printed one."""
    for line in stdout.splitlines():
        if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
            return line.split("=", 1)[1].strip()
    return None


class LocalBroker:
    """One broker of ``script`` on ``port`` (its controller on ``controller_port``, else port+1)."""

    def __init__(
        self, port: int | str, *, controller_port: int | None = None, script: Path = KAFKA_SCRIPT
    ) -> None:
        self.port = str(port)
        self.script = script
        self.env = dict(os.environ, KAFKA_PORT=self.port)
        if controller_port is not None:
            self.env["KAFKA_CONTROLLER_PORT"] = str(controller_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(
        self, *args: str, check: bool = True, show_progress: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the script; ``show_progress`` lets its messages (stderr) through to ours."""
        done = subprocess.run(
            [str(self.script), *args],
            cwd=REPO_ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=None if show_progress else subprocess.PIPE,
            check=False,
            timeout=600,
        )
        if check and done.returncode != 0:  # say why, not only that it failed
            raise LocalError(
                f"{self.script.name} {' '.join(args)} (port {self.port}) exited with "
                f"{done.returncode}:\n{done.stdout}{done.stderr or ''}\n"
                f"(see `KAFKA_PORT={self.port} {self.script} logs`)"
            )
        return done

    def running(self) -> bool:
        return self.run("status", check=False).returncode == 0

    def up(self, *, show_progress: bool = False) -> str:
        """Start the broker (or reuse it); its bootstrap address once it accepts clients."""
        started = self.run("up", show_progress=show_progress)
        address = bootstrap_of(started.stdout)
        if address is None:
            raise LocalError(f"{self.script.name} up printed no address:\n{started.stdout}")
        return address

    def down(self, *, wipe: bool = False) -> None:
        self.run("down", *(["--wipe"] if wipe else []))


@contextmanager
def local_broker(
    port: int | str, *, script: Path = KAFKA_SCRIPT, wipe: bool = False
) -> Iterator[str]:
    """The bootstrap address of a broker on ``port``.

    A broker already running is reused and left running; else it is started, and
    stopped afterwards (``wipe``: its data deleted too).
    """
    broker = LocalBroker(port, script=script)
    already = broker.running()
    address = broker.up()
    try:
        yield address
    finally:
        if not already:
            with contextlib.suppress(LocalError):
                broker.down(wipe=wipe)


def worker_env(
    *,
    bootstrap: str,
    prefix: str,
    app_id: str,
    web_port: int,
    partitions: int = 2,
    tick_seconds: float = 0.5,
    session_timeout: float = 6,
    log_level: str = "info",
    policy: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker of one tenant, on top of ``base`` (default: ours)."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "RESERVE_MONITOR_TOPIC_PREFIX": prefix,
            "RESERVE_MONITOR_APP_ID": app_id,
            "RESERVE_MONITOR_WEB_PORT": str(web_port),
            "RESERVE_MONITOR_WEB_HOST": "127.0.0.1",
            "RESERVE_MONITOR_PARTITIONS": str(partitions),
            "RESERVE_MONITOR_TICK_SECONDS": f"{tick_seconds:g}",
            "RESERVE_MONITOR_SESSION_TIMEOUT": f"{session_timeout:g}",
            "RESERVE_MONITOR_LOG_LEVEL": log_level,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if policy:
        env["RESERVE_MONITOR_POLICY"] = policy
    return env


class WorkerProcess:
    """A ``reserve-monitor worker`` subprocess, its output appended to ``log_path``.

    ``own_session``: the worker gets a session of its own, so a Ctrl-C in the
    terminal reaches only its parent, which then stops it in order (the demo).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        web_port: int,
        *,
        own_session: bool = False,
    ) -> None:
        self._env = dict(env)
        self.log_path = log_path
        self.port = web_port
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def env(self) -> dict[str, str]:
        """The environment of the next launch."""
        return self._env

    def launch(self) -> WorkerProcess:
        """Start the process without waiting for it (several workers join a group at once)."""
        self._starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            log.write(f"\n===== start {self._starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                WORKER_COMMAND,
                cwd=REPO_ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_session,
            )
        return self

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        self.launch()
        try:
            self.wait_healthy(timeout)
        except LocalError:  # stop it here: a caller whose start failed never stops it
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the worker has exited."""
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise LocalError(f"the worker {how}; last lines of {self.log_path}:\n{self.log(30)}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fetch(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """``(status, body)`` of a GET; status 0 when nothing answers."""
        try:
            with _HTTP.open(self.url(path), timeout=timeout) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), error.read()
        except (urllib.error.URLError, OSError, TimeoutError):
            return 0, b""

    def get(self, path: str) -> Any:
        """The body of a page that answers 200: text for /metrics, else parsed JSON."""
        status, body = self.fetch(path)
        if status != 200:
            raise LocalError(f"GET {path} answered {status or 'nothing'}")
        text = body.decode()
        return text if path == "/metrics" else json.loads(text)

    def healthy(self) -> bool:
        status, body = self.fetch("/healthz", timeout=3.0)
        return status == 200 and bool(json.loads(body).get("healthy"))

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.healthy():
                return
            time.sleep(0.3)
        raise LocalError(f"worker not healthy after {timeout:g} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Signal the worker, SIGKILL it after ``timeout``; its exit status (None if never run)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.own_session:  # anything the worker left in its session goes with it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        return process.returncode

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit or flush."""
        self.stop(signal.SIGKILL)

    def log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
