"""Seeding PostgreSQL, backfilling from it, and verifying the store against it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from optima_bi_mcp.data.backfill import backfill
from optima_bi_mcp.data.seed import seed_postgres
from optima_bi_mcp.data.verify import verify
from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.store import Store
from tests.data.conftest import SMALL, SPEC, checksums

_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
_CONSTRAINTS = (
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
)


def schema(dsn: str) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(_INDEXES).fetchall(), conn.execute(_CONSTRAINTS).fetchall()


@pytest.fixture(scope="module")
def source(make_source: Callable[[str], str], make_store: Callable[[str], Store]) -> str:
    """A PostgreSQL database seeded with SPEC."""
    dsn = make_source("seedpg")
    seed_postgres(dsn, SPEC, make_store("scratch"))
    return dsn


@pytest.fixture
def small_source(make_source: Callable[[str], str], make_store: Callable[[str], Store]) -> str:
    """A fresh PostgreSQL database seeded with SMALL, for tests that change it."""
    dsn = make_source("seedsmall")
    seed_postgres(dsn, SMALL, make_store("scratch"))
    return dsn


def test_postgres_then_backfill_equals_seeding_the_store(
    source: str, seeded: Store, make_store: Callable[[str], Store]
) -> None:
    """Seed → PostgreSQL → backfill gives exactly the tables of seed → store."""
    store = make_store("backfilled")
    backfill(store, source)
    assert checksums(store) == checksums(seeded)


def test_backfill_twice_changes_nothing(source: str, make_store: Callable[[str], Store]) -> None:
    """A second backfill leaves the latest state as it was and removes nothing."""
    store = make_store("twice")
    backfill(store, source)
    first = checksums(store)
    report = backfill(store, source)
    assert checksums(store) == first
    assert sum(report.removed.values()) == 0


def test_verify_agrees_with_a_seeded_store(source: str, seeded: Store) -> None:
    """The store seeded directly matches PostgreSQL seeded with the same spec."""
    assert verify(seeded, source) == []


def test_verify_reports_a_row_changed_in_the_source(
    small_source: str, make_store: Callable[[str], Store]
) -> None:
    """An order changed in PostgreSQL without a backfill shows as one sum difference."""
    store = make_store("verify")
    backfill(store, small_source)
    with psycopg.connect(small_source, autocommit=True) as conn:
        row = conn.execute(
            "UPDATE orders SET amount_total = amount_total + 1 "
            "WHERE id = (SELECT id FROM orders ORDER BY id LIMIT 1) RETURNING merchant_id::text"
        ).fetchone()
    differences = verify(store, small_source)
    assert row is not None
    assert [(d.table, d.merchant, d.measure) for d in differences] == [
        ("orders", row[0], "sum(amount_total)")
    ]
    assert differences[0].source - differences[0].store == 1


def test_verify_reports_a_deleted_row(
    small_source: str, make_store: Callable[[str], Store]
) -> None:
    """A transfer deleted in PostgreSQL shows in the table's row count."""
    store = make_store("verify")
    backfill(store, small_source)
    with psycopg.connect(small_source, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM transfers WHERE id = (SELECT id FROM transfers ORDER BY id LIMIT 1)"
        )
    differences = verify(store, small_source)
    assert ("transfers", None, "rows") in [(d.table, d.merchant, d.measure) for d in differences]


def test_seed_postgres_creates_the_commerce_schema(
    pg_admin_dsn: str, make_source: Callable[[str], str], make_store: Callable[[str], Store]
) -> None:
    """Into an empty database, seeding creates exactly the schema of commerce.sql."""
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS seed_bare")
        conn.execute("CREATE DATABASE seed_bare")
    bare = pg_admin_dsn.rsplit("/", 1)[0] + "/seed_bare"
    seed_postgres(bare, SMALL, make_store("scratch"))
    assert schema(bare) == schema(make_source("reference"))


def test_seed_postgres_keeps_the_schema_of_existing_tables(
    source: str, make_source: Callable[[str], str]
) -> None:
    """Indexes and foreign keys dropped for the load are all restored."""
    assert schema(source) == schema(make_source("reference"))


def test_seed_postgres_refuses_a_database_with_data(
    source: str, make_store: Callable[[str], Store]
) -> None:
    """Seeding a source that holds rows raises instead of mixing datasets."""
    with pytest.raises(InvalidArgumentError, match="already holds"):
        seed_postgres(source, SMALL, make_store("scratch"))
