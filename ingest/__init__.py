"""plantmesh ingest: MQTT to Kafka bridge and Kafka to InfluxDB writer (see docs/ingest.md).

In-process use (tests, embedding): `ingest.bridge.Bridge(config)` and
`ingest.writer.Writer(config)`, each with `async run()`, `stop()`, `ready`, `stats` and
`metrics`; `config` is an `ingest.config.IngestConfig` (`ingest.config.load_ingest_config(path)`
resolves the asset registry path relative to the file). The writer's parts: `validation` (reading
by reading checks; quicker paths in `quick_path`, `timestamps` and `fast_schema`), `registry` and
`units` (normalization),
`line_protocol`, `influx`, `ledger` and `ledger_service` (completeness), `dlq`, `metrics`.
"""
