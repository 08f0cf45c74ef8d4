"""Prometheus metrics of the CDC sink, in a registry of its own per sink.

A registry per sink (not the global one) lets tests and an embedding server
build several sinks; the standalone sink serves it on `--metrics-port`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

# A change's way from the source commit to a reader, one segment each (per event):
# capture = source commit -> Kafka record timestamp (Debezium and Connect's producer),
# delivery = record timestamp -> polled by the sink, batching = polled -> batch closed,
# applying = batch closed -> visible to readers and announced.
EVENT_STAGES = ("capture", "delivery", "batching", "applying")
# The sink's work on one batch, in order (per batch).
BATCH_STAGES = ("decode", "write", "rollups", "notify", "positions", "commit")


@dataclass
class SinkTelemetry:
    """The sink's counters, gauges and histograms."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "optima_bi_sink_events", "Change events applied", ["table"], registry=r
        )
        self.batches = Counter("optima_bi_sink_batches", "Batches applied", registry=r)
        self.dead_letters = Counter(
            "optima_bi_sink_dead_letters", "Messages sent to the dead-letter topic", registry=r
        )
        self.batch_size = Histogram(
            "optima_bi_sink_batch_size",
            "Messages per batch",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "optima_bi_sink_batch_seconds", "Time to apply and commit a batch", registry=r
        )
        self.end_to_end = Histogram(
            "optima_bi_sink_end_to_end_seconds",
            "Source commit to visible to readers (rows and rollups written, notice out)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_stage = Histogram(
            "optima_bi_sink_event_stage_seconds",
            f"Time a change spends in each stage ({', '.join(EVENT_STAGES)})",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.batch_stage = Histogram(
            "optima_bi_sink_batch_stage_seconds",
            f"Time the sink spends per batch in each step ({', '.join(BATCH_STAGES)})",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "optima_bi_sink_consumer_lag",
            "Messages behind the partition's high watermark",
            ["topic", "partition"],
            registry=r,
        )
        self.applied_lsn = Gauge(
            "optima_bi_sink_applied_lsn", "Highest WAL LSN applied", ["table"], registry=r
        )
        self.freshness = Gauge(
            "optima_bi_sink_freshness_seconds",
            "Source commit time of the newest applied change (Unix time)",
            registry=r,
        )
