"""A paho client set up as an `mqtt:` section says: user, password (or password file) and TLS.
One place, so the agent, the bridge, alerting's publishers and the tests' own clients all reach
the secured broker the same way. Takes the client untyped: plantmesh itself needs no paho."""

from __future__ import annotations

from typing import Any

from plantmesh.connections import MqttConnection


def apply_connection(client: Any, conn: MqttConnection) -> None:
    """`username_pw_set` and `tls_set` on a paho Client before it connects. ValueError when
    the password file cannot be read."""
    if conn.username is not None:
        client.username_pw_set(conn.username, conn.password_value())
    if conn.tls:
        client.tls_set(ca_certs=conn.ca_file)


def connect_args(url: str) -> tuple[MqttConnection, str, int]:
    """The connection a bare URL means here (with the local stack's user when it is ours),
    and its host and port."""
    conn = MqttConnection(url=url)
    return conn, conn.host, conn.port
