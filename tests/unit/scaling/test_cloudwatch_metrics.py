"""The endpoint's metrics: AWS's names, units and dimensions; what the meter observes of the emulator."""

from __future__ import annotations

from datetime import UTC, datetime

from asyncinfer.local.cloudwatch_metrics import EndpointMeter, MinuteCounts, QueueSnapshot, metric_data
from asyncinfer.local.endpoint.events import EmulatorEvent, EventKind
from tests.unit.scaling.support import request

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def by_name(data: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(d["MetricName"]): d for d in data}


def test_queue_metrics_at_zero_instances() -> None:
    data = by_name(metric_data(QueueSnapshot("ep", "AllTraffic", 3, 0, 90.0), MinuteCounts(), NOW))
    assert set(data) == {
        "ApproximateBacklogSize",
        "ApproximateBacklogSizePerInstance",
        "ApproximateAgeOfOldestRequest",
        "HasBacklogWithoutCapacity",
    }
    assert data["HasBacklogWithoutCapacity"]["Value"] == 1.0
    assert data["ApproximateBacklogSizePerInstance"]["Value"] == 3.0
    assert data["ApproximateAgeOfOldestRequest"]["Unit"] == "Seconds"
    assert data["ApproximateBacklogSize"]["Dimensions"] == [{"Name": "EndpointName", "Value": "ep"}]
    assert all(d["Timestamp"] == NOW for d in data.values())


def test_invocation_metrics_per_variant() -> None:
    counts = MinuteCounts(processed=4, failures=1, expired=0, total_processing_ms=[10.0, 30.0], model_latency_us=[5.0])
    data = by_name(metric_data(QueueSnapshot("ep", "AllTraffic", 8, 2, None), counts, NOW))
    assert data["HasBacklogWithoutCapacity"]["Value"] == 0.0
    assert data["ApproximateBacklogSizePerInstance"]["Value"] == 4.0
    assert data["InvocationsProcessed"]["Value"] == 4
    assert data["InvocationFailures"]["Dimensions"] == [
        {"Name": "EndpointName", "Value": "ep"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert "ExpiredRequests" not in data
    assert data["TotalProcessingTime"]["StatisticValues"] == {
        "SampleCount": 2.0,
        "Sum": 40.0,
        "Minimum": 10.0,
        "Maximum": 30.0,
    }
    assert data["TotalProcessingTime"]["Unit"] == "Milliseconds"
    assert data["ModelLatency"]["Unit"] == "Microseconds"
    assert "Invocations" not in data
    assert "InvocationsPerInstance" not in data


def test_meter_follows_requests() -> None:
    meter = EndpointMeter(clock=lambda: 1000.0)
    first, second = request("a", received_at=990.0), request("b", received_at=995.0)
    meter.on_event(EmulatorEvent(EventKind.ACCEPTED, "ep", "a", first))
    meter.on_event(EmulatorEvent(EventKind.ACCEPTED, "ep", "b", second))
    assert meter.oldest_received_at("ep") == 990.0
    meter.on_event(EmulatorEvent(EventKind.STARTED, "ep", "a", first))
    assert meter.oldest_received_at("ep") == 995.0
    meter.on_event(EmulatorEvent(EventKind.COMPLETED, "ep", "a"))
    meter.on_event(EmulatorEvent(EventKind.EXPIRED, "ep", "b"))
    counts = meter.take("ep")
    assert (counts.processed, counts.failures, counts.expired) == (1, 1, 1)
    assert counts.total_processing_ms == [10_000.0]
    assert len(counts.model_latency_us) == 1
    assert meter.take("ep") == MinuteCounts()
    assert meter.oldest_received_at("ep") is None
