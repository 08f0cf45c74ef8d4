"""Item changes in CDC batches keep product_daily and merchant_day_items exact.

Orders and their items arrive together (the order's day is then known from the
batch), items alone (the day is looked up in the store), again (redelivery)
and out of order; the product figures are checked against sums worked out by
hand from the items written.
"""

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
from optima_bi_mcp.store import Store, rollups

ORDERS, ITEMS = BY_NAME["orders"], BY_NAME["order_items"]
MERCHANT = uuid.uuid4()
P, Q = uuid.uuid4(), uuid.uuid4()
CREATED = datetime(2026, 11, 5, 23, 59, 59, 999999, tzinfo=UTC)


def order(order_id: uuid.UUID, status: str = "paid") -> dict[str, Any]:
    return {
        "id": order_id,
        "merchant_id": MERCHANT,
        "order_number": f"N-{order_id.hex[:6]}",
        "customer_email": "a@x",
        "status": status,
        "currency": "USD",
        "amount_total": Decimal("100.00"),
        "platform_fee": Decimal("3.00"),
        "created_at": CREATED,
        "updated_at": CREATED,
    }


def item(
    item_id: uuid.UUID, order_id: uuid.UUID, product: uuid.UUID, quantity: int
) -> dict[str, Any]:
    return {
        "id": item_id,
        "order_id": order_id,
        "merchant_id": MERCHANT,
        "product_id": product,
        "quantity": quantity,
        "unit_price": Decimal("2.50"),
        "amount": Decimal("2.50") * quantity,
        "created_at": CREATED,
    }


def event(op: str, row: dict[str, Any], lsn: int, table: Any = ITEMS) -> ChangeEvent:
    return ChangeEvent(table, op, row["id"], None if op == "d" else row, row, lsn, 1_000 + lsn)


def products(store: Store) -> dict[uuid.UUID, tuple[Decimal, int, int]]:
    rows = store.query(
        "SELECT product_id, revenue, quantity, orders FROM product_daily FINAL "
        "WHERE merchant_id = {m:UUID}",
        {"m": str(MERCHANT)},
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def listed(store: Store) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    rows = store.query(
        "SELECT t.5, t.2, t.3 FROM merchant_day_items FINAL ARRAY JOIN items AS t "
        "WHERE merchant_id = {m:UUID}",
        {"m": str(MERCHANT)},
    )
    return sorted((r[0], r[1], r[2]) for r in rows)


def versions(store: Store) -> tuple[int, int]:
    """The newest version written to each item rollup (a merge keeps it)."""
    [(products_version, lists_version)] = store.query(
        "SELECT (SELECT max(_version) FROM product_daily), "
        "(SELECT max(_version) FROM merchant_day_items)"
    )
    return int(products_version), int(lists_version)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The (merchant_id, order_id) pairs whose day `refresh_rollups` looked up in the store."""
    seen: list[list[Any]] = []
    look_up = rollups._order_days

    def record(store: Store, pairs: list[Any]) -> Any:
        seen.append(list(pairs))
        return look_up(store, pairs)

    monkeypatch.setattr(rollups, "_order_days", record)
    return seen


def test_items_with_their_order_need_no_day_lookup(
    make_store: Callable[[str], Store], lookups: list[list[Any]]
) -> None:
    """Two orders with their items in one batch: P in both (twice in one), Q in one."""
    store = make_store("items")
    a, b = uuid.uuid4(), uuid.uuid4()
    ia, ia2, iq, ib = (uuid.uuid4() for _ in range(4))
    apply_events(
        store,
        [
            event("c", order(a), 10, ORDERS),
            event("c", item(ia, a, P, 1), 11),
            event("c", item(ia2, a, P, 3), 12),
            event("c", item(iq, a, Q, 2), 13),
            event("c", order(b), 14, ORDERS),
            event("c", item(ib, b, P, 4), 15),
        ],
    )
    assert lookups == [[]]
    assert products(store) == {
        P: (Decimal("20.00"), 8, 2),
        Q: (Decimal("5.00"), 2, 1),
    }
    assert listed(store) == sorted([(a, P, 1), (a, P, 3), (a, Q, 2), (b, P, 4)])


def test_a_redelivered_batch_writes_no_item_rollup_rows(make_store: Callable[[str], Store]) -> None:
    """The same batch again finds the lists unchanged: nothing is written, nothing moves."""
    store = make_store("items")
    a, ia, iq = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = [
        event("c", order(a), 10, ORDERS),
        event("c", item(ia, a, P, 2), 11),
        event("c", item(iq, a, Q, 1), 12),
    ]
    apply_events(store, batch)
    written, figures = versions(store), products(store)
    apply_events(store, batch)
    assert (versions(store), products(store)) == (written, figures)
    assert figures == {P: (Decimal("5.00"), 2, 1), Q: (Decimal("2.50"), 1, 1)}


def test_item_changes_alone_refresh_their_orders_day(
    make_store: Callable[[str], Store], lookups: list[list[Any]]
) -> None:
    """An item deleted and one changed, without their order: Q is gone, P moves, B stays."""
    store = make_store("items")
    a, b = uuid.uuid4(), uuid.uuid4()
    ia, iq, ib = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    apply_events(
        store,
        [
            event("c", order(a), 10, ORDERS),
            event("c", item(ia, a, P, 2), 11),
            event("c", item(iq, a, Q, 1), 12),
            event("c", order(b), 13, ORDERS),
            event("c", item(ib, b, P, 1), 14),
        ],
    )
    lookups.clear()
    apply_events(store, [event("d", item(iq, a, Q, 1), 20), event("u", item(ia, a, P, 5), 21)])
    assert lookups == [[(MERCHANT, a)]]
    assert products(store) == {P: (Decimal("15.00"), 6, 2)}
    assert listed(store) == sorted([(a, P, 5), (b, P, 1)])


def test_older_item_events_after_newer_ones_change_nothing(
    make_store: Callable[[str], Store],
) -> None:
    """The creation of an item redelivered after its update leaves the updated figures."""
    store = make_store("items")
    a, ia = uuid.uuid4(), uuid.uuid4()
    created = [event("c", order(a), 10, ORDERS), event("c", item(ia, a, P, 2), 11)]
    apply_events(store, created)
    apply_events(store, [event("u", item(ia, a, P, 7), 30)])
    apply_events(store, created)
    assert products(store) == {P: (Decimal("17.50"), 7, 1)}
    assert listed(store) == [(a, P, 7)]


def test_an_order_no_longer_counted_drops_its_items(make_store: Callable[[str], Store]) -> None:
    """A refunded order's items leave the list; a product sold only there is deleted."""
    store = make_store("items")
    a, b = uuid.uuid4(), uuid.uuid4()
    apply_events(
        store,
        [
            event("c", order(a), 10, ORDERS),
            event("c", item(uuid.uuid4(), a, Q, 3), 11),
            event("c", item(uuid.uuid4(), a, P, 1), 12),
            event("c", order(b), 13, ORDERS),
            event("c", item(uuid.uuid4(), b, P, 2), 14),
        ],
    )
    apply_events(store, [event("u", order(a, "refunded"), 20, ORDERS)])
    assert products(store) == {P: (Decimal("5.00"), 2, 1)}
    apply_events(store, [event("u", order(a, "paid"), 30, ORDERS)])
    assert products(store) == {P: (Decimal("7.50"), 3, 2), Q: (Decimal("7.50"), 3, 1)}
