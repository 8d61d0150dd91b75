"""Per-variable read options: the source's defaults, overridden by a browse root (a group) or a
node entry, and the monitored-item filters they turn into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds

from edge_agent.config import Deadband, OpcUaSourceConfig, ReadOptions


@dataclass(frozen=True)
class ItemOptions:
    mode: Literal["subscribe", "poll"]
    sampling_interval_ms: float
    queue_size: int
    deadband_type: Literal["absolute", "percent"] | None
    deadband_value: float
    poll_interval_s: float

    @property
    def needs_range(self) -> bool:
        return self.mode == "subscribe" and self.deadband_type == "percent"


def effective_options(source: OpcUaSourceConfig, *levels: ReadOptions) -> ItemOptions:
    """Options for one variable: the most specific level that sets a key wins."""

    def pick(key: str, default: object) -> object:
        for level in reversed(levels):
            value = getattr(level, key)
            if value is not None:
                return value
        return default

    deadband = pick("deadband", source.deadband)
    assert deadband is None or isinstance(deadband, Deadband)
    return ItemOptions(
        mode=pick("mode", source.mode),  # type: ignore[arg-type]
        sampling_interval_ms=float(pick("sampling_interval_ms", source.sampling_interval_ms)),  # type: ignore[arg-type]
        queue_size=int(pick("queue_size", source.queue_size)),  # type: ignore[call-overload]
        deadband_type=deadband.type if deadband else None,
        deadband_value=deadband.value if deadband else 0.0,
        poll_interval_s=float(pick("poll_interval_s", source.poll_interval_s)),  # type: ignore[arg-type]
    )


def absolute_deadband(options: ItemOptions, eu_range: ua.Range | None) -> float | None:
    """The deadband to request in engineering units. A percent deadband is a share of the
    variable's EURange (OPC UA Part 8); it is sent as the equivalent absolute deadband because
    several servers (asyncua's among them) accept Percent and then ignore it. None when the
    deadband cannot be computed (percent without EURange)."""
    if options.deadband_type is None:
        return 0.0
    if options.deadband_type == "absolute":
        return options.deadband_value
    if eu_range is None or eu_range.High is None or eu_range.Low is None:
        return None
    return abs(float(eu_range.High) - float(eu_range.Low)) * options.deadband_value / 100.0


def data_change_filter(deadband: float) -> ua.DataChangeFilter | None:
    if deadband <= 0:
        return None
    flt = ua.DataChangeFilter()
    flt.Trigger = ua.DataChangeTrigger.StatusValue
    flt.DeadbandType = ua.DeadbandType.Absolute
    flt.DeadbandValue = deadband
    return flt


def monitored_item_request(
    node_id: ua.NodeId, handle: int, options: ItemOptions, deadband: float
) -> ua.MonitoredItemCreateRequest:
    params = ua.MonitoringParameters()
    params.ClientHandle = handle
    params.SamplingInterval = options.sampling_interval_ms
    params.QueueSize = options.queue_size
    params.DiscardOldest = True
    params.Filter = data_change_filter(deadband)
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=node_id, AttributeId=AttributeIds.Value)
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request
