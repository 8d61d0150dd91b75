"""Alert event sinks, one per module."""

from alerting.sinks.alert_log import AlertLogSink
from alerting.sinks.base import EventSink, SinkError
from alerting.sinks.kafka import KafkaEventSink
from alerting.sinks.log import LogSink

__all__ = ["AlertLogSink", "EventSink", "KafkaEventSink", "LogSink", "SinkError"]
