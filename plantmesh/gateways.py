"""`plantmesh gateway add|list|remove`: MQTT identities for gateways on the local stack's TLS
listener. Each gateway gets a user, a password file (mode 600, never printed) and ACL entries
that let it publish only its plant's readings and its own status; the running Mosquitto
rereads its password file and ACL (SIGHUP)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plantmesh.cli import Subparsers
from plantmesh.stack.credentials import Gateway, read_password_file
from plantmesh.stack.errors import StackError
from plantmesh.stack.mosquitto import Mosquitto
from plantmesh.stack.paths import StackConfig


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="issue and revoke gateways' MQTT credentials on the local stack",
        description=(
            "Gateways connect to the stack's TLS MQTT listener ($PLANTMESH_MQTTS_URL) with a "
            "user and password of their own; the ACL lets each publish only under its plant "
            "(readings) and its own status topic."
        ),
    )
    parser.set_defaults(func=lambda _: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser("add", help="create a gateway's credentials and print its config")
    add.add_argument("name", help="the gateway id (its MQTT user name)")
    add.add_argument("--plant", required=True, help="the plant whose topics it may publish")
    add.add_argument("--namespace", default="", help="topic namespace (default: none)")
    add.add_argument(
        "--write-config",
        metavar="FILE",
        type=Path,
        help="also start a new agent config FILE with these lines (sources follow: "
        "`plantmesh agent discover ... --into FILE`)",
    )
    add.add_argument(
        "--password-file",
        type=Path,
        help="take the password from this file's first line (default: a random one)",
    )
    add.set_defaults(func=_add)

    listing = actions.add_parser("list", help="the gateways that have credentials")
    listing.set_defaults(func=_list)

    remove = actions.add_parser("remove", help="revoke a gateway's credentials")
    remove.add_argument("name")
    remove.set_defaults(func=_remove)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def agent_snippet(broker: Mosquitto, gateway: Gateway) -> str:
    """The part of an agent's YAML config that connects it as `gateway`."""
    lines = [f"gateway_id: {gateway.name}", f"plant: {gateway.plant}"]
    if gateway.namespace:
        lines.append(f"namespace: {gateway.namespace}")
    lines += [
        "mqtt:",
        f"  url: {broker.tls_address}",
        f"  username: {gateway.name}",
        f"  password_file: {broker.credentials.password_file(gateway.name)}",
        f"  ca_file: {broker.ca_file}",
    ]
    return "\n".join(lines)


def _apply(broker: Mosquitto) -> str:
    """Make the running broker reread its files; what happened, for the user."""
    pid = broker.reload()
    if pid is None:
        return "Mosquitto is not running: this takes effect at `plantmesh stack up`."
    if not broker.serves_tls():
        return (
            f"Mosquitto (pid {pid}) was started without the TLS listener: restart it "
            "(`plantmesh stack down mosquitto && plantmesh stack up mosquitto`) to serve "
            f"{broker.tls_address}."
        )
    return f"Mosquitto (pid {pid}) reloaded its password file and ACL."


def add_gateway(
    gateway: Gateway, password: str | None = None, config: StackConfig | None = None
) -> Mosquitto:
    """Issue `gateway`'s credentials and rewrite the broker's files (without reloading it)."""
    broker = Mosquitto(config or StackConfig.from_env())
    store = broker.credentials
    with store.lock():
        store.add_gateway(gateway, password)
        store.write_broker_files(broker.passwd_tool)
    return broker


def remove_gateway(name: str, config: StackConfig | None = None) -> Mosquitto:
    broker = Mosquitto(config or StackConfig.from_env())
    store = broker.credentials
    with store.lock():
        store.remove_gateway(name)
        store.write_broker_files(broker.passwd_tool)
    return broker


def _add(args: argparse.Namespace) -> int:
    out: Path | None = args.write_config
    if out is not None and out.exists():
        print(f"plantmesh gateway add: {out} exists; not overwritten", file=sys.stderr)
        return 1
    try:
        password = None if args.password_file is None else read_password_file(args.password_file)
        gateway = Gateway(args.name, args.plant, args.namespace)
        broker = add_gateway(gateway, password)
    except StackError as exc:
        print(f"plantmesh gateway add failed: {exc}", file=sys.stderr)
        return 1
    path = broker.credentials.password_file(gateway.name)
    print(f"Gateway {gateway.name} may publish under plant {gateway.plant}.")
    print(f"Its password is in {path} (mode 600); it is not shown here.")
    print(_apply(broker))
    print(
        "\nIn the agent's config (copy the password file and the CA file to the gateway and "
        "adjust the paths):\n"
    )
    snippet = agent_snippet(broker, gateway)
    print(snippet)
    if out is not None:
        try:
            out.write_text(f"# plantmesh gateway add {gateway.name}\n{snippet}\n")
        except OSError as exc:
            print(f"plantmesh gateway add: cannot write {out}: {exc}", file=sys.stderr)
            return 1
        print(f"\nWrote {out}; add its sources with `plantmesh agent discover ... --into {out}`.")
    return 0


def _list(_: argparse.Namespace) -> int:
    broker = Mosquitto(StackConfig.from_env())
    try:
        gateways = broker.credentials.gateways()
    except StackError as exc:
        print(f"plantmesh gateway list failed: {exc}", file=sys.stderr)
        return 1
    print(f"{'GATEWAY':<24} {'PLANT':<16} {'NAMESPACE':<16} PASSWORD FILE")
    for gw in gateways:
        path = broker.credentials.password_file(gw.name)
        print(f"{gw.name:<24} {gw.plant:<16} {gw.namespace or '-':<16} {path}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        broker = remove_gateway(args.name)
    except StackError as exc:
        print(f"plantmesh gateway remove failed: {exc}", file=sys.stderr)
        return 1
    print(f"Gateway {args.name}: credentials and ACL entries removed.")
    print(_apply(broker))
    return 0
