"""Checking one raw Kafka message against the reading contract, the time bounds and the
registry, reading by reading, so one bad reading never hides the good ones.

Three tiers, named by what they accept; each is tried only when the one before cannot decide,
and each gives what the contract itself would (hypothesis holds them to it):

- clean (ingest.checks.clean): a clean batch in the form gateways send, read as plain JSON;
- conforming (ingest.checks.conforming): any batch the contract accepts as a whole, validated
  in Rust, then each reading against the time bounds and the registry;
- partial (ingest.checks.partial): a batch with readings the contract refuses, validated reading
  by reading with the contract's own error messages.

`Checked.tier` says which one decided.
"""

from __future__ import annotations

from datetime import datetime

from ingest.checks.clean import check_clean
from ingest.checks.conforming import check_conforming
from ingest.checks.identity import Origin
from ingest.checks.outcome import BadReading, Checked, Limits, Tier
from ingest.checks.partial import check_partial
from ingest.checks.series import DEFAULT_MAX_SERIES_PER_PLANT, SeriesPlans
from ingest.line_protocol import timestamp_ns
from ingest.normalize.registry import AssetRegistry
from plantmesh.dead_letters import Rejection
from plantmesh.topics import DlqReason

__all__ = ["BadReading", "Checked", "Checker", "Limits", "Tier"]


class Checker:
    """Checks raw messages against the contract, the time bounds and the registry. `clean`: try
    the clean tier first (off only to compare the tiers in tests)."""

    def __init__(
        self,
        limits: Limits,
        registry: AssetRegistry | None = None,
        *,
        clean: bool = True,
        max_series_per_plant: int = DEFAULT_MAX_SERIES_PER_PLANT,
    ) -> None:
        self.limits = limits
        self.registry = registry
        self.clean = clean
        self.plans = SeriesPlans(registry, max_series_per_plant)

    def check(
        self,
        value: bytes | None,
        now: datetime,
        now_ns: int | None = None,
        origin: Origin | None = None,
    ) -> Checked | Rejection:
        """`now_ns`: `now` in epoch nanoseconds, when the caller has it (saves the sum).
        `origin`: where the bridge says the message came in (ingest.checks.identity)."""
        if not value:
            return Rejection(DlqReason.EMPTY_PAYLOAD, "message has no value")
        limits = self.limits
        if len(value) > limits.max_message_bytes:
            return Rejection(
                DlqReason.OVERSIZED,
                f"message of {len(value)} bytes exceeds "
                f"writer.validation.max_message_bytes={limits.max_message_bytes}",
            )
        if self.clean:
            lo_ns, hi_ns = limits.window_ns(timestamp_ns(now) if now_ns is None else now_ns)
            checked = check_clean(value, lo_ns, hi_ns, self.plans, origin)
            if checked is not None:
                return checked
        found = check_conforming(value, now, limits, self.plans)
        if found is None:
            found = check_partial(value, now, limits, self.plans)
        if origin is None or isinstance(found, Rejection):
            return found
        return (
            origin.gateway_rejection(found.gateway_id)
            or origin.plant_rejection(
                reading["asset"]["plant"] for reading in found.data.get("readings", ())
            )
            or found
        )
