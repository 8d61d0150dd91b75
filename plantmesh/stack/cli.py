"""`plantmesh stack up|down|status|logs|env`: Mosquitto, Kafka, InfluxDB and PostgreSQL on
loopback."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from plantmesh.cli import Subparsers
from plantmesh.stack import manager
from plantmesh.stack.errors import StackError
from plantmesh.stack.paths import INSECURE_VAR, StackConfig
from plantmesh.stack.process import log_size, tail

# No argparse `choices` with nargs="*": Python 3.11 rejects the empty default against them.
SERVERS_HELP = f"{', '.join(manager.NAMES)} (or mqtt, influx); default: all"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="provision and run Mosquitto, Kafka, InfluxDB and PostgreSQL locally",
        description=(
            "Run the real servers on 127.0.0.1 without Docker. Downloads and builds are cached in "
            "$PLANTMESH_CACHE (default ~/.cache/plantmesh), runtime files live in $PLANTMESH_STATE "
            "(default <cache>/state). Ports: PLANTMESH_STACK_MQTT_PORT (11883), "
            "PLANTMESH_STACK_MQTTS_PORT (TLS listener; default: the MQTT port + 1), "
            "PLANTMESH_STACK_KAFKA_PORT (19092, controller +1), PLANTMESH_STACK_INFLUX_PORT (18086), "
            "PLANTMESH_STACK_POSTGRES_PORT (15432)."
        ),
    )
    parser.set_defaults(func=lambda _: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    up = actions.add_parser("up", help="provision what is missing and start the servers")
    up.add_argument("servers", nargs="*", metavar="SERVER", help=SERVERS_HELP)
    up.add_argument(
        "--insecure",
        action="store_true",
        help=(
            "debugging only: servers without TLS, passwords or ACLs (remembered until the next "
            "`up` without it; restart running servers with `down` first to switch)"
        ),
    )
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop the servers `up` started")
    down.add_argument("servers", nargs="*", metavar="SERVER", help=SERVERS_HELP)
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="each server's port, pid, version and health")
    status.add_argument("servers", nargs="*", metavar="SERVER", help=SERVERS_HELP)
    status.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing; exit 0 only if all are healthy"
    )
    status.set_defaults(func=_status)

    logs = actions.add_parser("logs", help="the end of a server's log (all servers by default)")
    logs.add_argument("server", nargs="?", metavar="SERVER", help=SERVERS_HELP)
    logs.add_argument("-n", "--lines", type=int, default=40, help="how many lines (default 40)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.set_defaults(func=_logs)

    env = actions.add_parser(
        "env", help='shell exports for the servers: eval "$(plantmesh stack env)"'
    )
    env.set_defaults(func=_env)

    from plantmesh.gateways import register as register_gateway  # its credentials: the stack's

    register_gateway(subparsers)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _only(names: list[str]) -> list[str] | None:
    return names or None


def _up(args: argparse.Namespace) -> int:
    try:
        insecure = args.insecure or os.environ.get(INSECURE_VAR, "") not in ("", "0")
        config = StackConfig.from_env().with_insecure(insecure)
        if insecure:
            print("plantmesh stack up: --insecure: no TLS, passwords or ACLs; for debugging only")
        manager.up(config, only=_only(args.servers))
    except StackError as exc:
        print(f"plantmesh stack up failed:\n{exc}", file=sys.stderr)
        return 1
    return 0


def _down(args: argparse.Namespace) -> int:
    if not args.servers:  # the demo's console uses the stack's database: it goes first
        from plantmesh.demo.console import stop_console

        if (pid := stop_console(manager.state_dir())) is not None:
            print(f"demo console: stopped (pid {pid})")
    try:
        outcomes = manager.down(only=_only(args.servers))
    except StackError as exc:
        print(f"plantmesh stack down failed:\n{exc}", file=sys.stderr)
        return 1
    return 1 if any(o.result == "refused" for o in outcomes) else 0


def _status(args: argparse.Namespace) -> int:
    try:
        statuses = manager.status(only=_only(args.servers))
    except StackError as exc:
        print(f"plantmesh stack status failed: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{'SERVER':<10} {'ADDRESS':<48} {'PID':>7}  {'VERSION':<8} STATE")
        for s in statuses:
            pid = str(s.pid) if s.pid else "-"
            print(f"{s.name:<10} {s.address:<48} {pid:>7}  {s.version or '?':<8} {s.state}")
    return 0 if all(s.healthy for s in statuses) else 1


def _env(_: argparse.Namespace) -> int:
    try:
        variables = {**manager.env(), **manager.extra_env()}
    except StackError as exc:
        print(f"plantmesh stack env failed: {exc}", file=sys.stderr)
        return 1
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    try:
        names = [manager.resolve_name(args.server)] if args.server else list(manager.NAMES)
        paths = {name: manager.log_file(name) for name in names}
    except StackError as exc:
        print(f"plantmesh stack logs failed: {exc}", file=sys.stderr)
        return 1
    several = len(paths) > 1
    for name, path in paths.items():
        if several:
            print(f"==> {name}: {path} <==")
        text = tail(path, args.lines)
        if text:
            print(text)
        elif not path.exists():
            print(f"(no log yet: {path})")
    if args.follow:
        _follow(paths, several)
    return 0


def _follow(paths: dict[str, Path], prefix: bool) -> None:
    """Print lines as they are appended, until Ctrl-C; starts over when a log is rotated."""
    offsets = {name: log_size(path) for name, path in paths.items()}
    try:
        while True:
            for name, path in paths.items():
                size = log_size(path)
                if size < offsets[name]:
                    offsets[name] = 0
                if size > offsets[name]:
                    with path.open("rb") as f:
                        f.seek(offsets[name])
                        chunk = f.read()
                    offsets[name] += len(chunk)
                    for line in chunk.decode(errors="replace").splitlines():
                        print(f"{name}: {line}" if prefix else line, flush=True)
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
