"""The Kafka -> InfluxDB writer: `ingest.writer.service.Writer`."""

from ingest.writer.service import Writer, WriterStats

__all__ = ["Writer", "WriterStats"]
