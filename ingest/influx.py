"""Writing line protocol to InfluxDB, with failures sorted into "try again" and "this data will
never be accepted".

The asynchronous influxdb-client (aiohttp) runs on the writer's own event loop. The writer awaits
each write before it commits anyway, so a thread would add a hand-off and buy no overlap; and the
sync client's batching WriteApi (a background thread with its own retries) would hide exactly the
failures the writer must see before committing Kafka offsets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import aiohttp
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write_api_async import WriteApiAsync
from influxdb_client.rest import ApiException

from plantmesh.connections import InfluxConnection
from plantmesh.influxql import auth_headers

log = logging.getLogger(__name__)

# Statuses that say the data itself is wrong: sending it again cannot help.
REJECTED_STATUSES = frozenset({400, 413, 422})


class InfluxUnavailableError(Exception):
    """InfluxDB did not take the write for a reason that may pass: retry the same points."""


class InfluxRejectedError(Exception):
    """InfluxDB refused the points themselves (e.g. a field type conflict). On InfluxDB 1.x a
    "partial write" has stored the valid points of the request and dropped the rest."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status}: {message}")


def _error_text(body: object) -> str:
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(parsed, dict):
        # InfluxDB 1.x says {"error": ...}, 2.x {"code": ..., "message": ...}
        return str(parsed.get("error") or parsed.get("message") or parsed)[:500]
    return text.strip()[:500]


class InfluxSink:
    """One InfluxDB bucket. `open()` inside the running loop, `close()` when done."""

    def __init__(self, connection: InfluxConnection, *, gzip: bool = False) -> None:
        self.connection = connection
        self.gzip = gzip
        self._client: InfluxDBClientAsync | None = None
        self._write_api: WriteApiAsync | None = None

    async def open(self) -> None:
        if self._client is None:
            conn = self.connection
            self._client = InfluxDBClientAsync(
                url=conn.url,
                token=conn.token_value(),
                org=conn.org,
                timeout=int(conn.timeout_s * 1000),
                enable_gzip=self.gzip,
            )
            self._write_api = self._client.write_api()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._write_api = self._client, None, None
            await client.close()  # type: ignore[no-untyped-call]

    async def ensure_database(self) -> None:
        """`CREATE DATABASE` over InfluxQL (InfluxDB 1.x; idempotent there). A user without
        the admin privilege it needs (a write-only user, as it should be) is told 403: then an
        admin made the database, and if not, the writes say so."""
        conn = self.connection
        name = conn.database.replace("\\", "\\\\").replace('"', '\\"')
        timeout = aiohttp.ClientTimeout(total=conn.timeout_s)
        headers = auth_headers(conn.token_value())
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    f"{conn.url}/query", data={"q": f'CREATE DATABASE "{name}"'}, headers=headers
                ) as response,
            ):
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxUnavailableError(f"cannot reach {conn.url}: {exc!r}") from exc
        if response.status == 403:
            log.info("not creating database %r: %s", conn.database, _error_text(body))
            return
        if response.status != 200:
            raise InfluxUnavailableError(
                f"CREATE DATABASE: HTTP {response.status}: {_error_text(body)}"
            )
        results = json.loads(body).get("results") or [{}]
        if "error" in results[0]:
            raise InfluxUnavailableError(f"CREATE DATABASE: {results[0]['error']}")

    async def write(self, lines: Sequence[str]) -> None:
        """Write line-protocol lines (nanosecond timestamps). Raises InfluxRejectedError or
        InfluxUnavailableError."""
        if not lines:
            return
        if self._write_api is None:
            raise RuntimeError("InfluxSink.write before open()")
        try:
            await self._write_api.write(
                # One string: the client serializes a list record by record (~3 µs each).
                bucket=self.connection.bucket,
                org=self.connection.org,
                record="\n".join(lines),
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            text = _error_text(exc.body) if exc.body else str(exc.reason)
            if status in REJECTED_STATUSES:
                raise InfluxRejectedError(status, text) from None
            raise InfluxUnavailableError(f"HTTP {status}: {text}") from None
        except (TimeoutError, InfluxDBError, aiohttp.ClientError, OSError) as exc:
            raise InfluxUnavailableError(f"{type(exc).__name__}: {exc}") from None
