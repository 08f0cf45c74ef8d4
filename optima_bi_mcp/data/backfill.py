"""Backfill: load the current state of the PostgreSQL source into the store.

All seven tables are read inside one REPEATABLE READ snapshot, streamed with
`COPY … TO STDOUT` in PostgreSQL's text format (which ClickHouse reads as
TabSeparated) and inserted in batches of about BATCH_BYTES, so memory stays
flat and no row becomes Python objects, written with the snapshot's WAL
position as `_version`. Change events committed after the
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
from optima_bi_mcp.store.rollups import compact, rebuild_rollups

log = logger.bind(module=__name__)

BATCH_BYTES = 32 << 20
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
        conn.execute("SET LOCAL DateStyle = 'ISO'")  # what _stream's timestamps rely on
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        report = BackfillReport(version=lsn_to_int(row[0]))
        for table in TABLES:
            report.rows[table.name] = _copy_table(conn, store, table, report.version, progress)
        conn.rollback()

    for table in TABLES:
        report.removed[table.name] = _remove_vanished(store, table, report.version)
    rebuild_rollups(store)
    compact(store)
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
    for batch in _stream(conn, table, version):
        rows = batch.count(b"\n")
        store.insert_text(table.name, bytes(batch), table.store_columns)
        copied += rows
        if progress:
            progress(table.name, rows)
    return copied


def _stream(conn: psycopg.Connection[Any], table: SourceTable, version: int) -> Iterator[bytearray]:
    """Batches of whole rows (text COPY escapes newlines inside values, so one per row)."""
    # Identifiers come from TABLES and the version from the server, never from input.
    # Timestamps go out as UTC wall-clock text, which DateTime64(6, 'UTC') parses as is.
    columns = ", ".join(
        f"{c} AT TIME ZONE 'UTC'" if c.endswith("_at") else c for c in table.columns
    )
    query = f"COPY (SELECT {columns}, {int(version)}, 0 FROM {table.name}) TO STDOUT"
    batch = bytearray()
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        for chunk in copy:
            batch += chunk
            if len(batch) >= BATCH_BYTES:
                yield batch
                batch = bytearray()
    if batch:
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
