"""Applying change events to the store: newest version wins, replays change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from optima_bi_mcp.cdc.apply import apply_events
from optima_bi_mcp.cdc.decode import ChangeEvent
from optima_bi_mcp.data.tables import BY_NAME
from optima_bi_mcp.errors import StoreError
from optima_bi_mcp.store import Store, rollups

ORDERS = BY_NAME["orders"]
MERCHANT = uuid.uuid4()
CREATED = datetime(2026, 11, 5, 23, 59, 59, 999999, tzinfo=UTC)


def order(order_id: uuid.UUID, status: str, amount: str = "10.00") -> dict[str, Any]:
    return {
        "id": order_id,
        "merchant_id": MERCHANT,
        "order_number": f"N-{order_id.hex[:6]}",
        "customer_email": "a@x",
        "status": status,
        "currency": "USD",
        "amount_total": Decimal(amount),
        "platform_fee": Decimal("0.30"),
        "created_at": CREATED,
        "updated_at": CREATED,
    }


def event(op: str, row: dict[str, Any], lsn: int, before: Any = None) -> ChangeEvent:
    after = None if op == "d" else row
    old = row if op == "d" and before is None else before
    return ChangeEvent(ORDERS, op, row["id"], after, old, lsn, 1_000 + lsn)


def latest(store: Store) -> list[tuple[Any, ...]]:
    return store.query("SELECT id, status FROM orders FINAL ORDER BY id")


def rollup(store: Store) -> list[tuple[Any, ...]]:
    return store.query("SELECT orders, gmv FROM merchant_daily FINAL WHERE orders > 0")


def facts(store: Store) -> list[tuple[Any, ...]]:
    return store.query("SELECT orders_count, ltv FROM customer_facts FINAL")


def test_a_replayed_batch_changes_nothing(make_store: Callable[[str], Store]) -> None:
    """The same events applied twice leave the same latest state and rollup."""
    store = make_store("apply")
    a = uuid.uuid4()
    batch = [event("c", order(a, "pending"), 10), event("u", order(a, "paid"), 20)]
    apply_events(store, batch)
    first = (latest(store), rollup(store))
    apply_events(store, batch)
    assert (latest(store), rollup(store)) == first == ([(a, "paid")], [(1, Decimal("10.00"))])


def test_an_older_event_after_a_newer_one_is_ignored(make_store: Callable[[str], Store]) -> None:
    """Redelivered old versions never overwrite a newer row."""
    store = make_store("apply")
    a = uuid.uuid4()
    apply_events(store, [event("u", order(a, "refunded"), 30)])
    apply_events(store, [event("c", order(a, "paid"), 10)])
    assert latest(store) == [(a, "refunded")]
    assert rollup(store) == []


def test_insert_update_delete_in_one_batch_leaves_nothing(
    make_store: Callable[[str], Store],
) -> None:
    """Within a batch the newest change per key wins, a deletion included."""
    store = make_store("apply")
    a, b = uuid.uuid4(), uuid.uuid4()
    apply_events(
        store,
        [
            event("c", order(a, "paid"), 10),
            event("c", order(b, "paid", "5.00"), 11),
            event("u", order(a, "completed"), 12),
            event("d", order(a, "completed"), 13),
        ],
    )
    assert latest(store) == [(b, "paid")]
    assert rollup(store) == [(1, Decimal("5.00"))]


def test_key_only_delete_is_resolved_from_the_store(make_store: Callable[[str], Store]) -> None:
    """Under the default REPLICA IDENTITY a delete carries the id only; the row still goes."""
    store = make_store("apply")
    a = uuid.uuid4()
    apply_events(store, [event("c", order(a, "paid"), 10)])
    key_only = ChangeEvent(ORDERS, "d", a, None, {"id": a}, 20, 2_000)
    applied = apply_events(store, [key_only])
    assert latest(store) == []
    assert (rollup(store), applied.merchant_ids) == ([], {MERCHANT})


def test_a_failed_rollup_chain_fails_the_batch_and_a_retry_completes_it(
    make_store: Callable[[str], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer rollups fail beside the order rollups: the batch fails, and applied
    again it leaves every rollup exact."""
    store = make_store("apply")
    batch = [event("c", order(uuid.uuid4(), "paid"), 10)]
    refresh_customers = rollups._refresh_customers

    def fail(*args: Any) -> None:
        raise StoreError("store command failed: injected")

    monkeypatch.setattr(rollups, "_refresh_customers", fail)
    with pytest.raises(StoreError):
        apply_events(store, batch)
    assert facts(store) == []
    monkeypatch.setattr(rollups, "_refresh_customers", refresh_customers)
    apply_events(store, batch)
    assert (rollup(store), facts(store)) == ([(1, Decimal("10.00"))], [(1, Decimal("10.00"))])
