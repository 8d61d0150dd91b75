"""The OPC UA source's option resolution, deadband arithmetic and subscription parameters."""

from __future__ import annotations

from typing import Any

from asyncua import ua

from edge_agent.config import OpcUaSourceConfig, split_namespace_uri
from edge_agent.sources.opcua import subscription_parameters
from edge_agent.sources.opcua_options import (
    absolute_deadband,
    data_change_filter,
    effective_options,
    monitored_item_request,
)


def source(**extra: Any) -> OpcUaSourceConfig:
    return OpcUaSourceConfig.model_validate(
        {"type": "opcua", "name": "o", "endpoint": "opc.tcp://h:1", "browse": [{"root": "a"}]}
        | extra
    )


def test_most_specific_level_wins_key_by_key() -> None:
    config = source(
        sampling_interval_ms=250,
        queue_size=10,
        deadband={"type": "absolute", "value": 0.5},
        browse=[{"root": "a", "queue_size": 5, "mode": "poll"}],
        nodes=[
            {
                "node_id": "ns=2;i=7",
                "area": "a",
                "line": "l",
                "machine": "m",
                "signal": "s",
                "queue_size": 1,
                "deadband": {"type": "percent", "value": 2},
            }
        ],
    )
    group = effective_options(config, config.browse[0])
    assert (group.mode, group.queue_size, group.sampling_interval_ms) == ("poll", 5, 250.0)
    assert (group.deadband_type, group.deadband_value) == ("absolute", 0.5)
    node = effective_options(config, config.browse[0], config.nodes[0])
    assert (node.mode, node.queue_size) == ("poll", 1)
    assert (node.deadband_type, node.deadband_value) == ("percent", 2.0)
    plain = effective_options(source())
    assert (plain.mode, plain.deadband_type, plain.poll_interval_s) == ("subscribe", None, 1.0)


def test_percent_deadband_is_a_share_of_the_eu_range() -> None:
    config = source(deadband={"type": "percent", "value": 1.5})
    options = effective_options(config)
    assert options.needs_range
    assert absolute_deadband(options, ua.Range(Low=-50.0, High=150.0)) == 3.0
    assert absolute_deadband(options, None) is None  # no EURange: the node is Bad
    absolute = effective_options(source(deadband={"type": "absolute", "value": 0.2}))
    assert absolute_deadband(absolute, None) == 0.2
    assert absolute_deadband(effective_options(source()), None) == 0.0


def test_monitored_item_request_carries_the_options() -> None:
    options = effective_options(source(sampling_interval_ms=100, queue_size=7))
    request = monitored_item_request(ua.NodeId(5, 2), 42, options, 0.25)
    params = request.RequestedParameters
    assert (params.ClientHandle, params.SamplingInterval, params.QueueSize) == (42, 100.0, 7)
    assert params.Filter.DeadbandType == ua.DeadbandType.Absolute
    assert params.Filter.DeadbandValue == 0.25
    assert params.Filter.Trigger == ua.DataChangeTrigger.StatusValue
    assert data_change_filter(0.0) is None  # no deadband: no filter at all


def test_keepalives_come_three_times_per_timeout() -> None:
    params = subscription_parameters(source(publishing_interval_ms=100, keepalive_timeout_s=6))
    assert params.RequestedMaxKeepAliveCount == 20  # a keep-alive every 2 s
    assert params.RequestedLifetimeCount == 60
    slow = subscription_parameters(source(publishing_interval_ms=5000, keepalive_timeout_s=1))
    assert slow.RequestedMaxKeepAliveCount == 1


def test_namespace_uri_node_ids_split() -> None:
    assert split_namespace_uri("nsu=urn:plantmesh:sim;s=a/b;c") == ("urn:plantmesh:sim", "s=a/b;c")
    assert split_namespace_uri("ns=2;s=x") is None
