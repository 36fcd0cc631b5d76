"""Worker settings, from the environment variables named in the contract (section 1)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a worker needs to know about where it runs."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field("localhost:9092", alias="KAFKA_BOOTSTRAP_SERVERS")
    topic_prefix: str = Field("", alias="RESERVE_MONITOR_TOPIC_PREFIX")
    app_id: str = Field("reserve-monitor", alias="RESERVE_MONITOR_APP_ID")
    policy: str | None = Field(None, alias="RESERVE_MONITOR_POLICY")
    web_port: int = Field(6066, alias="RESERVE_MONITOR_WEB_PORT")
    web_host: str = Field("0.0.0.0", alias="RESERVE_MONITOR_WEB_HOST")
    reporting_currency: str = Field("JPY", alias="RESERVE_MONITOR_REPORTING_CURRENCY")
    # partitions of the input topics and of every changelog (they must be co-partitioned)
    partitions: int = Field(8, ge=1, alias="RESERVE_MONITOR_PARTITIONS")
    # how often time passes for the rules without new events (windows, stale feeds)
    tick_seconds: float = Field(1.0, gt=0, alias="RESERVE_MONITOR_TICK_SECONDS")
    # how often the exchanges new events changed are evaluated (one evaluation per
    # exchange per interval, however many events arrived): the bound it adds to alert latency
    settle_seconds: float = Field(0.05, gt=0, alias="RESERVE_MONITOR_SETTLE_SECONDS")
    # a dead worker's partitions move to the others after this long without heartbeats
    session_timeout_seconds: float = Field(20.0, gt=0, alias="RESERVE_MONITOR_SESSION_TIMEOUT")
    log_level: str = Field("info", alias="RESERVE_MONITOR_LOG_LEVEL")

    def topic(self, name: str) -> str:
        """The full name of a contract topic under this deployment's prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def broker_url(self) -> str:
        return ",".join(
            f"kafka://{server.strip()}" for server in self.kafka_bootstrap_servers.split(",")
        )
