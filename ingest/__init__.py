"""plantmesh ingest: MQTT to Kafka bridge and Kafka to InfluxDB writer.

In-process use (tests, embedding): `ingest.bridge.Bridge(config)` and
`ingest.writer.Writer(config)`, each with `async run()`, `stop()`, `ready` and `stats`;
`config` is an `ingest.config.IngestConfig` (`plantmesh.config.load_config(IngestConfig, path)`).
"""
