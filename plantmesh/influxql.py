"""A minimal InfluxQL client over HTTP (standard library only), for the command line and the demo,
which must not pull the cloud-side client into an edge install."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class InfluxQueryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


def query(url: str, database: str, q: str, timeout_s: float = 10.0) -> list[Series]:
    """Run one InfluxQL statement and return its series (tags included when grouped)."""
    body = urllib.parse.urlencode({"db": database, "q": q, "epoch": "ns"}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/query", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:
        raise InfluxQueryError(
            f"InfluxDB answered {exc.code}: {exc.read().decode()[:300]}"
        ) from None
    except urllib.error.URLError as exc:
        raise InfluxQueryError(f"cannot reach InfluxDB at {url}: {exc.reason}") from None
    series: list[Series] = []
    for result in payload.get("results", []):
        if "error" in result:
            raise InfluxQueryError(result["error"])
        for item in result.get("series", []):
            series.append(
                Series(item["name"], item.get("tags", {}), item["columns"], item.get("values", []))
            )
    return series
