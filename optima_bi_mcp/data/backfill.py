"""Backfill: load the current state of the PostgreSQL source into the store.

All seven tables are read inside one REPEATABLE READ snapshot, streamed with a
server-side cursor in batches so memory stays flat, and written with the
snapshot's WAL position as `_version`. Change events committed after the
snapshot carry higher positions and win; rows the store still holds from an
earlier load but the source no longer has get a deletion at this version. So
running a backfill twice, or beside the CDC sink, leaves the store exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from loguru import logger

from optima_bi_mcp.data.tables import TABLES, SourceTable
from optima_bi_mcp.errors import SourceError
from optima_bi_mcp.store.client import Store
from optima_bi_mcp.store.rollups import rebuild_merchant_daily

log = logger.bind(module=__name__)

BATCH_ROWS = 50_000
Progress = Callable[[str, int], None]


@dataclass
class BackfillReport:
    version: int
    rows: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)


def lsn_to_int(lsn: str) -> int:
    """A PostgreSQL LSN `X/Y` as the 64-bit integer it stands for."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def connect_source(dsn: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=False)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to the source database: {exc}".splitlines()[0]) from exc


def backfill(store: Store, source_dsn: str, progress: Progress | None = None) -> BackfillReport:
    """Copy every source table into the store at one consistent snapshot."""
    with connect_source(source_dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        report = BackfillReport(version=lsn_to_int(row[0]))
        for table in TABLES:
            report.rows[table.name] = _copy_table(conn, store, table, report.version, progress)
        conn.rollback()

    for table in TABLES:
        report.removed[table.name] = _remove_vanished(store, table, report.version)
    rebuild_merchant_daily(store)
    log.info("backfill done version={} rows={}", report.version, sum(report.rows.values()))
    return report


def _copy_table(
    conn: psycopg.Connection[Any],
    store: Store,
    table: SourceTable,
    version: int,
    progress: Progress | None,
) -> int:
    copied = 0
    for batch in _stream(conn, table):
        rows = [(*r, version, 0) for r in batch]
        store.insert(table.name, rows, table.store_columns)
        copied += len(rows)
        if progress:
            progress(table.name, len(rows))
    return copied


def _stream(conn: psycopg.Connection[Any], table: SourceTable) -> Iterator[list[tuple[Any, ...]]]:
    # Identifiers come from TABLES, never from input; values need no parameters here.
    columns = ", ".join(table.columns)
    with conn.cursor(name=f"backfill_{table.name}") as cursor:
        cursor.itersize = BATCH_ROWS
        cursor.execute(f"SELECT {columns} FROM {table.name}")
        while batch := cursor.fetchmany(BATCH_ROWS):
            yield batch


def _remove_vanished(store: Store, table: SourceTable, version: int) -> int:
    """Write deletions for rows an earlier load left that this snapshot lacks."""
    count_rows = store.query(
        f"SELECT count() FROM {table.name} FINAL WHERE _version < {{v:UInt64}}", {"v": version}
    )
    stale = int(count_rows[0][0])
    if stale:
        columns = ", ".join(table.columns)
        store.command(
            f"INSERT INTO {table.name} ({columns}, _version, _is_deleted) "
            f"SELECT {columns}, {{v:UInt64}}, 1 FROM {table.name} FINAL "
            f"WHERE _version < {{v:UInt64}}",
            {"v": version},
        )
    return stale


def source_tables_count(source_dsn: str) -> dict[str, int]:
    """Row counts of the source tables (for progress totals)."""
    with connect_source(source_dsn) as conn:
        return {
            t.name: int(conn.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0])  # type: ignore[index]
            for t in TABLES
        }
