"""The MQTT -> Kafka bridge: `ingest.bridge.service.Bridge`."""

from ingest.bridge.service import Bridge, BridgeStats

__all__ = ["Bridge", "BridgeStats"]
