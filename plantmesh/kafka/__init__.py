"""The Kafka layer every cloud-side service uses: client factories with the shared settings, the
renewing producer, record batches per partition, topic creation, and what to do with a message
Kafka refuses.

Only cloud-side services (ingest, alerting) import this package: it imports aiokafka, which the
edge install (`plantmesh[edge]`) does not have. Nothing on plantmesh's import-time path (the
package, cli, config, contracts, topics, connections, logs, resilience) may import it.
"""
