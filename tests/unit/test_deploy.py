"""The deployment files agree with the code: Dockerfile, docker-compose and Kubernetes.

No Docker engine or cluster runs here, so the files are parsed and checked
against what the code reads: the environment variables of ``Settings``, the
console script of ``pyproject.toml``, the commands' own argument parsers, the
policy loader, the web port. The image's build and install steps are run for
real: the core compiled and the project's wheel built from exactly what the
Dockerfile copies, then installed and run.

docker-compose mounts configuration that lives beside it; the paths it
expects are in :data:`MOUNTED`.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

import pytest
import yaml

from monitor import cli
from monitor.core.events import Topic
from monitor.core.policy import load_policy, parse_policy
from monitor.settings import Settings
from monitor.synthetic import simulator
from monitor.worker.topics import contract_topics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
# every variable the worker reads, by its contract name
VARIABLES = {field.alias for field in Settings.model_fields.values()}
WEB_PORT_DEFAULT = Settings.model_fields["web_port"].default
WORKERS = ("worker-1", "worker-2")
# the host paths docker-compose mounts, relative to deploy/ (Prometheus, Alertmanager and
# Grafana configuration come from the monitoring work of issue 5)
MOUNTED = {
    "policies",
    "prometheus/prometheus.yml",
    "prometheus/rules",
    "alertmanager/alertmanager.yml",
    "grafana/provisioning",
    "grafana/dashboards",
}
PINNED = re.compile(r"^v?[0-9]+(\.[0-9]+){1,3}$")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load(DEPLOY / "docker-compose.yml")
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def monitor_services(services: dict[str, Any]) -> dict[str, Any]:
    """The services that run the project's own image."""
    return {n: s for n, s in services.items() if s["image"].startswith("reserve-monitor:")}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def web_port(environment: dict[str, str]) -> int:
    return int(environment.get("RESERVE_MONITOR_WEB_PORT", WEB_PORT_DEFAULT))


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """``(host path, container path)`` of each bind mount (named volumes left out)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((DEPLOY / source).resolve(), target))
    return mounts


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """The host file behind ``container_path`` in ``service``."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(service):
        if wanted.is_relative_to(target):
            return source / wanted.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted from the host")


# -- docker-compose -------------------------------------------------------------


def test_every_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image, _, tag = service["image"].rpartition(":")
        assert image and PINNED.match(tag), f"{name}: {service['image']} is not pinned"


def test_the_monitor_image_is_built_from_the_repository_at_its_version(
    services: dict[str, Any],
) -> None:
    own = monitor_services(services)
    assert set(own) == {*WORKERS, "simulator", "incident"}
    for name, service in own.items():
        assert service["image"] == f"reserve-monitor:{VERSION}", name
        build = service["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()


def test_kafka_is_the_official_apache_image_of_the_version_the_tests_use(
    services: dict[str, Any],
) -> None:
    pom = ElementTree.parse(DEPLOY / "kafka" / "pom.xml")
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    tested = pom.getroot().findtext("m:properties/m:kafka.version", namespaces=namespace)
    assert tested
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{tested}"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}  # KRaft
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith("@kafka:9093")
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name, service in monitor_services(services).items():
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name


def test_every_mounted_host_path_exists(services: dict[str, Any]) -> None:
    mounted = {
        source.relative_to(DEPLOY).as_posix()
        for service in services.values()
        for source, _ in bind_mounts(service)
    }
    assert mounted == MOUNTED
    missing = sorted(p for p in mounted if not (DEPLOY / p).exists())
    assert missing == [], f"docker-compose mounts paths that are not in the repository: {missing}"


def test_the_monitor_services_set_only_variables_the_code_reads(
    services: dict[str, Any],
) -> None:
    for name, service in monitor_services(services).items():
        environment = service["environment"]
        assert set(environment) <= VARIABLES, (name, set(environment) - VARIABLES)
        Settings(**environment)  # every value is one the worker accepts


def test_the_workers_are_one_consumer_group_with_the_same_settings(
    services: dict[str, Any],
) -> None:
    first, second = (services[w] for w in WORKERS)
    assert first["environment"] == second["environment"]
    assert first["environment"]["RESERVE_MONITOR_APP_ID"]
    assert command_of(first) == command_of(second) == ["worker"]
    cli.build_parser().parse_args(command_of(first))


def test_worker_healthchecks_and_ports_are_the_web_port(services: dict[str, Any]) -> None:
    published = []
    for name in WORKERS:
        service = services[name]
        port = web_port(service["environment"])
        assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"]), name
        (mapping,) = service["ports"]
        host, container = mapping.split(":")
        assert int(container) == port, name
        published.append(host)
    assert len(set(published)) == len(WORKERS)


def test_the_policy_the_workers_load_is_in_the_repository_and_in_their_currency(
    services: dict[str, Any],
) -> None:
    for name in WORKERS:
        environment = services[name]["environment"]
        policy = load_policy(host_path(services[name], environment["RESERVE_MONITOR_POLICY"]))
        assert policy.reporting_currency == environment["RESERVE_MONITOR_REPORTING_CURRENCY"]


def test_the_simulator_plays_a_live_scenario_once_the_workers_made_the_topics(
    services: dict[str, Any],
) -> None:
    live = services["simulator"]
    command = command_of(live)
    assert command[0] == "simulate"
    args = simulator.build_parser().parse_args(command[1:])
    assert args.live and args.count is None and args.duration is None  # runs until stopped
    incident = command_of(services["incident"])
    assert incident[0] == "simulate"
    assert simulator.build_parser().parse_args(incident[1:]).scenario == "dmm-incident"
    for service in (live, services["incident"]):
        # a healthy worker has created every contract topic with its partition count
        assert {w: {"condition": "service_healthy"} for w in WORKERS} == service["depends_on"]


def test_prometheus_scrapes_the_workers_where_they_listen_and_alerts_alertmanager(
    services: dict[str, Any],
) -> None:
    config = load(host_path(services["prometheus"], "/etc/prometheus/prometheus.yml"))
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for name in WORKERS:
        assert f"{name}:{web_port(services[name]['environment'])}" in targets
    alertmanagers = {
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    }
    assert alertmanagers == {"alertmanager:9093"}
    assert "alertmanager" in services


def test_grafana_serves_anonymous_viewers_on_3000_from_the_prometheus_service(
    services: dict[str, Any],
) -> None:
    grafana = services["grafana"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert grafana["ports"] == ["3000:3000"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")

    def provisioned(kind: str, key: str) -> list[dict[str, Any]]:
        entries = [e for p in sorted((provisioning / kind).glob("*.y*ml")) for e in load(p)[key]]
        assert entries, f"Grafana has no {kind} provisioned"
        return entries

    ports = {"prometheus": 9090, "alertmanager": 9093}  # where each server listens
    sources = provisioned("datasources", "datasources")
    assert "prometheus" in {source["type"] for source in sources}
    for source in sources:
        url = urlparse(source["url"])
        assert url.hostname in services and url.port == ports[source["type"]], source["url"]
    providers = provisioned("dashboards", "providers")
    for provider in providers:
        assert host_path(grafana, provider["options"]["path"]).is_dir(), provider


# -- the Dockerfile ---------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """``(instruction, arguments)`` of each instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", re.sub(r"(?m)^\s*#.*\n", "", text))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in joined.splitlines()
        if line.strip()
    ]


def dockerignore() -> list[str]:
    """The rules of ``.dockerignore``, in order, comments and blank lines left out."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def copied_sources() -> list[str]:
    return [
        source
        for instruction, arguments in dockerfile()
        if instruction == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]


def test_the_image_runs_as_a_non_root_user_from_a_pinned_python() -> None:
    instructions = dockerfile()
    bases = [a for i, a in instructions if i == "FROM"]
    assert bases
    for base in bases:
        assert re.match(r"^python:3\.11\.[0-9]+-slim(-[a-z]+)?\b", base), base
    users = [a for i, a in instructions if i == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so Kubernetes can verify runAsNonRoot
    last_from = max(n for n, (i, _) in enumerate(instructions) if i == "FROM")
    assert any(i == "USER" for i, _ in instructions[last_from:])


def test_the_entrypoint_is_the_console_script_and_the_command_a_worker() -> None:
    instructions = dict(dockerfile())
    entrypoint = json.loads(instructions["ENTRYPOINT"])
    assert entrypoint == ["reserve-monitor"]
    assert PYPROJECT["project"]["scripts"]["reserve-monitor"] == "monitor.cli:main"
    command = json.loads(instructions["CMD"])
    cli.build_parser().parse_args(command)
    assert command == ["worker"]


def test_the_dockerfile_copies_what_the_build_needs_and_dockerignore_lets_it_through() -> None:
    sources = copied_sources()
    for source in sources:
        assert (ROOT / source).exists(), source
    # setuptools needs the readme pyproject names, and the packages it finds
    assert PYPROJECT["project"]["readme"] in sources
    for package in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert any(fnmatch.fnmatch(s, package) for s in sources), package
    rules = dockerignore()
    assert rules[0] == "*", ".dockerignore lets in only what is named"
    admitted = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert admitted == set(sources)


def build_context(directory: Path) -> Path:
    """What the Dockerfile copies, less what ``.dockerignore`` keeps out (the rules after its
    first ``*`` that admit nothing: bytecode, a compiled core and its stamp)."""
    excluded = [rule for rule in dockerignore()[1:] if not rule.startswith("!")]

    def ignored(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).relative_to(ROOT)
        return {
            name
            for name in names
            if any(fnmatch.fnmatch((here / name).as_posix(), rule) for rule in excluded)
        }

    context = directory / "context"
    context.mkdir()
    for source in copied_sources():
        origin, copy = ROOT / source, context / source
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, copy, ignore=ignored)
        else:
            copy.write_bytes(origin.read_bytes())
    return context


def test_the_build_stage_compiles_the_core_the_step_after_installing_what_it_needs() -> None:
    steps = [a for i, a in dockerfile() if i == "RUN" and "compile_core.py" in a]
    assert len(steps) == 1
    commands = [command.strip() for command in steps[0].split("&&")]
    install = next(n for n, c in enumerate(commands) if c.startswith("pip install"))
    compile_ = commands.index("python deploy/compile_core.py")
    wheel = next(n for n, c in enumerate(commands) if c.startswith("pip wheel"))
    assert install < compile_ < wheel
    assert '".[compile]"' in commands[install].split()
    assert "compile" in PYPROJECT["project"]["optional-dependencies"]


@pytest.mark.skipif(
    shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is None,
    reason="no C compiler here: the image's build stage installs one (gcc)",
)
def test_the_image_build_and_install_steps_yield_the_command_on_the_compiled_core(
    tmp_path: Path,
) -> None:
    """The build stage's steps on what the Dockerfile copies: the core compiled, the
    project's wheel built; then the run stage's install, and the command runs on its own,
    on the compiled core."""
    context = build_context(tmp_path)
    compiled = subprocess.run(
        [sys.executable, "deploy/compile_core.py"], cwd=context, capture_output=True, text=True
    )
    assert compiled.returncode == 0, compiled.stdout[-2000:] + compiled.stderr[-2000:]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(context)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("reserve_monitor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "reserve-monitor = monitor.cli:main" in archive.read(entry_points).decode()
    assert any(n.startswith("monitor/core/policy/packs/") and n.endswith(".yaml") for n in names)
    # every module the build compiled, and the stamp that lets the installed core run it
    built = sorted(p.relative_to(context).as_posix() for p in (context / "monitor").rglob("*.so"))
    assert any(n.startswith("monitor/core/engine.") for n in built)
    assert set(built) <= set(names)
    assert "monitor/core/compiled.json" in names
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(configmap()["data"]["policy.yaml"], encoding="utf-8")
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, monitor, monitor.cli, monitor.core.engine as engine;"
            "print(monitor.__file__); print(engine.__file__);"
            "sys.exit(monitor.cli.main(sys.argv[1:]))",
            "policy",
            "check",
            str(policy),
        ],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    installed_from, engine_from, verdict = check.stdout.splitlines()[:3]
    assert installed_from.startswith(str(site))  # the wheel's copy, not the working tree
    assert engine_from.startswith(str(site)) and engine_from.endswith(".so")  # compiled
    assert "valid" in verdict


# -- Kubernetes -------------------------------------------------------------------


def manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = load(K8S / name)
    return document


def configmap() -> dict[str, Any]:
    return manifest("configmap.yaml")


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return manifest("kustomization.yaml")


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    return manifest("deployment.yaml")


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_kustomization_applies_every_manifest_into_its_namespace(
    kustomization: dict[str, Any],
) -> None:
    resources = kustomization["resources"]
    manifests = {
        p.name
        for p in K8S.glob("*.yaml")
        if p.name != "kustomization.yaml" and not p.name.endswith(".example.yaml")
    }
    assert set(resources) == manifests
    assert manifest("namespace.yaml")["metadata"]["name"] == kustomization["namespace"]
    (image,) = kustomization["images"]
    assert image["name"] == container_of(manifest("deployment.yaml"))["image"].split(":")[0]
    assert image["newTag"] == VERSION


def test_every_object_has_the_fields_kubernetes_requires(kustomization: dict[str, Any]) -> None:
    for name in kustomization["resources"]:
        document = manifest(name)
        assert document.get("apiVersion") and document.get("kind"), name
        assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", document["metadata"]["name"]), name


def test_the_workers_select_their_own_pods_and_the_service_and_budget_find_them(
    deployment: dict[str, Any],
) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifest("service.yaml")["spec"]["selector"].items() <= labels.items()
    budget = manifest("poddisruptionbudget.yaml")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["minAvailable"] < deployment["spec"]["replicas"]


def test_two_workers_that_partitions_can_keep_busy(deployment: dict[str, Any]) -> None:
    environment = env_of(container_of(deployment))
    replicas = deployment["spec"]["replicas"]
    assert replicas == 2
    assert replicas <= int(environment["RESERVE_MONITOR_PARTITIONS"])


def test_the_worker_sets_only_variables_the_code_reads(deployment: dict[str, Any]) -> None:
    container = container_of(deployment)
    environment = env_of(container)
    assert set(environment) <= VARIABLES, set(environment) - VARIABLES
    Settings(**environment)
    assert container["args"] == ["worker"]
    assert container["image"] == f"reserve-monitor:{VERSION}"


def test_probes_and_ports_are_the_web_port(deployment: dict[str, Any]) -> None:
    container = container_of(deployment)
    port = web_port(env_of(container))
    (declared,) = container["ports"]
    assert declared["containerPort"] == port and declared["name"] == "metrics"
    # started and ready once consuming; alive (not restarted) while its loop runs, Kafka or not
    paths = {"startupProbe": "/healthz", "readinessProbe": "/healthz", "livenessProbe": "/livez"}
    for probe, path in paths.items():
        check = container[probe]["httpGet"]
        assert check["path"] == path, probe
        assert check["port"] in (port, declared["name"]), probe
    (service_port,) = manifest("service.yaml")["spec"]["ports"]
    assert service_port["name"] == "metrics"
    assert service_port["targetPort"] in (port, declared["name"])


def test_the_worker_has_resources_and_runs_locked_down(deployment: dict[str, Any]) -> None:
    container = container_of(deployment)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # the worker keeps its state in Kafka and writes nothing to disk
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_worker_loads_the_configmap_policy_in_its_currency(
    deployment: dict[str, Any],
) -> None:
    container = container_of(deployment)
    environment = env_of(container)
    path = PurePosixPath(environment["RESERVE_MONITOR_POLICY"])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if path.is_relative_to(m["mountPath"])]
    source = volumes[mount["name"]]["configMap"]["name"]
    policy_map = configmap()
    assert policy_map["metadata"]["name"] == source
    text = policy_map["data"][str(path.relative_to(mount["mountPath"]))]
    policy = parse_policy(yaml.safe_load(text))
    assert policy.reporting_currency == environment["RESERVE_MONITOR_REPORTING_CURRENCY"]


def test_the_credentials_example_holds_placeholders_only() -> None:
    example = manifest("kafka-credentials.example.yaml")
    assert example["kind"] == "Secret"
    secrets = {k: v for k, v in example["stringData"].items() if k != "sasl-mechanism"}
    assert set(secrets.values()) == {"CHANGE-ME"}


def test_the_prometheus_rule_carries_exactly_the_rules_promtool_tests() -> None:
    tested = load(ROOT / "deploy" / "prometheus" / "rules" / "reserve-monitor.rules.yml")
    rule = manifest("prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == tested["groups"], "run `make k8s-rules`"


def test_the_service_monitor_scrapes_the_workers_under_the_job_the_rules_select() -> None:
    monitor = manifest("servicemonitor.yaml")["spec"]
    service = manifest("service.yaml")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    job = service["metadata"]["labels"][monitor["jobLabel"]]
    rules = (ROOT / "deploy" / "prometheus" / "rules" / "reserve-monitor.rules.yml").read_text()
    assert f'job="{job}"' in rules


def test_the_input_topics_the_worker_creates_stamp_records_with_their_append_time() -> None:
    configs = {t.name: t.topic_configs for t in contract_topics(Settings())}
    for topic in Topic:
        assert configs[topic.value]["message.timestamp.type"] == "LogAppendTime"
    # prices are kept by time, never compacted: the history is read back from them
    assert configs["market.prices"]["cleanup.policy"] == "delete"
    assert int(configs["market.prices"]["retention.ms"]) >= Settings().price_history_seconds * 1000
    assert configs["reserve.alerts"] == {}
