"""Compare the store's latest state with the PostgreSQL source, table by table.

For every source table: the row count, and per merchant the row count and the
sum of the table's `amount_column` (tables.py). The store is read with `FINAL`,
so what is compared is the latest state every answer is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from loguru import logger

from optima_bi_mcp.data.backfill import connect_source
from optima_bi_mcp.data.tables import TABLES, SourceTable
from optima_bi_mcp.errors import SourceError
from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

# merchant id text -> (rows, sum of the amount column or None)
Figures = dict[str, tuple[int, Any]]


@dataclass(frozen=True)
class Difference:
    """One figure that differs: `merchant` is None for a whole-table figure."""

    table: str
    merchant: str | None
    measure: str
    source: Any
    store: Any


def verify(store: Store, source_dsn: str) -> list[Difference]:
    """Every difference between the source and the store; empty when they agree."""
    differences: list[Difference] = []
    try:
        with connect_source(source_dsn) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for table in TABLES:
                source = _source_figures(conn, table)
                differences += compare_figures(table, source, _store_figures(store, table))
            conn.rollback()
    except psycopg.Error as exc:
        raise SourceError(f"reading the source failed: {exc}".splitlines()[0]) from exc
    log.info("verify done differences={}", len(differences))
    return differences


def compare_figures(table: SourceTable, source: Figures, store: Figures) -> list[Difference]:
    """The differences between two sets of per-merchant figures of one table."""
    found = []
    total_source = sum(rows for rows, _ in source.values())
    total_store = sum(rows for rows, _ in store.values())
    if total_source != total_store:
        found.append(Difference(table.name, None, "rows", total_source, total_store))
    for merchant in sorted(source.keys() | store.keys()):
        src_rows, src_sum = source.get(merchant, (0, None))
        dst_rows, dst_sum = store.get(merchant, (0, None))
        if src_rows != dst_rows:
            found.append(Difference(table.name, merchant, "rows", src_rows, dst_rows))
        if table.amount_column and (src_sum or 0) != (dst_sum or 0):
            found.append(
                Difference(table.name, merchant, f"sum({table.amount_column})", src_sum, dst_sum)
            )
    return found


def _aggregates(table: SourceTable) -> str:
    # Identifiers come from TABLES, never from input.
    amount = f"sum({table.amount_column})" if table.amount_column else "NULL"
    return f"count(*), {amount}"


def _source_figures(conn: psycopg.Connection[Any], table: SourceTable) -> Figures:
    rows = conn.execute(
        f"SELECT {table.merchant_column}::text, {_aggregates(table)} FROM {table.name} GROUP BY 1"
    ).fetchall()
    return {str(m): (int(n), s) for m, n, s in rows}


def _store_figures(store: Store, table: SourceTable) -> Figures:
    rows = store.query(
        f"SELECT toString({table.merchant_column}), {_aggregates(table)} "
        f"FROM {table.name} FINAL GROUP BY 1",
        settings={"max_execution_time": 3600},
    )
    return {str(m): (int(n), s) for m, n, s in rows}
