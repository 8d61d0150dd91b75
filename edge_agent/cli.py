"""`plantmesh agent run|check-config --config FILE` (also `python -m edge_agent ...`)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from edge_agent.config import AgentConfig, ModbusSourceConfig, OpcUaSourceConfig, load_agent_config
from plantmesh.cli import Subparsers


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
    if args.log_level != "debug":
        # The agent reports PLC communication errors itself, once per distinct error; these
        # would add a line for every failed poll and a traceback for every lost OPC UA session.
        for noisy in ("pymodbus", "asyncua.client.ua_session"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)

    async def main() -> None:
        await Agent(config).run(handle_signals=True)

    asyncio.run(main())
    return 0


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
