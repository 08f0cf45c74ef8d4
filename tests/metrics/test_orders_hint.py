"""merchant_orders_since remembers its count for a few calls; the row only where told to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from optima_bi_mcp.errors import NotFoundError
from optima_bi_mcp.metrics import scope

MERCHANT = UUID("00000000-0000-4000-8000-000000000002")
SINCE = datetime(2026, 11, 20, 8, tzinfo=UTC)


class _Store:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.currency: str | None = "EUR"
        self.orders = 10

    def query(self, sql: str, parameters: Any = None, **_: Any) -> list[tuple[Any, ...]]:
        self.asked.append("count" if "merchant_monthly" in sql else "row")
        if self.currency is None:
            return []
        if "merchant_monthly" in sql:
            assert parameters["since"] == SINCE.date().replace(day=1)
            return [("Shop", self.currency, self.orders)]
        return [("Shop", self.currency)]


def test_count_is_read_again_after_its_uses() -> None:
    store = _Store()
    answers = [scope.merchant_orders_since(store, MERCHANT, SINCE) for _ in range(3)]  # type: ignore[arg-type]
    assert answers == [("EUR", 10)] * 3
    assert store.asked == ["count", "row", "row"]
    store.asked.clear()
    store.orders = 99
    for _ in range(scope.ORDERS_HINT_USES):
        scope.merchant_orders_since(store, MERCHANT, SINCE)  # type: ignore[arg-type]
    assert store.asked.count("count") == 1
    assert scope.merchant_orders_since(store, MERCHANT, SINCE) == ("EUR", 99)  # type: ignore[arg-type]


class _Known:
    def __init__(self) -> None:
        self.row: scope.MerchantRow | None = None

    def get(self) -> scope.MerchantRow | None:
        return self.row

    def put(self, row: scope.MerchantRow) -> None:
        self.row = row


def test_a_known_row_is_kept_by_the_count_read_and_then_reused() -> None:
    """With a place to keep the row, the count's read keeps it and later calls ask nothing."""
    store, known = _Store(), _Known()
    answers = [scope.merchant_orders_since(store, MERCHANT, SINCE, known) for _ in range(3)]  # type: ignore[arg-type]
    assert answers == [("EUR", 10)] * 3
    assert (store.asked, known.row) == (["count"], scope.MerchantRow("Shop", "EUR"))


def test_currency_and_existence_are_never_remembered() -> None:
    store = _Store()
    scope.merchant_orders_since(store, MERCHANT, SINCE)  # type: ignore[arg-type]
    store.currency = "USD"
    assert scope.merchant_orders_since(store, MERCHANT, SINCE) == ("USD", 10)  # type: ignore[arg-type]
    store.currency = None
    with pytest.raises(NotFoundError):
        scope.merchant_orders_since(store, MERCHANT, SINCE)  # type: ignore[arg-type]


def test_each_store_has_its_own_counts() -> None:
    first, second = _Store(), _Store()
    second.orders = 5
    assert scope.merchant_orders_since(first, MERCHANT, SINCE)[1] == 10  # type: ignore[arg-type]
    assert scope.merchant_orders_since(second, MERCHANT, SINCE)[1] == 5  # type: ignore[arg-type]
