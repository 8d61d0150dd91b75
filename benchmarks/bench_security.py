"""What security costs ingest: bench_ingest.py on the secured stack beside a plain one, in one run.

    eval "$(.venv/bin/plantmesh stack env)"
    .venv/bin/python benchmarks/bench_security.py [--rounds 2] [--quick]

The secured side is the local stack as `plantmesh stack up` makes it: MQTT over TLS with
passwords and an ACL, Kafka with SASL/SCRAM and ACLs, InfluxDB with authentication (the run
uses the operator's credentials from `plantmesh stack env`, since it creates and drops
databases and topics). The plain side is a second stack of the same servers brought up
`--insecure` on free ports, with its own state in a temporary directory, stopped at the end.
Rounds alternate plain and secured so that neither gets the quieter machine; each figure is the
best of its rounds. Target (issue 13): the writer keeps at least 85 % of its plain rate.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plantmesh.stack import manager
from plantmesh.stack.paths import Ports, StackConfig

HERE = Path(__file__).resolve().parent
ROW = re.compile(r"^(writer|bridge)\s+([\d,]+)\s+([\d,]+)")
SERVERS = ["mosquitto", "kafka", "influxdb"]
SECRET_VARS = (
    "PLANTMESH_MQTT_USERNAME",
    "PLANTMESH_MQTT_PASSWORD_FILE",
    "PLANTMESH_MQTT_CA_FILE",
    "PLANTMESH_MQTTS_URL",
    "PLANTMESH_MQTT_GATEWAYS_FILE",
    "PLANTMESH_KAFKA_USERNAME",
    "PLANTMESH_KAFKA_PASSWORD_FILE",
    "PLANTMESH_INFLUX_TOKEN_FILE",
    "PLANTMESH_INFLUX_TOKEN",
)


def free_port(span: int = 0) -> int:
    """A port with `span` free ports after it (Kafka's controller, InfluxDB's RPC port)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + span > 65535:
            continue
        ok = True
        for extra in range(1, span + 1):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + extra))
                except OSError:
                    ok = False
        if ok:
            return port


def measure(env: dict[str, str], quick: bool) -> dict[str, tuple[float, float]]:
    """bench_ingest.py's rows: name -> (ours, reference)."""
    command = [sys.executable, str(HERE / "bench_ingest.py"), *(["--quick"] if quick else [])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench_ingest.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    rows = {}
    for line in done.stdout.splitlines():
        if found := ROW.match(line):
            ours, reference = (float(x.replace(",", "")) for x in found.group(2, 3))
            rows[found.group(1)] = (ours, reference)
    if set(rows) != {"writer", "bridge"}:
        raise SystemExit(f"no writer/bridge rows in bench_ingest.py's output:\n{done.stdout}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side (default 2)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    args = parser.parse_args()

    secured_config = StackConfig.from_env()
    if secured_config.insecure:
        raise SystemExit("the local stack runs --insecure: bring it up secured first")
    secured_env = {**os.environ, **manager.up(secured_config, only=SERVERS)}
    secured_env.update(manager.extra_env(secured_config, only=SERVERS))

    state = Path(tempfile.mkdtemp(prefix="plantmesh-plain-"))
    plain_config = StackConfig(
        cache=secured_config.cache,
        state=state,
        ports=Ports(mqtt=free_port(), kafka=free_port(1), influx=free_port(2)),
        insecure=True,
    )
    print(f"plain stack: {state} (--insecure, free ports); secured stack: {secured_config.state}")
    try:
        urls = manager.up(plain_config, only=SERVERS, report=lambda _: None)
        plain_env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
        plain_env.update(urls)
        results: dict[str, list[dict[str, tuple[float, float]]]] = {"plain": [], "secured": []}
        for n in range(args.rounds):
            for side, env in (("plain", plain_env), ("secured", secured_env)):
                print(f"round {n + 1}/{args.rounds}: {side} ...", flush=True)
                results[side].append(measure(env, args.quick))
    finally:
        manager.down(plain_config, only=SERVERS, report=lambda _: None)
        shutil.rmtree(state, ignore_errors=True)

    print(f"\n{'':<8} {'plain':>12} {'secured':>12}  {'unit':<11} secured/plain")
    verdicts = []
    for name, unit in (("writer", "readings/s"), ("bridge", "batches/s")):
        plain = max(r[name][0] for r in results["plain"])
        secured = max(r[name][0] for r in results["secured"])
        ratio = secured / plain
        print(f"{name:<8} {plain:>12,.0f} {secured:>12,.0f}  {unit:<11} {ratio:>6.2f}")
        if name == "writer":
            verdicts.append(f"writer keeps {ratio:.0%} of its plain rate (target >= 85%): "
                            + ("ok" if ratio >= 0.85 else "below"))  # fmt: skip
    print("rounds:", {side: [r["writer"][0] for r in rs] for side, rs in results.items()})
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
