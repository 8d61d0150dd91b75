"""plantmesh ingest: MQTT to Kafka bridge and Kafka to InfluxDB writer (see docs/ingest.md).

In-process use (tests, embedding): `ingest.bridge.Bridge(config)` and
`ingest.writer.Writer(config)`, each with `async run()`, `stop()`, `ready`, `stats` and
`metrics_server` (set when `metrics.listen` is); `config` is an `ingest.config.IngestConfig` (`ingest.config.load_ingest_config(path)`
resolves the asset registry path relative to the file).

The parts, by role:

- `bridge/`: MQTT to Kafka, each message routed by its topic; its own stats and metrics.
- `writer/`: Kafka to InfluxDB, telemetry.normalized and the DLQ; its own stats and metrics.
- `checks/`: what the writer accepts of a message, reading by reading, in three tiers named by
  what they accept (clean, conforming, partial); `checks.checker` runs them.
- `normalize/`: the asset registry and unit conversion, every plant on the same terms.
- `ledger/`: completeness, from the gateways' sequence numbers.
- `influx.py` (InfluxDB writes), `line_protocol.py` (the readings schema as lines),
  `timestamps.py` (RFC 3339 to nanoseconds without datetimes), `config.py`, `cli.py`.
"""
