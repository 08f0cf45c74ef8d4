"""Whole-table dumps of the source and the store in one comparable form.

Run as a script (`python tests/cdc/dumps.py STORE_DSN`) it prints the store's
dump as JSON: the kill test verifies a store that another process wrote, and
chDB lets a process open only one engine path, so that read happens in a
subprocess of its own.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from optima_bi_mcp.data.tables import TABLES
from optima_bi_mcp.store import Store, open_store

Dump = dict[str, list[list[Any]]]

ROLLUP_SOURCE = """
SELECT (created_at AT TIME ZONE 'UTC')::date, merchant_id, count(*), sum(amount_total),
       sum(platform_fee)
FROM orders WHERE status IN ('paid', 'shipped', 'delivered', 'completed')
GROUP BY 1, 2
"""
ROLLUP_STORE = """
SELECT day, merchant_id, orders, gmv, platform_fees FROM merchant_daily FINAL WHERE orders > 0
"""


def normal(value: Any) -> Any:
    """A value as JSON-safe text that compares equal across PostgreSQL and ClickHouse."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, UUID | date):
        return str(value)
    return value


def _sorted(rows: Any) -> list[list[Any]]:
    return sorted(([normal(v) for v in row] for row in rows), key=json.dumps)


def dump_source(dsn: str) -> Dump:
    """Every row of the seven tables and the counted-order rollup, from PostgreSQL."""
    with psycopg.connect(dsn) as conn:
        dump = {
            t.name: _sorted(conn.execute(f"SELECT {', '.join(t.columns)} FROM {t.name}"))
            for t in TABLES
        }
        dump["merchant_daily"] = _sorted(conn.execute(ROLLUP_SOURCE))
    return dump


def dump_store(store: Store) -> Dump:
    """The same dump from the store's latest state (FINAL) and its rollup."""
    dump = {
        t.name: _sorted(store.query(f"SELECT {', '.join(t.columns)} FROM {t.name} FINAL"))
        for t in TABLES
    }
    dump["merchant_daily"] = _sorted(store.query(ROLLUP_STORE))
    return dump


def differences(source: Dump, store: Dump) -> dict[str, dict[str, int]]:
    """Per table, how many rows only one side has (empty when they agree)."""
    out = {}
    for name in source:
        a = {json.dumps(r) for r in source[name]}
        b = {json.dumps(r) for r in store.get(name, [])}
        if a != b:
            out[name] = {"source_only": len(a - b), "store_only": len(b - a)}
    return out


if __name__ == "__main__":
    opened = open_store(sys.argv[1], migrate=False)
    try:
        json.dump(dump_store(opened), sys.stdout)
    finally:
        opened.close()
