"""Worker settings, from the environment variables named in the contract (section 1).

`KafkaClientSettings` is how any client of this project (the worker, its admin
client, the simulator) reaches the brokers: their address and, when the
cluster asks for it, TLS and SASL. `Settings` adds what a worker needs. Secrets
are `SecretStr`: their repr, str and validation errors show ``**********``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaClientSettings(BaseSettings):
    """Where the brokers are and how to authenticate to them (PLAINTEXT by default)."""

    # hide_input_in_errors: a validation error must not echo the environment it read
    model_config = SettingsConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    kafka_bootstrap_servers: str = Field("localhost:9092", alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_security_protocol: SecurityProtocol = Field("PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: SaslMechanism = Field("SCRAM-SHA-512", alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(None, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(None, alias="KAFKA_SASL_PASSWORD")
    # the CA that signed the brokers' certificates (default: the system's trust store)
    kafka_ssl_cafile: str | None = Field(None, alias="KAFKA_SSL_CAFILE")
    # a client certificate and its key, for brokers that ask for one (mutual TLS)
    kafka_ssl_certfile: str | None = Field(None, alias="KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: str | None = Field(None, alias="KAFKA_SSL_KEYFILE")
    kafka_ssl_key_password: SecretStr | None = Field(None, alias="KAFKA_SSL_KEY_PASSWORD")

    @property
    def uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.kafka_security_protocol.endswith("SSL")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        # Each message names variables, never their values.
        if self.uses_sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile)
        if not self.uses_tls and any(tls_files):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol} does not use TLS (SSL or SASL_SSL)"
            )
        return self


class Settings(KafkaClientSettings):
    """Everything a worker needs to know about where it runs."""

    topic_prefix: str = Field("", alias="RESERVE_MONITOR_TOPIC_PREFIX")
    app_id: str = Field("reserve-monitor", alias="RESERVE_MONITOR_APP_ID")
    policy: str | None = Field(None, alias="RESERVE_MONITOR_POLICY")
    web_port: int = Field(6066, alias="RESERVE_MONITOR_WEB_PORT")
    web_host: str = Field("0.0.0.0", alias="RESERVE_MONITOR_WEB_HOST")
    reporting_currency: str = Field("JPY", alias="RESERVE_MONITOR_REPORTING_CURRENCY")
    # partitions of the input topics and of every changelog (they must be co-partitioned)
    partitions: int = Field(8, ge=1, alias="RESERVE_MONITOR_PARTITIONS")
    # the worker's timer: the adequacy reports that fall due, silent feeds, the price log
    tick_seconds: float = Field(1.0, gt=0, alias="RESERVE_MONITOR_TICK_SECONDS")
    # an exchange judged since its last adequacy report is reported again this long after
    # it, or at the next tick when one of its statuses changed: a report measures every
    # rule afresh and writes its document (about 0.45 ms), so a worker of 1,000 busy
    # exchanges reporting each one every tick would spend nearly half its time on them
    report_seconds: float = Field(5.0, gt=0, alias="RESERVE_MONITOR_REPORT_SECONDS")
    # how long of append time an exchange's input stays quiet before its newest moment is
    # judged (CONTRACT section 8); it bounds alert latency from below
    max_idle_seconds: float = Field(0.1, ge=0, alias="RESERVE_MONITOR_MAX_IDLE_SECONDS")
    # how far back each asset's prices are kept, from its newest (CONTRACT section 8): an
    # exchange whose records run further behind the price feed is valued at none
    price_history_seconds: float = Field(
        21600.0, ge=0, alias="RESERVE_MONITOR_PRICE_HISTORY_SECONDS"
    )
    # the event ids of each exchange remembered to refuse a duplicate (CONTRACT section 2),
    # in the changelog too: about 235 bytes each once full (4.7 MB an exchange at the
    # default, the same as the engine's), the largest part of a busy exchange's state. A
    # trade delivered again after this many newer ids of its exchange is counted twice
    seen_ids: int = Field(20_000, ge=1, alias="RESERVE_MONITOR_SEEN_IDS")
    # a dead worker's partitions move to the others after this long without heartbeats
    session_timeout_seconds: float = Field(20.0, gt=0, alias="RESERVE_MONITOR_SESSION_TIMEOUT")
    # an event dated further ahead of this worker's wall clock is invalid: one producer
    # with a broken clock would otherwise move the time every figure of every exchange
    # is judged at
    max_future_seconds: float = Field(300.0, ge=0, alias="RESERVE_MONITOR_MAX_FUTURE_SECONDS")
    log_level: str = Field("info", alias="RESERVE_MONITOR_LOG_LEVEL")
    # PEM Ed25519 private key: CloudEvents published are signed with it
    # (see monitor.core.output.signing)
    signing_key: str | None = Field(None, alias="RESERVE_MONITOR_SIGNING_KEY")

    def topic(self, name: str) -> str:
        """The full name of a contract topic under this deployment's prefix."""
        return f"{self.topic_prefix}{name}"
