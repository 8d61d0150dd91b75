"""Times as people type them on a command line: ISO 8601, or a time ago."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

RELATIVE = re.compile(r"^-?(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def when(text: str) -> datetime:
    """A time ago (`10m`, or `-10m`: argparse takes a bare `-10m` for an option, so it needs
    `--since=-10m`), or an ISO 8601 time (UTC when it names no offset)."""
    relative = RELATIVE.match(text)
    if relative:
        ago = float(relative[1]) * UNIT_SECONDS[relative[2]]
        return datetime.now(UTC) - timedelta(seconds=ago)
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO time (2026-01-01T06:00Z) or a time ago (30s, 10m, 2h, 1d), "
            f"got {text!r}"
        ) from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)
