"""How this project's Kafka clients authenticate: one place turns settings into client options.

`aiokafka_security` gives the keyword arguments of aiokafka's producer, consumer
and admin client, from one `KafkaClientSettings`, so the worker, its admin
client and the simulator connect the same way. Passwords leave their `SecretStr` only
here, straight into the client; nothing here logs them. `refusal` says why Kafka
turns a client away (a certificate not trusted, a login refused), which aiokafka's
clients report only as a failed connection.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

# aiokafka ships no type information (no py.typed, no stubs).
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
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


# what a broker's refusal of a login is raised as, by the connection that tried it
_REFUSED = (
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
)


async def refusal(settings: KafkaClientSettings, timeout: float = 10.0) -> str | None:
    """Why Kafka turns this client away at the door, if it does: a certificate the client
    does not trust, or a SASL login refused. None if it does not, if no bootstrap server
    answered, or if the client uses neither TLS nor SASL (then at once).

    aiokafka's clients report both (a wrong CA file or broker host name; a wrong
    password, an unknown user, a mechanism the broker does not enable) as a failed
    connection, ``KafkaConnectionError``, which waiting could mend, with the reason only
    in their log. This connects to the bootstrap servers in turn, as a client does, and
    says the first refusal, naming the user and mechanism (never the password).
    """
    if not (settings.uses_tls or settings.uses_sasl):
        return None
    options = aiokafka_security(settings)
    for host, port, _ in collect_hosts(settings.kafka_bootstrap_servers, randomize=False):
        try:
            connection = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options),
                timeout,
            )
        except ssl.SSLCertVerificationError as error:
            return (
                f"Kafka at {host}:{port} presented a certificate this client does not trust: "
                f"{error.verify_message} (KAFKA_SSL_CAFILE names the authority to trust, and "
                "KAFKA_BOOTSTRAP_SERVERS the names the certificate must carry)"
            )
        except _REFUSED as error:
            return (
                f"Kafka at {host}:{port} refused the login of {settings.kafka_sasl_username} "
                f"({settings.kafka_sasl_mechanism}): {error} (KAFKA_SASL_USERNAME, "
                "KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM say how to log in)"
            )
        except (OSError, KafkaError, TimeoutError):
            continue  # not there, or not answering: the next one may say
        connection.close()
        return None
    return None
