"""plantmesh ingest: MQTT to Kafka bridge and Kafka to InfluxDB writer."""
