"""Telegraf configurations for bench_agent.py: the same reads as the agent's, published as JSON
batches of up to 1,000 metrics at QoS 1 to the same Mosquitto, with the same user and TLS.

The password reaches Telegraf through its environment (`${...}` in the file), never the file or
a command line. Plugin options as documented for v1.37 (plugins/inputs/opcua, opcua_listener,
modbus and plugins/outputs/mqtt READMEs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent_children import OpcuaShard, machine_name, node_names

from plantmesh.mqtt_auth import connect_args

PASSWORD_VAR = "PLANTMESH_BENCH_MQTT_PASSWORD"
METRICS_PER_MESSAGE = 1000  # as the agent's max_readings_per_batch
MACHINE_TOPIC = '/{{ .Tag "machine" }}'
"""Appended to the topic: one message per machine and flush, as the agent publishes (its topic
names the machine), instead of one message of up to 1,000 metrics."""
# Telegraf substitutes ${VAR} into the TOML text: a quote or backslash would break the string.
_SAFE_PASSWORD = re.compile(r"[^\"\\\n]*")


def _q(text: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these)."""
    return json.dumps(text)


@dataclass(frozen=True)
class Output:
    """Where Telegraf publishes, and the environment its password comes from."""

    toml: str
    env: dict[str, str]


def mqtt_output(mqtt_url: str, topic: str, client_id: str) -> Output:
    conn, host, port = connect_args(mqtt_url)
    scheme = "mqtts" if conn.tls else "mqtt"
    lines = [
        "[[outputs.mqtt]]",
        f"  servers = [{_q(f'{scheme}://{host}:{port}')}]",
        f"  topic = {_q(topic)}",
        "  qos = 1",
        "  keep_alive = 30",  # Mosquitto 2.0.12+ refuses 0 ("identifier rejected")
        f"  client_id = {_q(client_id)}",
        '  layout = "batch"',  # one message per flush of up to metric_batch_size metrics
        '  data_format = "json"',
        '  timeout = "10s"',
    ]
    env: dict[str, str] = {}
    if conn.tls and conn.ca_file:
        lines.append(f"  tls_ca = {_q(conn.ca_file)}")
    if conn.username is not None:
        lines.append(f"  username = {_q(conn.username)}")
        password = conn.password_value() or ""
        if not _SAFE_PASSWORD.fullmatch(password):
            raise ValueError(
                "the MQTT password holds a quote, backslash or newline, which Telegraf's"
                " ${VAR} substitution cannot carry"
            )
        env[PASSWORD_VAR] = password
        lines.append(f'  password = "${{{PASSWORD_VAR}}}"')
    return Output("\n".join(lines) + "\n", env)


AGENT_SECTION = f"""[agent]
  interval = "1s"
  round_interval = true
  metric_batch_size = {METRICS_PER_MESSAGE}
  metric_buffer_limit = 200000
  collection_jitter = "0s"
  flush_interval = "1s"
  flush_jitter = "0s"
  omit_hostname = true
  quiet = true
"""


def _opcua_common(shard: OpcuaShard) -> list[str]:
    return [
        f"  endpoint = {_q(shard.url)}",
        '  security_policy = "None"',
        '  security_mode = "None"',
        '  auth_method = "Anonymous"',
        '  connect_timeout = "10s"',
        '  request_timeout = "10s"',
    ]


def _groups(plugin: str, shard: OpcuaShard, namespace_index: int) -> list[str]:
    """A group per machine, tagged `machine` as the agent's readings carry the machine (and
    so Telegraf can publish per machine, see MACHINE_TOPIC)."""
    lines = []
    for m in range(shard.first_machine, shard.first_machine + shard.machines):
        nodes = ", ".join(
            f"{{name={_q(name.replace('.', '_'))}, identifier={_q(name)}}}"
            for name in node_names(m, 1)
        )
        lines += [
            f"  [[inputs.{plugin}.group]]",
            # opcua_listener takes no namespace_uri here: the index the server reported
            f'    namespace = "{namespace_index}"',
            '    identifier_type = "s"',
            f"    default_tags = {{machine = {_q(machine_name(m))}}}",
            f"    nodes = [{nodes}]",
        ]
    return lines


def opcua_poll(shards: Sequence[OpcuaShard], namespace_index: int) -> str:
    """inputs.opcua: every variable read once per interval (1 s). asyncua's server refuses
    RegisterNodes, hence unregistered reads."""
    parts = []
    for shard in shards:
        lines = ["[[inputs.opcua]]", '  name = "opcua"', *_opcua_common(shard)]
        lines += _groups("opcua", shard, namespace_index)
        lines += ["  [inputs.opcua.request_workarounds]", "    use_unregistered_reads = true"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def opcua_listener(shards: Sequence[OpcuaShard], namespace_index: int) -> str:
    """inputs.opcua_listener: one subscription per server, publishing interval 500 ms (the
    agent's), sampling interval 0 and queue size 10 (the plugin's defaults, the agent's too)."""
    parts = []
    for shard in shards:
        lines = ["[[inputs.opcua_listener]]", '  name = "opcua"', *_opcua_common(shard)]
        lines += ['  subscription_interval = "500ms"', '  connect_fail_behavior = "error"']
        lines += _groups("opcua_listener", shard, namespace_index)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def modbus(port: int, devices: int, registers: int) -> str:
    """inputs.modbus: one plugin instance (its own connection) per device, as the agent and
    the raw client have, each reading its holding registers 0..registers-1 in one request."""
    fields = ", ".join(f'{{address={i}, name="r{i:03}", type="UINT16"}}' for i in range(registers))
    parts = []
    for unit in range(1, devices + 1):
        parts.append(
            "\n".join(
                [
                    "[[inputs.modbus]]",
                    f'  name = "dev{unit:03}"',
                    f'  tags = {{machine = "dev{unit:03}"}}',
                    f'  controller = "tcp://127.0.0.1:{port}"',
                    '  timeout = "2s"',
                    '  configuration_type = "request"',
                    "  [[inputs.modbus.request]]",
                    f"    slave_id = {unit}",
                    '    byte_order = "ABCD"',
                    '    register = "holding"',
                    f"    fields = [{fields}]",
                ]
            )
        )
    return "\n\n".join(parts) + "\n"


def config(inputs: str, output: Output, buffer_dir: str | None = None) -> str:
    """`buffer_dir`: Telegraf's disk buffer (`buffer_strategy = "disk"`, experimental since
    1.33) in that directory, for a comparison at the agent's durability; else its memory
    buffer, which a restart or power cut loses."""
    disk = (
        ""
        if buffer_dir is None
        else f'  buffer_strategy = "disk"\n  buffer_directory = {_q(buffer_dir)}\n'
    )
    return f"{AGENT_SECTION}{disk}\n{output.toml}\n{inputs}"
