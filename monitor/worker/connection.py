"""How this project's Kafka clients authenticate: one place turns settings into client options.

`aiokafka_security` gives the keyword arguments of aiokafka's producer, consumer
and admin client, from one `KafkaClientSettings`, so the worker, its admin
client and the simulator connect the same way. Passwords leave their `SecretStr` only
here, straight into the client; nothing here logs them.
"""

from __future__ import annotations

import ssl
from typing import Any

# aiokafka ships no type information (no py.typed, no stubs).
from aiokafka.helpers import create_ssl_context

from monitor.settings import KafkaClientSettings


def ssl_context(settings: KafkaClientSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (broker hostname always checked), else None."""
    if not settings.uses_tls:
        return None
    key_password = settings.kafka_ssl_key_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        password=key_password.get_secret_value() if key_password else None,
    )
    return context


def aiokafka_security(settings: KafkaClientSettings) -> dict[str, Any]:
    """Security keyword arguments for ``AIOKafkaProducer``/``Consumer``/``AdminClient``."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.uses_sasl:
        assert settings.kafka_sasl_password is not None  # the settings validator insists
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options
