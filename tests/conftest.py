"""Fixtures shared by every test: the real PostgreSQL and the embedded store.

PostgreSQL is the throwaway cluster of `infra/postgres/up`; each test module
that needs a source gets a fresh database with the commerce schema. chDB
allows one engine path per process, so the whole test process shares one
store directory and each dataset gets its own database inside it.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from optima_bi_mcp.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
COMMERCE_SQL = ROOT / "infra" / "postgres" / "commerce.sql"


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """DSN of the running test cluster's `postgres` database (started if needed)."""
    out = subprocess.run(
        [str(ROOT / "infra" / "postgres" / "up")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def make_source(pg_admin_dsn: str) -> Callable[[str], str]:
    """Create a fresh source database with the commerce schema; returns its DSN."""

    def make(prefix: str = "src") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        dsn = pg_admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(COMMERCE_SQL.read_text())
        return dsn

    return make


@pytest.fixture(scope="session")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded-store directory of this test process."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def make_store(chdb_root: Path) -> Iterator[Callable[[str], Store]]:
    """Open a migrated store in its own database of the process's chDB engine."""
    opened: list[Store] = []

    def make(prefix: str = "t") -> Store:
        store = open_store(f"chdb://{chdb_root}?database={prefix}_{uuid.uuid4().hex[:10]}")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
