"""Edge agent benchmark beside Telegraf and the raw library clients: updates per second
delivered, CPU share of one core and resident memory, on the same simulated servers.

    eval "$(.venv/bin/plantmesh stack env)"
    .venv/bin/python benchmarks/bench_agent.py [--quick] [--no-telegraf] [--only opcua|modbus]

Rows (--quick: 1,000 OPC UA variables over 2 servers and 10 Modbus devices):
  OPC UA 5,000 variables changing at 1 Hz, and 10,000: bare asyncua servers in processes of
    2,500 variables each (one process lags past about 7,500), each client reading all of them.
  Modbus TCP: 100 devices x 100 holding registers polled at 1 Hz, one connection per device.
Clients, one after the other on the same servers, each in its own process:
  plantmesh agent  `python -m edge_agent run` (subscriptions / polls, disk buffer, JSON to MQTT
                   at QoS 1: one message per machine each second, its topic naming the machine)
  Telegraf         1.37.2 built with go (telegraf_build.py; skipped with a message when Go is
                   missing): inputs.opcua (a read of every node each second), inputs.opcua_listener
                   (subscriptions), inputs.modbus; outputs.mqtt with JSON batches of up to 1,000
                   metrics at QoS 1 to the same Mosquitto with the same user and TLS
                   (--telegraf-messages machine: one message per machine, as the agent)
  raw client       asyncua subscriptions / pymodbus reads that count values and do nothing else
Delivered updates/s for the agent and Telegraf are the values that arrive at an MQTT subscriber;
for raw clients, the values they received. Server CPU and lag (how late the latest slice of
writes started) show whether the servers kept up in the measuring window.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import telegraf_config
from agent_measure import (
    POLL_WARMUP_S,
    SUBSCRIPTION_WARMUP_S,
    LineCounter,
    Marks,
    Measured,
    MqttCounter,
    Server,
    agent_values,
    child,
    measure,
    telegraf_values,
)
from agent_report import AGENT, Result, ratios, table
from agent_workload import REGISTERS, free_port, modbus_source, opcua_shards, opcua_sources
from telegraf_build import TELEGRAF_VERSION, TelegrafBuild

from plantmesh.connections import DEFAULT_MQTT_URL
from plantmesh.stack.errors import StackError
from plantmesh.topics import Topics

REPO = Path(__file__).resolve().parents[1]
CHILDREN = str(Path(__file__).resolve().parent / "agent_children.py")
PYTHON = sys.executable


@dataclass
class Context:
    mqtt_url: str
    directory: Path
    warmup_s: float
    window_s: float
    telegraf: Path | None
    telegraf_per_machine: bool = False
    telegraf_buffers: tuple[str, ...] = ("memory", "disk")
    workers: int = 1
    results: list[Result] = field(default_factory=list)


@contextmanager
def servers(ctx: Context, commands: list[list[str]]) -> Iterator[list[Server]]:
    with ExitStack() as stack:
        started = []
        for i, args in enumerate(commands):
            log = ctx.directory / f"server-{args[0]}-{i}.log"
            process = stack.enter_context(child([PYTHON, CHILDREN, *args], REPO, log))
            started.append(Server(process, f"{args[0]} {i}", log))
        yield started


def run_client(
    ctx: Context,
    row: str,
    client: str,
    args: list[str],
    counter: Callable[[Any], Marks],
    expected: int,
    in_servers: list[Server],
    env: dict[str, str] | None = None,
    subscribes: bool = False,
) -> None:
    """One client against running servers; a failure becomes a row with the reason and the end
    of the client's log, not the end of the benchmark."""
    log = ctx.directory / f"{client.split()[0]}-{uuid.uuid4().hex[:6]}.log"
    print(f"  {row}: {client} ...", flush=True)
    measured: Measured | None = None
    note = ""
    marks: Marks | None = None
    try:
        with child(args, REPO, log, env) as process:
            marks = counter(process)
            least = SUBSCRIPTION_WARMUP_S if subscribes else POLL_WARMUP_S
            measured = measure(
                process, marks, expected, ctx.warmup_s, ctx.window_s, in_servers, least
            )
    except (RuntimeError, OSError, ValueError) as exc:
        note = f"{exc}; last lines of {log.name}: {tail(log)}"
    finally:
        if isinstance(marks, MqttCounter):
            marks.close()
    if measured is not None and measured.updates_per_s < 0.5 * expected:
        note = f"short of the expected rate; last lines of {log.name}: {tail(log)}"
    ctx.results.append(Result(row, client, expected, measured, note))


def tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty)"


def mqtt_counter(ctx: Context, topic: str, values: Callable[[bytes], int]) -> Any:
    return lambda _process: MqttCounter(ctx.mqtt_url, topic, values)


def run_agent(
    ctx: Context,
    row: str,
    sources: list[dict[str, Any]],
    expected: int,
    srv: list[Server],
    subscribes: bool,
) -> None:
    import yaml

    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    config = {
        "gateway_id": "gw-bench",
        "plant": "bench",
        "namespace": namespace,
        "mqtt": {"url": ctx.mqtt_url, "client_id": f"agent-{namespace}"},
        "publish_interval_s": 1.0,
        "max_readings_per_batch": 1000,
        "workers": ctx.workers,
        "buffer": {"kind": "disk", "path": str(ctx.directory / f"{namespace}.sqlite")},
        "sources": sources,
    }
    path = ctx.directory / f"agent-{namespace}.yaml"
    path.write_text(yaml.safe_dump(config))
    topic = Topics(namespace).mqtt_readings_filter
    args = [PYTHON, "-m", "edge_agent", "run", "--config", str(path)]
    counter = mqtt_counter(ctx, topic, agent_values)
    run_client(ctx, row, AGENT, args, counter, expected, srv, subscribes=subscribes)


def run_telegraf(
    ctx: Context,
    row: str,
    client: str,
    inputs: str,
    expected: int,
    srv: list[Server],
    subscribes: bool = False,
) -> None:
    """Telegraf on the same reads, once per buffer kind asked for (memory, disk)."""
    if ctx.telegraf is None:
        return
    for buffer in ctx.telegraf_buffers:
        run_id = uuid.uuid4().hex[:8]
        topic = f"bench-telegraf/{run_id}"
        publish_to = topic + (telegraf_config.MACHINE_TOPIC if ctx.telegraf_per_machine else "")
        name = client if buffer == "memory" else f"{client}, disk buffer"
        try:
            output = telegraf_config.mqtt_output(ctx.mqtt_url, publish_to, f"telegraf-{run_id}")
        except ValueError as exc:
            ctx.results.append(Result(row, name, expected, None, str(exc)))
            return
        disk = ctx.directory / f"telegraf-{run_id}-buffer"
        path = ctx.directory / f"telegraf-{run_id}.toml"
        text = telegraf_config.config(inputs, output, str(disk) if buffer == "disk" else None)
        path.write_text(text)
        args = [str(ctx.telegraf), "--config", str(path), "--strict-env-handling"]
        counter = mqtt_counter(ctx, f"{topic}/#", telegraf_values)
        env = {**os.environ, **output.env}
        run_client(ctx, row, name, args, counter, expected, srv, env, subscribes)


def opcua_row(ctx: Context, variables: int, per_server: int, clients: set[str]) -> None:
    row = f"OPC UA {variables:,} vars @1 Hz"
    shards = opcua_shards(variables, per_server)
    commands = [["serve-opcua", *s.spec().split(":")] for s in shards]
    print(f"{row}: {len(shards)} server process(es) of up to {per_server:,} variables", flush=True)
    with servers(ctx, commands) as srv:
        index = srv[0].namespace_index
        if "agent" in clients:
            sources = opcua_sources(shards)
            run_agent(ctx, row, sources, variables, srv, subscribes=True)
        if "telegraf" in clients:
            inputs = telegraf_config.opcua_listener(shards, index)
            run_telegraf(ctx, row, "Telegraf opcua_listener", inputs, variables, srv, True)
            inputs = telegraf_config.opcua_poll(shards, index)
            run_telegraf(ctx, row, "Telegraf opcua (poll)", inputs, variables, srv)
        if "raw" in clients:
            args = [PYTHON, CHILDREN, "raw-opcua", *(s.spec() for s in shards)]
            raw = "raw asyncua client"
            run_client(ctx, row, raw, args, LineCounter, variables, srv, subscribes=True)


def modbus_row(ctx: Context, devices: int, clients: set[str]) -> None:
    row = f"Modbus {devices} dev x {REGISTERS} regs @1 Hz"
    expected = devices * REGISTERS
    port = free_port()
    print(f"{row}: 1 server process", flush=True)
    with servers(ctx, [["serve-modbus", str(port), str(devices), str(REGISTERS)]]) as srv:
        if "agent" in clients:
            source = modbus_source(ctx.directory, port, devices)
            run_agent(ctx, row, [source], expected, srv, subscribes=False)
        if "telegraf" in clients:
            inputs = telegraf_config.modbus(port, devices, REGISTERS)
            run_telegraf(ctx, row, "Telegraf modbus", inputs, expected, srv)
        if "raw" in clients:
            args = [PYTHON, CHILDREN, "raw-modbus", str(port), str(devices), str(REGISTERS)]
            run_client(ctx, row, "raw pymodbus client", args, LineCounter, expected, srv)


def telegraf_binary(skip: bool) -> tuple[Path | None, str]:
    """Telegraf's binary (built now if missing), or None and why not."""
    if skip:
        return None, "Telegraf skipped (--no-telegraf or --clients without telegraf)"
    build = TelegrafBuild.for_stack()
    if not build.binary.exists():
        if build.go() is None:
            return None, (
                "Telegraf skipped: Go not found (PATH or /usr/local/go/bin/go); install Go"
                " to compare with Telegraf"
            )
        print(f"building Telegraf {TELEGRAF_VERSION} with go (first time, about 1-2 min)...")
    try:
        binary, took = build.ensure()
    except StackError as exc:
        return None, f"Telegraf skipped: the build failed: {exc}"
    how = f"built in {took:.0f} s" if took else "cached"
    return binary, f"Telegraf {TELEGRAF_VERSION}: {binary} ({how})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 variables, 10 devices")
    parser.add_argument(
        "--mqtt-url", default=os.environ.get("PLANTMESH_MQTT_URL", DEFAULT_MQTT_URL)
    )
    parser.add_argument("--window", type=float, help="measuring window in seconds")
    parser.add_argument("--only", choices=["opcua", "modbus"])
    parser.add_argument(
        "--clients",
        default="agent,telegraf,raw",
        help="comma-separated subset of agent, telegraf, raw",
    )
    parser.add_argument("--no-telegraf", action="store_true", help="skip Telegraf")
    parser.add_argument(
        "--telegraf-messages",
        choices=["batch", "machine"],
        default="batch",
        help="Telegraf publishes batches of up to 1,000 metrics (default) or, as the agent"
        " does, one message per machine and flush",
    )
    parser.add_argument(
        "--telegraf-buffers",
        default="memory,disk",
        help="Telegraf's buffers to run, comma-separated: memory (its default, lost on a"
        " restart) and disk (buffer_strategy = disk, durable like the agent's)",
    )
    parser.add_argument(
        "--per-server", type=int, help="OPC UA variables per server process (default 2,500)"
    )
    parser.add_argument(
        "--variables",
        help="comma-separated OPC UA row sizes (default 5000,10000; --quick 1000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="the agent's `workers` (default 1); CPU and memory are its whole process tree",
    )
    parser.add_argument("--keep", action="store_true", help="keep configs and logs")
    args = parser.parse_args()
    clients = {c.strip() for c in args.clients.split(",") if c.strip()}
    if not clients <= {"agent", "telegraf", "raw"}:
        parser.error(f"--clients: unknown {sorted(clients - {'agent', 'telegraf', 'raw'})}")
    telegraf, telegraf_note = telegraf_binary(args.no_telegraf or "telegraf" not in clients)
    print(telegraf_note, flush=True)

    sizes = [1_000] if args.quick else [5_000, 10_000]
    if args.variables:
        sizes = [int(v) for v in args.variables.split(",")]
    devices = 10 if args.quick else 100
    per_server = args.per_server or (500 if args.quick else 2_500)
    window = args.window or (10.0 if args.quick else 30.0)
    warmup = 60.0 if args.quick else 180.0
    directory = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    ctx = Context(args.mqtt_url, directory, warmup, window, telegraf)
    ctx.telegraf_per_machine = args.telegraf_messages == "machine"
    ctx.telegraf_buffers = tuple(b for b in args.telegraf_buffers.split(",") if b)
    if not set(ctx.telegraf_buffers) <= {"memory", "disk"}:
        parser.error(f"--telegraf-buffers: memory and/or disk, not {args.telegraf_buffers}")
    ctx.workers = args.workers
    started = time.monotonic()
    try:
        if args.only in (None, "opcua"):
            for variables in sizes:
                opcua_row(ctx, variables, per_server, clients)
        if args.only in (None, "modbus"):
            modbus_row(ctx, devices, clients)
    finally:
        if args.keep:
            print(f"configs and logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(
        f"\nedge agent benchmark ({'quick' if args.quick else 'full'}, {window:g} s window,"
        f" {os.cpu_count()} cores, {time.monotonic() - started:.0f} s,"
        f" Telegraf messages: {args.telegraf_messages}, agent workers: {args.workers})"
    )
    print(telegraf_note)
    print(table(ctx.results))
    print()
    print(ratios(ctx.results))
    print("targets for the agent: CPU under 35 % of one core, RSS under 100 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
