"""Real Prometheus and Alertmanager for the observability tests.

Each server runs as a subprocess on a free loopback port with its data in a
temporary directory, and is always stopped. The binaries come from Debian's
packages (``deploy/prometheus/install.sh``, run by ``make test``). The
Prometheus configuration is the real ``deploy/prometheus/prometheus.yml`` with
the test's targets and short intervals; the rule files and the Alertmanager
configuration are the real ones, unchanged.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.integration.harness import free_port
from tests.prometheus_tools import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, PROMETHEUS_DIR, binary


class Server:
    """One server subprocess, ready once ``/-/ready`` answers."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log()}")

    def get(self, path: str, **params: str) -> Any:
        """GET a JSON API path; a Prometheus ``data`` envelope is opened."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as reply:
            document = json.loads(reply.read())
        if isinstance(document, dict) and "status" in document and "data" in document:
            assert document["status"] == "success", document
            return document["data"]
        return document

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def prometheus_config(worker_port: int, alertmanager_port: int, prometheus_port: int) -> dict:
    """The real prometheus.yml aimed at local targets, scraping and evaluating every second."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    # the same rule files, found from wherever the test config is written
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
    ]
    targets = {
        "reserve-monitor": [f"127.0.0.1:{worker_port}"],
        "prometheus": [f"127.0.0.1:{prometheus_port}"],
        "alertmanager": [f"127.0.0.1:{alertmanager_port}"],
    }
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    return config


def start_alertmanager(workdir: Path) -> Server:
    """Alertmanager with the real configuration; clustering off (no gossip port)."""
    port = free_port()
    return Server(
        "alertmanager",
        [
            binary("prometheus-alertmanager"),
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={workdir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        port,
        workdir / "alertmanager.log",
    ).start()


def start_prometheus(workdir: Path, worker_port: int, alertmanager_port: int) -> Server:
    """Prometheus scraping ``worker_port`` and alerting to ``alertmanager_port``."""
    port = free_port()
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(prometheus_config(worker_port, alertmanager_port, port)))
    return Server(
        "prometheus",
        [
            binary("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # resend firing alerts every second (default 1m), so Alertmanager holds
            # annotations of the latest evaluation, not of the first
            "--rules.alert.resend-delay=1s",
        ],
        port,
        workdir / "prometheus.log",
    ).start()
