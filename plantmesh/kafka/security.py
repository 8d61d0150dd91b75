"""How every aiokafka client reaches and authenticates to Kafka: one place that turns a
KafkaConnection into client arguments, so producers, consumers, admin clients, tools, benchmarks
and tests all honour the same settings."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from plantmesh.connections import KafkaConnection


def kafka_client_options(kafka: KafkaConnection) -> dict[str, Any]:
    """`bootstrap_servers` and the security arguments of AIOKafkaProducer, AIOKafkaConsumer,
    AIOKafkaAdminClient and AIOKafkaClient. The password is read now (from `password_file`):
    call this for each client made, so a rotated secret is picked up. ValueError if the
    password file is unreadable."""
    protocol = kafka.security_protocol or "PLAINTEXT"
    options: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        cafile = str(kafka.ca_file) if kafka.ca_file is not None else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    if kafka.sasl:
        # aiokafka takes SCRAM credentials through its sasl_plain_* arguments too.
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.username
        options["sasl_plain_password"] = kafka.password_value()
    return options
