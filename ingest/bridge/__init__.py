"""The MQTT -> Kafka bridge (`service`): its MQTT session (`paho_on_asyncio`), where each message
goes (`routing`), its counters (`stats`) and their Prometheus metrics (`metrics`)."""

from ingest.bridge.service import Bridge
from ingest.bridge.stats import BridgeStats

__all__ = ["Bridge", "BridgeStats"]
