"""`plantmesh agent run|check-config --config FILE` (also `python -m edge_agent ...`)."""

from __future__ import annotations

import argparse

from edge_agent.config import AgentConfig, ModbusSourceConfig, OpcUaSourceConfig, load_agent_config
from plantmesh.cli import Subparsers
from plantmesh.lifecycle import run_service


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "agent", help="reads PLCs over OPC UA and Modbus and publishes reading batches to MQTT"
    )
    commands = parser.add_subparsers(dest="agent_command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="run the edge agent until SIGTERM/SIGINT")
    run.add_argument("--config", required=True, help="agent YAML file")
    run.set_defaults(func=_run)
    check = commands.add_parser(
        "check-config", help="validate a config file and print what it would read"
    )
    check.add_argument("--config", required=True, help="agent YAML file")
    check.set_defaults(func=_check_config)


def _run(args: argparse.Namespace) -> int:
    from edge_agent.agent import Agent

    config = load_agent_config(args.config)
    # pymodbus and asyncua repeat themselves on every failed poll or lost session; the
    # RepeatFilter of plantmesh.logs.setup_logging already cuts that to one line per message.
    return run_service(lambda: Agent(config), "agent")


def _check_config(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    print(summary(config))
    return 0


def summary(config: AgentConfig) -> str:
    """What check-config prints: enough to see the file says what the engineer meant."""
    lines = [
        f"gateway {config.gateway_id} (plant {config.plant}) -> {config.mqtt.url}"
        + (f", namespace {config.namespace}" if config.namespace else ""),
        f"publish every {config.publish_interval_s:g}s, health every {config.health_interval_s:g}s",
    ]
    for source in config.sources:
        if isinstance(source, OpcUaSourceConfig):
            roots = ", ".join(b.root for b in source.browse) or "-"
            lines.append(
                f"  opcua  {source.name}: {source.endpoint} browse [{roots}] "
                f"+ {len(source.nodes)} nodes, publishing {source.publishing_interval_ms:g} ms"
            )
        elif isinstance(source, ModbusSourceConfig):
            lines.append(f"  modbus {source.name}: {source.host}:{source.port}")
            for device in source.devices:
                profile = device.device_profile
                mode = "on change" if device.on_change else "every poll"
                lines.append(
                    f"    unit {device.unit_id} {device.area}/{device.line}/{device.machine}: "
                    f"{profile.name}, {len(profile.registers)} registers, "
                    f"every {device.poll_interval_s:g}s, {mode}"
                )
    return "\n".join(lines)
