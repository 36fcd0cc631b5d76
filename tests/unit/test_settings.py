"""Settings from the environment: Kafka TLS and SASL, and secrets that never show."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from monitor.settings import KafkaClientSettings, Settings
from monitor.worker.connection import aiokafka_security

# short enough that a truncated repr of the input would still show it whole
PASSWORD = "s3cret-7f3a"
KEY_PASSWORD = "key-passphrase-91c2"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets."""
    import os

    for name in list(os.environ):
        if name.startswith(("KAFKA_", "RESERVE_MONITOR_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (our stand-in CA) and its key, encrypted with KEY_PASSWORD."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reserve-monitor test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    return cert_path, key_path


def sasl_ssl(monkeypatch: pytest.MonkeyPatch, cafile: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "monitor")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(cafile))


# -- connecting -------------------------------------------------------------------------


def test_by_default_clients_connect_in_plaintext() -> None:
    settings = Settings()
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_with_scram_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    sasl_ssl(monkeypatch, certificate[0])
    settings = Settings()
    options = aiokafka_security(settings)
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "monitor",
        "sasl_plain_password": PASSWORD,
    }
    # the broker's certificate is checked against the CA, and its name against the host
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [ca["subject"] for ca in context.get_ca_certs()] == [
        ((("commonName", "reserve-monitor test CA"),),)
    ]


def test_sasl_without_tls_and_tls_without_sasl(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "monitor")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    plain = KafkaClientSettings()
    options = aiokafka_security(plain)
    assert "ssl_context" not in options
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(certificate[0]))
    tls = KafkaClientSettings()
    options = aiokafka_security(tls)
    assert set(options) == {"security_protocol", "ssl_context"}  # no SASL over plain SSL


def test_a_client_certificate_with_an_encrypted_key(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(cert))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(key))
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", KEY_PASSWORD)
    assert aiokafka_security(KafkaClientSettings())["ssl_context"] is not None
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", "wrong")
    with pytest.raises(ssl.SSLError):
        aiokafka_security(KafkaClientSettings())


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": PASSWORD},
            "needs KAFKA_SASL_USERNAME and",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "c.pem"}, "go together"),
        ({"KAFKA_SSL_CAFILE": "ca.pem"}, "does not use TLS"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
    ],
)
def test_incomplete_security_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message) as refused:
        Settings()
    assert PASSWORD not in str(refused.value)


# -- secrets never show -----------------------------------------------------------------


def test_secrets_are_hidden_in_reprs_dumps_and_logs(
    monkeypatch: pytest.MonkeyPatch,
    certificate: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sasl_ssl(monkeypatch, certificate[0])
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", KEY_PASSWORD)
    settings = Settings()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("reserve-monitor.test").info("settings %s %r", settings, settings)
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        caplog.text,
    ]
    for text in shown:
        assert PASSWORD not in text
        assert KEY_PASSWORD not in text
    assert "**********" in repr(settings)


def test_a_validation_error_does_not_echo_the_environment(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    sasl_ssl(monkeypatch, certificate[0])
    monkeypatch.setenv("RESERVE_MONITOR_PARTITIONS", "many")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "RESERVE_MONITOR_PARTITIONS" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    assert PASSWORD not in repr(refused.value.errors())


@pytest.mark.parametrize("command", [["worker"], ["simulate", "--scenario", "steady"]])
def test_a_command_with_bad_settings_names_them_in_its_error_and_fails(
    monkeypatch: pytest.MonkeyPatch,
    certificate: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """Not a traceback: the variable, why it is refused, and nothing of the secrets."""
    from monitor.cli import main

    sasl_ssl(monkeypatch, certificate[0])
    monkeypatch.setenv("RESERVE_MONITOR_PARTITIONS", "many")  # read by the worker alone
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_TLS")  # not a protocol
    assert main(command) == 1
    said = capsys.readouterr().err
    assert said.startswith("error: bad settings in the environment:")
    assert "KAFKA_SECURITY_PROTOCOL" in said and "Traceback" not in said
    assert ("RESERVE_MONITOR_PARTITIONS" in said) is (command == ["worker"])
    assert PASSWORD not in said


@pytest.mark.parametrize(("remembered", "outcome"), [(None, "duplicate"), ("2", "applied")])
def test_the_workers_engine_remembers_as_many_event_ids_as_set(
    monkeypatch: pytest.MonkeyPatch, remembered: str | None, outcome: str
) -> None:
    """RESERVE_MONITOR_SEEN_IDS: a trade delivered again after that many newer ids of its
    exchange is applied again (forgotten); by default, the engine's 20,000 ids."""
    from monitor.core.engine import DEFAULT_SEEN_IDS, Outcome
    from monitor.core.policy import load_policy
    from monitor.worker.loop import Worker
    from tests.unit.builders import feed, trade

    if remembered is not None:
        monkeypatch.setenv("RESERVE_MONITOR_SEEN_IDS", remembered)
    settings = Settings()
    assert settings.seen_ids == (DEFAULT_SEEN_IDS if remembered is None else 2)
    engine = Worker(settings, load_policy(), price_partitions=1)._new_engine()
    feed(engine, *(trade(event_id=f"t-{n}") for n in range(3)))
    (again,) = feed(engine, trade(event_id="t-0"))
    assert again.outcome is Outcome(outcome)
