"""Running ``reserve-monitor`` as a person does, in a process of its own."""

from __future__ import annotations

import socket
import subprocess
import sys


def run_without_kafka(*args: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """``reserve-monitor ARGS`` with ``KAFKA_BOOTSTRAP_SERVERS`` at a port bound but not
    listening, so every connection is refused at once: the port, and how the command ended."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", *args],
            env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    return port, done
