"""Bulk loading of generated rows into a PostgreSQL database with the commerce schema.

Rows stream from a store database as TabSeparated text straight into
`COPY … FROM STDIN` (ClickHouse's escaping is PostgreSQL's text format), one
chunk at a time. Secondary indexes and foreign keys are dropped for the load
and restored before the single commit, which is much faster for millions of
rows and leaves exactly the schema of `infra/postgres/commerce.sql`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from psycopg import sql

from optima_bi_mcp.data.backfill import connect_source
from optima_bi_mcp.data.tables import TABLES, SourceTable
from optima_bi_mcp.errors import SourceError
from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

COMMERCE_SQL = Path(__file__).resolve().parents[2] / "infra" / "postgres" / "commerce.sql"
_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+[^;]+;", re.I | re.S
)
_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f' AND n.nspname = current_schema() AND c.conrelid::regclass::text = ANY(%s)
ORDER BY c.conname
"""


def schema_exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('orders') IS NOT NULL").fetchone()
    return bool(row and row[0])


def source_is_empty(dsn: str) -> bool:
    """True when the database has no commerce tables yet, or none of them holds a row."""
    with connect_source(dsn) as conn:
        if not schema_exists(conn):
            return True
        return not any(
            conn.execute(f"SELECT EXISTS (SELECT 1 FROM {t.name})").fetchone()[0]  # type: ignore[index]
            for t in TABLES
        )


def load_postgres(
    store: Store, dsn: str, progress: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Copy every table of `store` into PostgreSQL in one transaction; returns rows per table."""
    rows: dict[str, int] = {}
    try:
        with connect_source(dsn) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            if not schema_exists(conn):
                conn.execute(COMMERCE_SQL.read_text())
            indexes = _drop_secondary_indexes(conn)
            foreign_keys = _drop_foreign_keys(conn)
            for table in TABLES:
                if progress:
                    progress(table.name)
                rows[table.name] = _copy_table(conn, store, table)
            _restore(conn, indexes, foreign_keys)
            conn.commit()
        _analyze(dsn)
    except psycopg.Error as exc:
        raise SourceError(f"loading PostgreSQL failed: {exc}".splitlines()[0]) from exc
    log.info("postgresql load done rows={}", sum(rows.values()))
    return rows


def _copy_table(conn: psycopg.Connection[Any], store: Store, table: SourceTable) -> int:
    # Identifiers come from TABLES, never from input.
    columns = ", ".join(table.columns)
    with conn.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for chunk in store.stream(f"SELECT {columns} FROM {table.name}"):
                copy.write(chunk)
        return cursor.rowcount


def _drop_secondary_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the standalone indexes of commerce.sql; returns the statements that recreate them."""
    statements = []
    for match in _INDEX.finditer(COMMERCE_SQL.read_text()):
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(match[1])))
        statements.append(match[0])
    return statements


def _drop_foreign_keys(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    found = conn.execute(_FOREIGN_KEYS, ([t.name for t in TABLES],)).fetchall()
    for table, name, _ in found:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    return [(str(t), str(n), str(d)) for t, n, d in found]


def _restore(
    conn: psycopg.Connection[Any], indexes: list[str], foreign_keys: list[tuple[str, str, str]]
) -> None:
    for statement in indexes:
        conn.execute(statement.encode())
    for table, name, definition in foreign_keys:
        # The definition is PostgreSQL's own text of the constraint just dropped.
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                sql.Identifier(table), sql.Identifier(name)
            )
            + sql.SQL(definition)  # type: ignore[arg-type]
        )


def _analyze(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
