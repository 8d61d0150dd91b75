"""Where the edge agent's CPU goes: the agent in this process under cProfile, reading the same
simulated servers as bench_agent.py and publishing to the stack's Mosquitto.

    eval "$(.venv/bin/plantmesh stack env)"
    .venv/bin/python benchmarks/profile_agent.py modbus [--devices 100] [--window 20]
    .venv/bin/python benchmarks/profile_agent.py opcua [--variables 5000] [--window 20]

The profile covers only the window after the warm-up (connections made, subscriptions'
initial values delivered), and prints the functions with the most time of their own, then the
agent's own functions by cumulative time. `--out FILE` keeps the raw profile (pstats).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from agent_measure import Server, child, cpu_seconds
from agent_workload import REGISTERS, free_port, modbus_source, opcua_shards, opcua_sources

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, resolve_profiles
from plantmesh.connections import DEFAULT_MQTT_URL

REPO = Path(__file__).resolve().parents[1]
CHILDREN = str(Path(__file__).resolve().parent / "agent_children.py")
OURS = ("edge_agent", "plantmesh")


async def run_agent(
    config: AgentConfig, warmup_s: float, window_s: float, profiling: bool = True
) -> cProfile.Profile:
    agent = Agent(config)
    task = asyncio.create_task(agent.run())
    await agent.started.wait()
    # CPU time, not wall time: a COMMIT waiting for the disk is not CPU the agent spends.
    profile = cProfile.Profile(time.process_time)
    print(f"warming up {warmup_s:.0f} s ...", flush=True)
    await asyncio.sleep(warmup_s)
    stats = agent.publisher.stats
    readings0, acked0 = stats.readings_in, stats.readings_acked
    cpu0, wall0 = cpu_seconds(os.getpid()), time.monotonic()
    if profiling:
        profile.enable()
    await asyncio.sleep(window_s)
    profile.disable()
    cpu = cpu_seconds(os.getpid()) - cpu0
    wall = time.monotonic() - wall0
    readings = stats.readings_in - readings0
    acked = stats.readings_acked - acked0
    agent.stop()
    await task
    print(
        f"window {wall:.1f} s: {readings / wall:,.0f} readings/s in, {acked / wall:,.0f} "
        f"acknowledged by the broker, CPU {100 * cpu / wall:.1f} % "
        f"of a core{' (under the profiler)' if profiling else ''}, "
        f"{1e6 * cpu / max(readings, 1):.1f} us per reading"
    )
    return profile


def report(profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    out.write("\n--- our functions by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats("|".join(OURS), top)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("protocol", choices=["modbus", "opcua"])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--variables", type=int, default=5_000)
    parser.add_argument("--per-server", type=int, default=2_500)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--no-profile", action="store_true", help="measure CPU only, without the profiler"
    )
    parser.add_argument(
        "--buffer", choices=["disk", "memory"], default="disk", help="the agent's buffer kind"
    )
    parser.add_argument(
        "--mqtt-url", default=os.environ.get("PLANTMESH_MQTT_URL", DEFAULT_MQTT_URL)
    )
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="profile-agent-"))
    with ExitStack() as stack:
        if args.protocol == "modbus":
            port = free_port()
            commands = [["serve-modbus", str(port), str(args.devices), str(REGISTERS)]]
            sources = [modbus_source(directory, port, args.devices)]
            warmup = 5.0 if args.warmup is None else args.warmup
        else:
            shards = opcua_shards(args.variables, args.per_server)
            commands = [["serve-opcua", *s.spec().split(":")] for s in shards]
            sources = opcua_sources(shards)
            warmup = 40.0 if args.warmup is None else args.warmup
        for i, command in enumerate(commands):
            log = directory / f"server-{i}.log"
            Server(
                stack.enter_context(child([sys.executable, CHILDREN, *command], REPO, log)),
                command[0],
                log,
            )
        raw = AgentConfig.model_validate(
            {
                "gateway_id": "gw-profile",
                "plant": "bench",
                "namespace": "profile",
                "mqtt": {"url": args.mqtt_url, "client_id": "agent-profile"},
                "publish_interval_s": 1.0,
                "max_readings_per_batch": 1000,
                "buffer": (
                    {"kind": "disk", "path": str(directory / "buffer.sqlite")}
                    if args.buffer == "disk"
                    else {"kind": "memory"}
                ),
                "sources": sources,
            }
        )
        config = resolve_profiles(raw, directory / "agent.yaml")
        profile = asyncio.run(run_agent(config, warmup, args.window, not args.no_profile))
    if args.out:
        profile.dump_stats(args.out)
    if not args.no_profile:
        print(report(profile, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
