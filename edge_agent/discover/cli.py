"""`plantmesh agent discover opcua|modbus`: the arguments and what runs them. Heavy imports
(asyncua, pymodbus) wait until a command runs, so `plantmesh --help` stays quick."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantmesh.cli import Subparsers

if TYPE_CHECKING:
    from edge_agent.config import OpcUaSourceConfig

PASSWORD_ENV = "PLANTMESH_OPCUA_PASSWORD"
CONNECTION_OPTIONS = (
    "security_policy",
    "security_mode",
    "certificate",
    "private_key",
    "server_certificate",
    "username",
    "password_file",
)


def register_discover(commands: Subparsers) -> None:
    discover = commands.add_parser(
        "discover",
        help="show what an OPC UA server or Modbus device offers; write an agent config "
        "fragment for what you --pick (commissioning)",
    )
    kinds = discover.add_subparsers(dest="discover_kind", metavar="PROTOCOL", required=True)
    opc = kinds.add_parser("opcua", help="the address space as a tree, with values and units")
    opc.add_argument("endpoint", nargs="?", help="opc.tcp://host:port[/path] (or --config)")
    opc.add_argument("--config", help="agent YAML: connect as one of its opcua sources does")
    opc.add_argument("--source", help="which opcua source of --config (when it has several)")
    opc.add_argument("--security-policy", choices=["None", "Basic256Sha256"])
    opc.add_argument("--security-mode", choices=["Sign", "SignAndEncrypt"])
    opc.add_argument("--certificate", help="client certificate (.der or .pem)")
    opc.add_argument("--private-key", help="its private key")
    opc.add_argument("--server-certificate", help="pin the server's certificate")
    opc.add_argument("--username")
    opc.add_argument(
        "--password-file", help=f"first line is the password (else ${PASSWORD_ENV}, if set)"
    )
    opc.add_argument(
        "--root", default="i=85", help="node id or browse path under Objects (default Objects)"
    )
    opc.add_argument("--depth", type=_positive, default=6, help="levels below the root (6)")
    opc.add_argument("--max-nodes", type=_positive, default=5000, help="stop after N nodes (5000)")
    opc.add_argument(
        "--standard", action="store_true", help="also walk standard nodes (the Server object...)"
    )
    opc.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    _fragment_arguments(opc, "NODEID", "a variable, or an object for its variables")
    opc.set_defaults(func=run_opcua)

    modbus = kinds.add_parser("modbus", help="a register range in every type and byte/word order")
    modbus.add_argument("endpoint", metavar="HOST:PORT", help="Modbus TCP server (port 502)")
    modbus.add_argument("--unit", type=int, default=1, help="unit (slave) id (1)")
    modbus.add_argument("--start", type=int, default=0, help="first wire address, 0-based (0)")
    modbus.add_argument("--count", type=_positive, default=10, help="how many (10)")
    modbus.add_argument(
        "--table", choices=["holding", "input", "coil", "discrete"], default="holding"
    )
    modbus.add_argument("--types", help="only these columns, e.g. int32,float32")
    modbus.add_argument("--timeout", type=float, default=2.0, help="seconds (2)")
    _fragment_arguments(modbus, "ADDR:TYPE[:ORDER][:NAME[:UNIT]]", "e.g. 2:float32:CDAB:level:m")
    modbus.set_defaults(func=run_modbus)


def _fragment_arguments(parser: argparse.ArgumentParser, metavar: str, what: str) -> None:
    parser.add_argument("--pick", action="append", default=[], metavar=metavar, help=what)
    parser.add_argument("--output", metavar="FILE", help="where the fragment goes (- : stdout)")
    parser.add_argument(
        "--into",
        metavar="CONFIG",
        type=Path,
        help="add the picked source to this agent config's `sources:` (made when missing)",
    )
    parser.add_argument("--name", help="source name in the fragment")
    for part in ("area", "line", "machine"):
        parser.add_argument(f"--{part}", help=f"{part} of the picked signals (default: derived)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _fail(message: str, code: int = 1) -> int:
    print(f"discover: {message}", file=sys.stderr)
    return code


def _check_pick_output(args: argparse.Namespace) -> str | None:
    if args.output and args.into:
        return "--output and --into exclude each other"
    if args.pick and not (args.output or args.into):
        return "--pick needs --output FILE (or --output - for stdout) or --into CONFIG"
    if (args.output or args.into) and not args.pick:
        return f"{'--output' if args.output else '--into'} needs at least one --pick"
    return None


def run_opcua(args: argparse.Namespace) -> int:
    from asyncua.ua.uaerrors import UaError
    from pydantic import ValidationError

    from edge_agent.discover.fragment import AssetNames, FragmentError, opcua_fragment
    from edge_agent.discover.opcua_text import format_tree, truncation_message
    from edge_agent.discover.opcua_tree import discover
    from edge_agent.errors import SourceError
    from plantmesh.contracts.decoding import describe_validation_error

    if problem := _check_pick_output(args):
        return _fail(problem, 2)
    try:
        source = opcua_source(args)
    except ValidationError as exc:
        return _fail("; ".join(describe_validation_error(exc)), 2)
    except ValueError as exc:
        return _fail(str(exc), 2)
    progress = lambda line: print(f"discover: {line}", file=sys.stderr)  # noqa: E731
    # asyncua warns about session timeouts and the like: noise for a one-shot look.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    try:
        tree, picks = asyncio.run(discover(source, args, progress))
    except (SourceError, UaError, OSError, TimeoutError) as exc:
        return _fail(f"{source.endpoint}: {_describe(exc)}")
    if args.output != "-":
        print(format_tree(tree))
    if tree.truncated:
        print(truncation_message(tree), file=sys.stderr)
    if args.pick:
        names = AssetNames(args.area, args.line, args.machine)
        try:
            text = opcua_fragment(source, args.name or source.name, tree, picks, names)
        except FragmentError as exc:
            return _fail(str(exc))
        return _deliver(text, args)
    return 0


def opcua_source(args: argparse.Namespace) -> OpcUaSourceConfig:
    """The source to connect as: one of --config's, or one built from the options."""
    from edge_agent.config import OpcUaSourceConfig, load_agent_config

    if args.config:
        if args.endpoint or any(getattr(args, o) for o in CONNECTION_OPTIONS):
            raise ValueError("give either --config (and --source) or the connection options")
        sources = [
            s for s in load_agent_config(args.config).sources if isinstance(s, OpcUaSourceConfig)
        ]
        chosen = [s for s in sources if args.source in (None, s.name)]
        if len(chosen) != 1:
            names = ", ".join(s.name for s in sources) or "none"
            raise ValueError(f"--source: pick one of the opcua sources of the file ({names})")
        return chosen[0]
    if not args.endpoint:
        raise ValueError("give an endpoint (opc.tcp://host:port) or --config")
    security = {
        key: str(Path(value).resolve()) if key not in ("policy", "mode") else value
        for key, attr in (
            ("policy", "security_policy"),
            ("mode", "security_mode"),
            ("certificate", "certificate"),
            ("private_key", "private_key"),
            ("server_certificate", "server_certificate"),
        )
        if (value := getattr(args, attr)) is not None
    }
    data: dict[str, Any] = {
        "type": "opcua",
        "name": "opcua",
        "endpoint": args.endpoint,
        "security": security,
        "request_timeout_s": args.timeout,
        # The model asks for something to read; discovery reads what it browses instead.
        "browse": [{"root": "discover"}],
    }
    if args.username:
        data["username"] = args.username
        password = _password(args.password_file)
        if password is not None:
            data["password"] = password
    elif args.password_file:
        raise ValueError("--password-file needs --username")
    return OpcUaSourceConfig.model_validate(data)


def _password(path: str | None) -> str | None:
    if path is None:
        return os.environ.get(PASSWORD_ENV)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"--password-file {path}: {exc.strerror or exc}") from None
    return lines[0] if lines else ""


def run_modbus(args: argparse.Namespace) -> int:
    from edge_agent.discover.fragment import AssetNames, FragmentError, modbus_fragment
    from edge_agent.discover.modbus_table import (
        format_range,
        parse_pick,
        parse_types,
        picked_value,
    )
    from edge_agent.errors import ModbusReadError
    from edge_agent.probe import parse_endpoint, read_block
    from plantmesh.modbus_profile import Table

    if problem := _check_pick_output(args):
        return _fail(problem, 2)
    table = Table(args.table)
    try:
        host, port = parse_endpoint(args.endpoint)
        if not 0 <= args.unit <= 255:
            raise ValueError(f"--unit {args.unit}: expected 0..255")
        if args.start < 0 or args.start + args.count > 65536:
            raise ValueError("--start and --count must stay within wire addresses 0..65535")
        types = parse_types(args.types) if args.types else None
        picks = [parse_pick(text, table) for text in args.pick]
    except ValueError as exc:
        return _fail(str(exc), 2)
    # pymodbus logs each failed connect itself; the one line below says it all.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        values = asyncio.run(
            read_block(host, port, args.unit, args.start, args.count, table.value, args.timeout)
        )
    except ModbusReadError as exc:
        where = f"{host}:{port}"
        return _fail(str(exc) if where in str(exc) else f"{where}: {exc}")
    if args.output != "-":
        print(format_range(values, args.start, table, args.unit, types))
    if not picks:
        return 0
    try:
        for pick in picks:
            value = picked_value(pick, values, args.start)
            order = f"{pick.byte_order.value} bytes, {pick.word_order.value} words"
            print(
                f"discover: picked {pick.signal} = {value:g} "
                f"({table.value} {pick.address} {pick.type.value}, {order})",
                file=sys.stderr,
            )
        names = AssetNames(args.area, args.line, args.machine)
        text = modbus_fragment(host, port, args.name or "modbus", args.unit, picks, names)
    except (ValueError, FragmentError) as exc:
        return _fail(str(exc))
    return _deliver(text, args)


def _deliver(text: str, args: argparse.Namespace) -> int:
    if args.into is None:
        return _write(text, args.output)
    from edge_agent.discover.fragment import FragmentError
    from edge_agent.discover.into import add_source, entry_of

    try:
        add_source(args.into, entry_of(text))
    except FragmentError as exc:
        return _fail(str(exc))
    print(f"discover: added the source to {args.into}", file=sys.stderr)
    return 0


def _write(text: str, output: str) -> int:
    from edge_agent.discover.fragment import write_fragment

    try:
        write_fragment(text, output)
    except OSError as exc:
        return _fail(f"--output {output}: {exc.strerror or exc}")
    if output != "-":
        print(f"discover: wrote {output}", file=sys.stderr)
    return 0


def _describe(exc: BaseException) -> str:
    from plantmesh.resilience import describe

    return describe(exc)
