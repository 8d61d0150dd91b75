"""`plantmesh agent run|check-config --config FILE` (also `python -m edge_agent ...`);
`check-config --connect` also talks to every PLC of the file (edge_agent/check_connect.py)."""

from __future__ import annotations

import argparse
import sys

from edge_agent.config import AgentConfig, ModbusSourceConfig, OpcUaSourceConfig, load_agent_config
from edge_agent.discover.cli import register_discover
from plantmesh.cli import Subparsers
from plantmesh.lifecycle import run_service


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "agent", help="reads PLCs over OPC UA and Modbus and publishes reading batches to MQTT"
    )
    commands = parser.add_subparsers(dest="agent_command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run", help="run the edge agent until SIGTERM/SIGINT (SIGHUP re-reads the config)"
    )
    run.add_argument("--config", required=True, help="agent YAML file")
    run.set_defaults(func=_run)
    check = commands.add_parser(
        "check-config", help="validate a config file and print what it would read"
    )
    check.add_argument("file", nargs="?", metavar="CONFIG", help="agent YAML file")
    check.add_argument("--config", help="agent YAML file (instead of CONFIG)")
    check.add_argument(
        "--connect",
        action="store_true",
        help="connect to every source, resolve every node, read every register once and print "
        "a table of values and problems (exit 1 on any problem)",
    )
    check.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="with --connect: seconds for each connection and request (default 5)",
    )
    check.set_defaults(func=_check_config)
    probe = commands.add_parser(
        "probe-modbus",
        help="read a register pair and print it in all four byte/word orders (commissioning)",
    )
    probe.add_argument("endpoint", metavar="HOST:PORT", help="Modbus TCP server")
    probe.add_argument("unit", type=int, help="unit (slave) id")
    probe.add_argument("address", type=int, help="wire address of the first register (0-based)")
    probe.add_argument("--table", choices=["holding", "input"], default="holding")
    probe.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    probe.set_defaults(func=_probe_modbus)
    register_discover(commands)


def _run(args: argparse.Namespace) -> int:
    from edge_agent.agent import Agent
    from edge_agent.disk_buffer import BufferUnavailableError
    from edge_agent.log_filters import quiet_expected_library_logs

    config = load_agent_config(args.config)
    # A PLC restart is logged once by its source; what asyncua and pymodbus log about it goes
    # to debug. Other repeats: the RepeatFilter of setup_logging passes each once in a while.
    quiet_expected_library_logs()
    try:
        return run_service(lambda: Agent(config, config_path=args.config), "agent")
    except BufferUnavailableError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 1


def _probe_modbus(args: argparse.Namespace) -> int:
    import sys

    from edge_agent.errors import ModbusReadError
    from edge_agent.probe import probe

    try:
        print(probe(args.endpoint, args.unit, args.address, args.table, args.timeout))
    except (ModbusReadError, ValueError) as exc:
        print(f"probe-modbus: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_config(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.config is None):
        print("check-config: give the config file once, as CONFIG or --config", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("check-config: --timeout must be more than 0", file=sys.stderr)
        return 2
    config = load_agent_config(args.file or args.config)
    print(summary(config))
    if not args.connect:
        return 0
    from edge_agent.check_connect import run_check

    return run_check(config, args.timeout, sys.stderr)


def summary(config: AgentConfig) -> str:
    """What check-config prints: enough to see the file says what the engineer meant."""
    lines = [
        f"gateway {config.gateway_id} (plant {config.plant}) -> {config.mqtt.url}"
        + (f", namespace {config.namespace}" if config.namespace else ""),
        f"publish every {config.publish_interval_s:g}s, health every {config.health_interval_s:g}s",
        _buffer_line(config),
    ]
    if config.metrics.listen:
        lines.append(f"metrics on http://{config.metrics.listen}/metrics")
    for source in config.sources:
        if isinstance(source, OpcUaSourceConfig):
            roots = ", ".join(b.root for b in source.browse) or "-"
            lines.append(
                f"  opcua  {source.name}: {source.endpoint} browse [{roots}] "
                f"+ {len(source.nodes)} nodes, {_opcua_modes(source)}, "
                f"security {_opcua_security(source)}"
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


def _opcua_modes(source: OpcUaSourceConfig) -> str:
    """`subscribe (publishing 100 ms)`, or per mode what uses it when roots or nodes differ:
    `subscribe (publishing 100 ms): 1 root; poll: 2 nodes`."""
    groups: dict[str, list[str]] = {"subscribe": [], "poll": []}
    for kind, levels in (("root", source.browse), ("node", source.nodes)):
        for level in levels:
            groups[level.mode or source.mode].append(kind)
    named = {
        "subscribe": f"subscribe (publishing {source.publishing_interval_ms:g} ms)",
        "poll": "poll",
    }
    used = {mode: kinds for mode, kinds in groups.items() if kinds}
    if len(used) == 1:
        return named[next(iter(used))]
    return "; ".join(f"{named[mode]}: {_count_kinds(kinds)}" for mode, kinds in used.items())


def _count_kinds(kinds: list[str]) -> str:
    parts = []
    for kind in ("root", "node"):
        n = kinds.count(kind)
        if n:
            parts.append(f"{n} {kind}{'s' if n > 1 else ''}")
    return " + ".join(parts)


def _opcua_security(source: OpcUaSourceConfig) -> str:
    security = source.security
    if security.policy == "None":
        return "None"
    return f"{security.policy} {security.mode}"


def _buffer_line(config: AgentConfig) -> str:
    from edge_agent.disk_buffer import buffer_path

    buffer = config.buffer
    where = f"disk {buffer_path(config)}" if buffer.kind == "disk" else "memory"
    age = "" if buffer.max_age_h is None else f", {buffer.max_age_h:g} h"
    return f"buffer: {where} (max {buffer.max_batches} batches, {buffer.max_mib:g} MiB{age})"
