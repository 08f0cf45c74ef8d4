"""get_sales' daily rollup queries, each forced on every period, against the oracle.

A UTC daily series of a large merchant is answered by one of three rollup
queries chosen by the period's length (merchant.py, DAILY_MIN_DAYS and
FACTS_MIN_DAYS); the test dataset's merchants are small, so the choice is
forced here. The customer-facts query must fall back to the keys whenever the
merchant has a counted order at or after the period's end (past periods, and
`days` periods ending now while orders keep coming).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from optima_bi_mcp.metrics import merchant as merchant_metrics
from tests.metrics.test_merchant_sales import PERIODS, _check

LONG_PERIODS: list[dict[str, Any]] = [
    {"days": 90},
    {"days": 365},
    {"start": date(2025, 12, 1), "end": date(2026, 11, 30)},
    {"start": date(2025, 11, 4), "end": date(2026, 11, 3)},
]
PATHS = {"keys": 10**6, "facts": 0}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("period", PERIODS + LONG_PERIODS, ids=repr)
@pytest.mark.parametrize("role", ["edge", "large", "medium", "empty"])
def test_daily_queries_match_oracle(
    metric_dataset: Any,
    source: Any,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    period: dict[str, Any],
    path: str,
) -> None:
    """Both daily queries, with or without customer facts, give the oracle's series."""
    monkeypatch.setattr(merchant_metrics, "ROLLUP_MIN_ORDERS", -1)
    monkeypatch.setattr(merchant_metrics, "DAILY_MIN_DAYS", 0)
    monkeypatch.setattr(merchant_metrics, "FACTS_MIN_DAYS", PATHS[path])
    _check(metric_dataset, source, role, {**period, "timezone": "UTC", "bucket": "day"})


def test_facts_give_way_to_keys_after_the_end(
    metric_dataset: Any, source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A past period of a merchant that kept selling is answered from the keys."""
    monkeypatch.setattr(merchant_metrics, "ROLLUP_MIN_ORDERS", -1)
    monkeypatch.setattr(merchant_metrics, "DAILY_MIN_DAYS", 0)
    monkeypatch.setattr(merchant_metrics, "FACTS_MIN_DAYS", 0)
    asked: list[str] = []
    query = metric_dataset.store.query

    def spy(sql: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(sql)
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(metric_dataset.store, "query", spy)
    period = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
    _check(metric_dataset, source, "large", {**period, "timezone": "UTC", "bucket": "day"})
    daily = [sql for sql in asked if sql.startswith(merchant_metrics.SALES_DAILY_SQL[:40])]
    assert daily == [merchant_metrics.SALES_DAILY_SQL, merchant_metrics.SALES_DAILY_KEYS_SQL]
