"""Connection settings shared by every service's configuration, so `mqtt:`, `kafka:` and
`influxdb:` sections read the same everywhere. Defaults come from the environment variables the
local stack exports (`plantmesh stack env`), then from the stack's default loopback ports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from plantmesh.config import ConfigModel
from plantmesh.influxql import read_token_file, token_from_env

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:11883"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:19092"
DEFAULT_INFLUX_URL = "http://127.0.0.1:18086"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MQTT_USERNAME_VAR = "PLANTMESH_MQTT_USERNAME"
MQTT_PASSWORD_FILE_VAR = "PLANTMESH_MQTT_PASSWORD_FILE"
MQTT_CA_FILE_VAR = "PLANTMESH_MQTT_CA_FILE"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


class MqttConnection(ConfigModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: str = Field(default_factory=lambda: _env("PLANTMESH_MQTT_URL", DEFAULT_MQTT_URL))
    """mqtt://host:port, or mqtts://host:port for TLS."""
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    """A file whose first line is the password (mode 600), read at connect time: keeps the
    secret out of the config file. Instead of `password`."""
    client_id: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    ca_file: str | None = None
    """CA bundle for mqtts:// (system trust store when unset)."""

    @model_validator(mode="before")
    @classmethod
    def _stack_credentials(cls, data: object) -> object:
        """An mqtts:// section on loopback that names no user takes the one `plantmesh stack env`
        exports (the secured stack's operator), and without a CA the stack's CA: so tests and
        tools reach the local stack's TLS listener with no config of their own."""
        if not isinstance(data, dict):
            return data
        url = data.get("url")
        if not isinstance(url, str):
            url = _env("PLANTMESH_MQTT_URL", DEFAULT_MQTT_URL)
        parts = urlsplit(url)
        if parts.scheme != "mqtts" or parts.hostname not in LOOPBACK:
            return data  # not the secured local stack: its secrets must not go there
        filled = dict(data)
        named = {"username", "password", "password_file"} & filled.keys()
        if not named and (user := os.environ.get(MQTT_USERNAME_VAR)):
            filled["username"] = user
            if secret := os.environ.get(MQTT_PASSWORD_FILE_VAR):
                filled["password_file"] = secret
        if "ca_file" not in filled and (ca := os.environ.get(MQTT_CA_FILE_VAR)):
            filled["ca_file"] = ca
        return filled

    @model_validator(mode="after")
    def _one_password(self) -> MqttConnection:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give `password` or `password_file`, not both")
        if self.password_file is not None and self.username is None:
            raise ValueError("`password_file` needs `username`")
        return self

    def password_value(self) -> str | None:
        """The password to send: `password`, or the first line of `password_file` as it is now
        (so a rotated secret is picked up by the next connection). ValueError if unreadable."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            text = self.password_file.read_text()
        except OSError as exc:
            raise ValueError(
                f"cannot read mqtt.password_file {self.password_file}: {exc}"
            ) from None
        return text.split("\n", 1)[0].rstrip("\r")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtt://host:port or mqtts://host:port")
        return value

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # guaranteed by the validator
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class KafkaConnection(ConfigModel):
    """A Kafka cluster and who we are to it. A section that names none of `username`,
    `password` and `password_file` (and does not ask for PLAINTEXT or SSL) takes
    $PLANTMESH_KAFKA_USERNAME and $PLANTMESH_KAFKA_PASSWORD_FILE, which `plantmesh stack env`
    exports for the secured local stack's operator."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    bootstrap: str = Field(
        default_factory=lambda: _env("PLANTMESH_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    )
    """Comma-separated host:port list."""
    client_id: str = "plantmesh"
    username: str | None = None
    """The SASL user (the Kafka principal `User:<username>`)."""
    password: SecretStr | None = None
    password_file: Path | None = None
    """A file whose first line is the password (mode 600), read when a client is made: keeps
    the secret out of the config file. Instead of `password`."""
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] | None = None
    """Unset: SASL_PLAINTEXT with a username, PLAINTEXT without."""
    ca_file: Path | None = None
    """CA bundle for SSL and SASL_SSL (system trust store when unset)."""

    @model_validator(mode="before")
    @classmethod
    def _env_credentials(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        named = {"username", "password", "password_file"} & data.keys()
        if named or data.get("security_protocol") in ("PLAINTEXT", "SSL"):
            return data  # explicit settings win over the environment's, never mix with them
        filled = dict(data)
        if user := os.environ.get("PLANTMESH_KAFKA_USERNAME"):
            filled["username"] = user
            if secret := os.environ.get("PLANTMESH_KAFKA_PASSWORD_FILE"):
                filled["password_file"] = secret
        return filled

    @model_validator(mode="after")
    def _consistent(self) -> KafkaConnection:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give `password` or `password_file`, not both")
        has_secret = self.password is not None or self.password_file is not None
        if has_secret and self.username is None:
            raise ValueError("`password` and `password_file` need `username`")
        if self.security_protocol is None:
            self.security_protocol = "SASL_PLAINTEXT" if self.username else "PLAINTEXT"
        if self.sasl and not (self.username and has_secret):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs `username` and "
                "`password` or `password_file`"
            )
        if not self.sasl and self.username is not None:
            raise ValueError(
                f"`username` needs SASL, not security_protocol {self.security_protocol}"
            )
        if self.ca_file is not None and self.security_protocol not in ("SSL", "SASL_SSL"):
            raise ValueError("`ca_file` needs security_protocol SSL or SASL_SSL")
        return self

    @property
    def sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def password_value(self) -> str | None:
        """The password to send: `password`, or the first line of `password_file` as it is now
        (so a rotated secret is picked up by the next client). ValueError if unreadable."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            text = self.password_file.read_text()
        except OSError as exc:
            raise ValueError(
                f"cannot read kafka.password_file {self.password_file}: {exc}"
            ) from None
        return text.split("\n", 1)[0].rstrip("\r")


class InfluxConnection(ConfigModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: str = Field(default_factory=lambda: _env("PLANTMESH_INFLUX_URL", DEFAULT_INFLUX_URL))
    # InfluxDB 1.8 speaks the v2 API with bucket "database/retention-policy" and token
    # "user:password"; InfluxDB 2.x/3.x take a real bucket, org and token.
    bucket: str = "plantmesh/autogen"
    org: str = "-"
    token: SecretStr | None = None
    """Default $PLANTMESH_INFLUX_TOKEN. Instead of `token_file`; neither: no credentials (a
    server without authentication)."""
    token_file: Path | None = None
    """A file whose first line is the token (mode 600), read at connect time: keeps the secret
    out of the config file, and a rotated one is picked up by the next connection. Default
    $PLANTMESH_INFLUX_TOKEN_FILE (`plantmesh stack env` exports the local stack's admin)."""
    timeout_s: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _one_token(self) -> InfluxConnection:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give `token` or `token_file`, not both")
        if self.token is None and self.token_file is None:  # the environment's, if any
            found = token_from_env()
            if isinstance(found, Path):
                self.token_file = found
            elif found is not None:
                self.token = SecretStr(found)
        return self

    def token_value(self) -> str:
        """The token to send ("" for none): `token`, or the first line of `token_file` as it
        is now. ValueError if the file is unreadable or empty."""
        if self.token_file is not None:
            return read_token_file(self.token_file)
        return self.token.get_secret_value() if self.token is not None else ""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("expected http://host:port or https://host:port")
        return value.rstrip("/")

    @property
    def database(self) -> str:
        """The InfluxDB 1.x database behind the bucket (what InfluxQL queries name)."""
        return self.bucket.split("/", 1)[0]


class DatabaseConnection(ConfigModel):
    """The alarm database: postgresql://user:password@host:port/db, or sqlite:///path for one
    small site. Default: $PLANTMESH_DATABASE_URL (the local stack exports its own)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: SecretStr = Field(
        default_factory=lambda: SecretStr(os.environ.get("PLANTMESH_DATABASE_URL", ""))
    )
    pool_size: Annotated[int, Field(ge=1, le=100)] = 5

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError(
                "expected postgresql://user:password@host:port/db or sqlite:///path "
                "(or set PLANTMESH_DATABASE_URL)"
            )
        return value


class MetricsEndpoint(ConfigModel):
    """Where a service serves Prometheus metrics; off unless `listen` is set."""

    listen: str | None = None
    """host:port of the `/metrics` endpoint, e.g. 127.0.0.1:9108."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is not None:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError("expected host:port, e.g. 127.0.0.1:9108")
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class KafkaTopicSettings(ConfigModel):
    """The `kafka_topics:` section of every cloud-side service: the topics it reads and writes."""

    create: bool = True
    """Create missing topics at start (an explicit layout beats the broker's auto-creation)."""
    partitions: Annotated[int, Field(ge=1)] = 4
    """Partitions of a topic this service creates (existing topics keep theirs)."""
    replication_factor: Annotated[int, Field(ge=1)] = 1


class BackoffSettings(ConfigModel):
    """The `backoff:` section: capped, jittered exponential backoff between retries."""

    initial_s: Annotated[float, Field(gt=0)] = 0.2
    max_s: Annotated[float, Field(gt=0)] = 30.0

    @model_validator(mode="after")
    def _ordered(self) -> BackoffSettings:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self
