"""A minimal InfluxQL and Flux client over HTTP (standard library only), for the command line and
the demo, which must not pull the cloud-side client into an edge install."""

from __future__ import annotations

import csv
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_VAR = "PLANTMESH_INFLUX_TOKEN"
TOKEN_FILE_VAR = "PLANTMESH_INFLUX_TOKEN_FILE"
"""Where a client finds its credentials when its configuration names none: a token
(`user:password` on InfluxDB 1.8), or a file holding one (`plantmesh stack env` exports the
local stack's admin file)."""


class InfluxQueryError(RuntimeError):
    pass


def read_token_file(path: Path) -> str:
    """The token in a file: its first line. ValueError when unreadable or empty (the message
    names the file, never its content)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the InfluxDB token file {path}: {exc.strerror}") from None
    token = text.split("\n", 1)[0].rstrip("\r")
    if not token:
        raise ValueError(f"the InfluxDB token file {path} is empty")
    return token


def token_from_env(environ: Mapping[str, str] | None = None) -> Path | str | None:
    """$PLANTMESH_INFLUX_TOKEN_FILE as a Path, else $PLANTMESH_INFLUX_TOKEN, else None;
    ValueError when both are set (which one was meant cannot be told)."""
    env = os.environ if environ is None else environ
    file, token = env.get(TOKEN_FILE_VAR), env.get(TOKEN_VAR)
    if file and token:
        raise ValueError(f"set {TOKEN_VAR} or {TOKEN_FILE_VAR}, not both")
    return Path(file) if file else token or None


def env_token() -> str:
    """The token the environment gives ("" for none). Raises InfluxQueryError."""
    try:
        found = token_from_env()
        return read_token_file(found) if isinstance(found, Path) else found or ""
    except ValueError as exc:
        raise InfluxQueryError(str(exc)) from None


def auth_headers(token: str) -> dict[str, str]:
    """Credentials go in a header, never in the URL (InfluxDB's `u`/`p` parameters end up in
    access logs and proxies' logs); no token, no header (a server without auth)."""
    return {"Authorization": f"Token {token}"} if token else {}


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


def _post(request: urllib.request.Request, url: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise InfluxQueryError(
            f"InfluxDB answered {exc.code}: {exc.read().decode()[:300]}"
        ) from None
    except urllib.error.URLError as exc:
        raise InfluxQueryError(f"cannot reach InfluxDB at {url}: {exc.reason}") from None


def query(
    url: str, database: str, q: str, timeout_s: float = 10.0, *, token: str | None = None
) -> list[Series]:
    """Run one InfluxQL statement and return its series (tags included when grouped).
    `token`: `user:password` on InfluxDB 1.8 ("" for none; None: the environment's)."""
    body = urllib.parse.urlencode({"db": database, "q": q, "epoch": "ns"}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/query",
        data=body,
        method="POST",
        headers=auth_headers(env_token() if token is None else token),
    )
    payload = json.loads(_post(request, url, timeout_s))
    series: list[Series] = []
    for result in payload.get("results", []):
        if "error" in result:
            raise InfluxQueryError(result["error"])
        for item in result.get("series", []):
            series.append(
                Series(item["name"], item.get("tags", {}), item["columns"], item.get("values", []))
            )
    return series


# Columns every Flux answer carries that say nothing about the data.
_FLUX_NOISE = frozenset({"", "result", "table", "_start", "_stop"})


def flux(
    url: str, q: str, token: str, org: str = "-", timeout_s: float = 10.0
) -> list[dict[str, str]]:
    """Run a Flux query over `/api/v2/query` (InfluxDB 1.8 with Flux, 2.x, 3.x); the rows of
    every table of the annotated-CSV answer, as column -> text."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/v2/query?{urllib.parse.urlencode({'org': org})}",
        data=q.encode(),
        method="POST",
        headers={
            "Content-Type": "application/vnd.flux",
            "Accept": "application/csv",
            **auth_headers(token),
        },
    )
    text = _post(request, url, timeout_s).decode()
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for record in csv.reader(io.StringIO(text)):
        if not record or not any(record):
            header = None  # a blank line ends a table; the next one brings its own header
            continue
        if record[0].startswith("#"):
            continue
        if header is None:
            header = record
            continue
        row = dict(zip(header, record, strict=False))
        if "error" in header and "reference" in header:  # an error reported mid-stream
            raise InfluxQueryError(row["error"] or "Flux query failed")
        rows.append({k: v for k, v in row.items() if k not in _FLUX_NOISE})
    return rows
