"""A batch that fails after its dead letters were sent is retried without sending them again."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from optima_bi_mcp.cdc import sink as sink_module
from optima_bi_mcp.cdc.sink import Sink
from optima_bi_mcp.store import Store
from optima_bi_mcp.store.migrations import available
from tests.cdc.conftest import CdcSource, high_watermarks
from tests.cdc.test_stream import wait_applied
from tests.cdc.workload import mark
from tests.waiting import wait_for

pytestmark = pytest.mark.stack


def test_a_retried_batch_sends_its_dead_letters_once(
    make_cdc_source: Callable[..., CdcSource],
    make_store: Callable[[str], Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The positions table is gone when a batch with a malformed message is applied: the
    batch fails after its dead letter went out, and its retries send it no more."""
    monkeypatch.setattr(sink_module, "POSITIONS_EVERY_S", 0.0)  # every batch writes positions
    source = make_cdc_source(seed=11, merchants=3, orders_per_merchant=5)
    store = make_store("retry")
    # A batch waits up to 2 s for more, so the malformed message and the source's
    # change produced after it are applied together.
    sink = Sink(source.settings(sink_batch_ms=3000, sink_batch_idle_ms=2000), store)
    sink.start()
    try:
        wait_applied(sink, mark(source.dsn))
        store.command("DROP TABLE cdc_sink_state")
        _produce_malformed(source, key=b"bad")
        with psycopg.connect(source.dsn) as conn:
            conn.execute("UPDATE products SET stock_quantity = stock_quantity + 1")
        wait_for(lambda: "cdc_sink_state" in str(sink.status()["last_error"]), 60, "a failure")
        _recreate_positions_table(store)
        wait_applied(sink, mark(source.dsn))
    finally:
        sink.stop()
    assert _dead_letter_keys(source) == [b"bad"]


def _produce_malformed(source: CdcSource, key: bytes) -> None:
    producer = Producer({"bootstrap.servers": source.stack.bootstrap})
    producer.produce(f"{source.prefix}.public.orders", key=key, value=b"\x00not json")
    assert producer.flush(10) == 0


def _recreate_positions_table(store: Store) -> None:
    (migration,) = [m for m in available() if m.name == "cdc_sink_state"]
    for statement in migration.statements():
        store.command(statement)


def _dead_letter_keys(source: CdcSource) -> list[bytes]:
    """The keys of every message in the source's dead-letter topic."""
    topic = f"{source.prefix}.dlq"
    end = high_watermarks(source.stack.bootstrap, [topic])[topic]
    consumer = Consumer(
        {"bootstrap.servers": source.stack.bootstrap, "group.id": f"dlq-{uuid.uuid4()}"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    keys: list[bytes] = []
    try:
        while len(keys) < end:
            message = consumer.poll(10)
            assert message is not None, f"the dead-letter topic ended before offset {end}"
            if not message.error():
                keys.append(message.key() or b"")
    finally:
        consumer.close()
    return keys
