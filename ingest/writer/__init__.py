"""The Kafka -> InfluxDB writer: `ingest.writer.service.Writer`."""

from ingest.writer.service import Writer
from ingest.writer.stats import WriterStats

__all__ = ["Writer", "WriterStats"]
