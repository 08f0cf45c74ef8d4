"""Seeded datasets shared by the data tests, and a checksum of a table's latest state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from optima_bi_mcp.data.seed import seed_store
from optima_bi_mcp.data.synth import SeedSpec
from optima_bi_mcp.data.tables import TABLES
from optima_bi_mcp.store import Store

# A fixed last day, so that every run of the suite generates the same rows.
SPEC = SeedSpec(seed=7, merchants=20, orders=20_000, until=date(2026, 11, 30))
SMALL = SeedSpec(seed=11, merchants=6, orders=3_000, until=date(2026, 11, 30))


def checksums(store: Store) -> dict[str, tuple[int, int]]:
    """Per table: rows and an order-independent hash of every source column (FINAL)."""
    found = {}
    for table in TABLES:
        columns = ", ".join(table.columns)
        rows = store.query(f"SELECT count(), sum(cityHash64({columns})) FROM {table.name} FINAL")
        found[table.name] = (int(rows[0][0]), int(rows[0][1]))
    return found


@pytest.fixture(scope="session")
def seeded(make_store: Callable[[str], Store]) -> Store:
    """A store seeded with SPEC."""
    store = make_store("seeded")
    seed_store(store, SPEC)
    return store
