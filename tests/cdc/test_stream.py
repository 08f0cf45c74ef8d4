"""End to end: PostgreSQL → Debezium → Kafka → sink → store, exact under change.

A seeded source is snapshotted by its own connector, then 2,000 random
transactions (new orders, status changes with refunds and cancellations, stock
and price moves, plan changes, transfer changes, hard deletes) stream through
an in-process sink. Once the sink has applied everything up to a mark, the
store must equal the source row for row, and every metric must equal the
PostgreSQL oracle for several merchants and for the platform.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from optima_bi_mcp.cdc.notify import ChangeBus, ChangeNotice
from optima_bi_mcp.cdc.sink import Sink
from optima_bi_mcp.cdc.state import read_freshness, store_status
from optima_bi_mcp.data.tables import TABLES
from optima_bi_mcp.metrics import platform
from optima_bi_mcp.metrics.customers import customer_summary
from optima_bi_mcp.metrics.inventory import inventory_status
from optima_bi_mcp.metrics.merchant import get_sales, top_products
from optima_bi_mcp.metrics.models import (
    CustomerSummaryArgs,
    GetSalesArgs,
    InventoryStatusArgs,
    PlatformMerchantsArgs,
    PlatformMrrArgs,
    PlatformOverviewArgs,
    PlatformRevenueArgs,
    TopProductsArgs,
)
from optima_bi_mcp.store import Store
from tests.cdc.conftest import CdcSource, committed, high_watermarks
from tests.cdc.dumps import differences, dump_source, dump_store
from tests.cdc.workload import mark
from tests.metrics.compare import as_json, project
from tests.oracle import merchant as merchant_oracle
from tests.oracle import platform as platform_oracle

pytestmark = pytest.mark.stack

TRANSACTIONS = 2_000
CATCH_UP_S = 300.0
PERIOD = {"days": 90, "timezone": "UTC"}


@dataclass
class Streamed:
    source: CdcSource
    store: Store
    sink: Sink
    notices: list[ChangeNotice] = field(default_factory=list)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.1)


def wait_applied(sink: Sink, lsn: int) -> None:
    """Wait until the sink applied, on every table, a change at or after `lsn`."""

    def done() -> bool:
        status = sink.status()
        if not status["running"]:
            pytest.fail(f"the sink stopped: {status['last_error']}")
        applied = status["applied_lsn"]
        return all(applied.get(t.name, 0) >= lsn for t in TABLES)

    wait_until(done, CATCH_UP_S, f"the sink to apply LSN {lsn}")


@pytest.fixture(scope="module")
def streamed(
    make_cdc_source: Callable[..., CdcSource], make_store: Callable[[str], Store]
) -> Iterator[Streamed]:
    """A source under a 2,000-transaction workload, streamed into a store until caught up."""
    source = make_cdc_source(seed=3)
    store = make_store("cdc")
    bus = ChangeBus()
    result = Streamed(source, store, Sink(source.settings(), store, bus))
    bus.subscribe(result.notices.append)
    result.sink.start()
    source.workload.run(TRANSACTIONS)
    wait_applied(result.sink, mark(source.dsn))
    yield result
    result.sink.stop()


def busiest_merchants(dsn: str, n: int = 3) -> list[UUID]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT merchant_id FROM orders GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT %s", (n,)
        ).fetchall()
    return [r[0] for r in rows]


def merchant_answers(store: Store, merchant: UUID, now: datetime) -> dict[str, Any]:
    return {
        "sales": as_json(get_sales(store, merchant, GetSalesArgs(**PERIOD), now)),
        "top": as_json(top_products(store, merchant, TopProductsArgs(**PERIOD, limit=100), now)),
        "customers": as_json(customer_summary(store, merchant, CustomerSummaryArgs(**PERIOD), now)),
        "inventory": as_json(
            inventory_status(store, merchant, InventoryStatusArgs(limit=500), now)
        ),
    }


def merchant_oracle_answers(dsn: str, merchant: UUID, now: datetime) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        return {
            "sales": merchant_oracle.sales(conn, merchant, **PERIOD, now=now),
            "top": merchant_oracle.top_products(conn, merchant, **PERIOD, now=now),
            "customers": merchant_oracle.customer_summary(conn, merchant, **PERIOD, now=now),
            "inventory": merchant_oracle.inventory_status(conn, merchant, now=now),
        }


def platform_answers(store: Store, now: datetime) -> list[Any]:
    merchants = as_json(platform.platform_merchants(store, PlatformMerchantsArgs(limit=500), now))
    merchants.pop("next_cursor")
    return [
        as_json(platform.platform_overview(store, PlatformOverviewArgs(), now)),
        merchants,
        as_json(
            platform.platform_revenue(store, PlatformRevenueArgs(days=45, breakdown=True), now)
        ),
        as_json(platform.platform_mrr(store, PlatformMrrArgs(), now)),
    ]


def platform_oracle_answers(dsn: str, now: datetime) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return [
            platform_oracle.platform_overview(conn, None, now),
            platform_oracle.platform_merchants(conn, "top", "gmv_30d", now),
            platform_oracle.platform_revenue(conn, None, None, 45, True, now),
            platform_oracle.platform_mrr(conn, None, now),
        ]


def test_store_equals_source_row_for_row(streamed: Streamed) -> None:
    """Every table's latest state and the rollup equal PostgreSQL after the workload."""
    source, store = dump_source(streamed.source.dsn), dump_store(streamed.store)
    assert differences(source, store) == {}
    assert len(source["orders"]) > 400


def test_workload_updated_and_deleted_rows(streamed: Streamed) -> None:
    """The stream carried far more events than rows: updates and deletes were applied."""
    with psycopg.connect(streamed.source.dsn) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]  # type: ignore[index]
    assert streamed.source.workload.orders > orders
    assert streamed.sink.status()["events"] > 2 * TRANSACTIONS


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_merchant_metrics_equal_the_oracle(streamed: Streamed, rank: int) -> None:
    """get_sales, top_products, customer_summary and inventory_status equal the oracle."""
    merchant = busiest_merchants(streamed.source.dsn)[rank]
    now = datetime.now(UTC)
    expected = merchant_oracle_answers(streamed.source.dsn, merchant, now)
    assert project(merchant_answers(streamed.store, merchant, now), expected) == expected


def test_platform_metrics_equal_the_oracle(streamed: Streamed) -> None:
    """platform_overview, platform_merchants, platform_revenue, platform_mrr equal the oracle."""
    now = datetime.now(UTC)
    expected = platform_oracle_answers(streamed.source.dsn, now)
    assert project(platform_answers(streamed.store, now), expected) == expected


def test_notices_name_every_changed_merchant(streamed: Streamed) -> None:
    """The notices cover every merchant, say the platform changed, and carry freshness."""
    named = set().union(*(n.merchant_ids for n in streamed.notices))
    assert named == set(streamed.source.workload.merchants)
    assert any(n.platform for n in streamed.notices)


# The sink records positions and freshness at most once a second and when it goes idle.
POSITIONS_S = 10.0


def test_freshness_is_persisted_in_the_store(streamed: Streamed) -> None:
    """The store's recorded freshness becomes the newest commit time the bus saw."""
    bus_freshness = max(n.freshness for n in streamed.notices if n.freshness)
    wait_until(
        lambda: read_freshness(streamed.store) == bus_freshness,
        POSITIONS_S,
        "the store's freshness to reach the bus's",
    )
    assert read_freshness(streamed.store) == bus_freshness


def test_positions_are_recorded_per_topic(streamed: Streamed) -> None:
    """The store records a position for each of the seven change topics."""

    def topics() -> list[str]:
        return sorted(p["topic"] for p in store_status(streamed.store)["positions"])

    wait_until(lambda: len(topics()) == len(streamed.source.topics), POSITIONS_S, "7 positions")
    assert topics() == sorted(streamed.source.topics)


def test_rewound_offsets_redeliver_everything_and_change_nothing(streamed: Streamed) -> None:
    """With the group's offsets rewound to 0, a new sink re-applies it all; still exact."""
    streamed.sink.stop()
    source = streamed.source
    settings = source.settings()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    rewind = [TopicPartition(t, 0, 0) for t in source.topics]
    admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(settings.kafka_group, rewind)]
    )[settings.kafka_group].result(30)
    ends = high_watermarks(settings.kafka_bootstrap, source.topics)

    streamed.sink = Sink(settings, streamed.store, ChangeBus())
    streamed.sink.start()
    wait_until(
        lambda: committed(settings.kafka_bootstrap, settings.kafka_group, source.topics) == ends,
        CATCH_UP_S,
        "the rewound group to reach the end of every topic",
    )
    assert streamed.sink.status()["events"] > 2 * TRANSACTIONS
    assert differences(dump_source(source.dsn), dump_store(streamed.store)) == {}


def test_malformed_messages_go_to_the_dead_letter_topic(streamed: Streamed) -> None:
    """Garbage and a wrongly shaped event land in the DLQ with a reason; later changes apply."""
    source, sink = streamed.source, streamed.sink
    settings = source.settings()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    topic = f"{source.prefix}.public.orders"
    producer.produce(topic, key=b"k1", value=b"\x00\xffnot json")
    producer.produce(topic, key=b"k2", value=b'{"payload": {"op": "c", "after": {"id": 1}}}')
    producer.flush(10)
    with psycopg.connect(source.dsn) as conn:
        conn.execute("UPDATE orders SET status = 'refunded' WHERE status = 'paid'")
    wait_applied(sink, mark(source.dsn))

    reasons = dead_letter_reasons(settings.kafka_bootstrap, settings.dlq_topic, 2)
    assert [key for key, _ in reasons] == [b"k1", b"k2"]
    assert all(reason for _, reason in reasons)
    assert differences(dump_source(source.dsn), dump_store(streamed.store)) == {}


def dead_letter_reasons(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, str]]:
    """The key and reason header of the first `n` dead letters."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dlq-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    found: list[tuple[bytes, str]] = []
    try:
        deadline = time.monotonic() + 60
        while len(found) < n and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            headers = dict(message.headers() or [])
            found.append((message.key(), headers.get("optima.error.reason", b"").decode()))
    finally:
        consumer.close()
    return found
