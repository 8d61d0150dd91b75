from __future__ import annotations

import urllib.request

from ingest.metrics import IngestMetrics
from plantmesh.connections import MetricsEndpoint


def test_metrics_are_served_per_instance_and_count_dlq_reasons() -> None:
    writer, bridge = IngestMetrics("writer"), IngestMetrics("bridge")
    writer.rejected("malformed_json")
    writer.rejected("malformed_json")
    bridge.rejected("oversized")
    writer.batches_missing.labels("plant-a", "gw-1").set(3)
    writer.serve(MetricsEndpoint(listen="127.0.0.1:0"))
    try:
        assert writer.port
        url = f"http://127.0.0.1:{writer.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    finally:
        writer.close()
    assert 'plantmesh_ingest_dlq_total{reason="malformed_json",role="writer"} 2.0' in text
    assert "oversized" not in text  # the bridge's registry is its own
    assert 'plantmesh_completeness_batches_missing{gateway="gw-1",plant="plant-a"} 3.0' in text
    assert writer.port is None


def test_metrics_are_off_by_default() -> None:
    metrics = IngestMetrics("writer")
    metrics.serve(MetricsEndpoint())
    assert metrics.port is None
    metrics.close()
