"""The deterministic synthetic commerce dataset, written into the store or PostgreSQL.

`seed_store` generates every table inside the store's own database: merchants
and subscriptions from the Python plan (`synth`), the bulk tables with
`INSERT … SELECT` over `numbers()` (`seed_sql`), then rebuilds the rollups.
`seed_postgres` generates the same rows in a scratch database of an open
engine and streams them into PostgreSQL (`pgload`), so seeding the store and
seeding PostgreSQL then backfilling give identical tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from optima_bi_mcp.data import seed_sql
from optima_bi_mcp.data.pgload import load_postgres, source_is_empty
from optima_bi_mcp.data.synth import DatasetPlan, SeedSpec, plan_dataset, subscription_rows
from optima_bi_mcp.data.tables import BY_NAME, TABLES
from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.store.client import Store
from optima_bi_mcp.store.rollups import compact, rebuild_rollups

log = logger.bind(module=__name__)

# Called with the name of each step as it starts ("orders", "rollups", …).
StepProgress = Callable[[str], None]

# Bulk statements in dependency order: transfers read the orders just written.
_GENERATED = (
    ("products", seed_sql.products_sql),
    ("customers", seed_sql.customers_sql),
    ("orders", seed_sql.orders_sql),
    ("order_items", seed_sql.order_items_sql),
    ("transfers", seed_sql.transfers_sql),
)
# 10M orders take minutes and span ~33 monthly partitions per block.
_INSERT_SETTINGS = " SETTINGS max_execution_time = 0, max_partitions_per_insert_block = 0"


@dataclass
class SeedReport:
    spec: SeedSpec
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def store_is_empty(store: Store) -> bool:
    """True when no source table of the store holds a row."""
    return not any(store.query(f"SELECT count() FROM {t.name}")[0][0] for t in TABLES)


def seed_store(store: Store, spec: SeedSpec, progress: StepProgress | None = None) -> SeedReport:
    """Generate the dataset into an empty store and rebuild its rollups."""
    if not store_is_empty(store):
        raise InvalidArgumentError(
            f"the store {store.location.describe()} already holds data: seed a fresh store, "
            "or pass --if-empty to leave it as it is",
            argument="store",
        )
    started = time.perf_counter()
    plan = plan_dataset(spec)
    _generate(store, plan, progress)

    _step(progress, "rollups")
    rebuild_rollups(store)
    compact(store)
    report = SeedReport(spec=spec, rows=_counts(store), seconds=time.perf_counter() - started)
    log.info(
        "seed done seed={} orders={} merchants={} seconds={:.1f}",
        spec.seed,
        report.rows["orders"],
        report.rows["merchants"],
        report.seconds,
    )
    return report


def seed_postgres(
    dsn: str, spec: SeedSpec, scratch: Store, progress: StepProgress | None = None
) -> SeedReport:
    """Generate the dataset in `scratch` (an empty database of an open engine) and load it
    into the PostgreSQL database at `dsn`, creating the commerce schema if it is missing.
    """
    if not source_is_empty(dsn):
        raise InvalidArgumentError(
            "the target database already holds commerce rows: seed a fresh database, "
            "or pass --if-empty to leave it as it is",
            argument="target",
        )
    if not store_is_empty(scratch):
        raise InvalidArgumentError(
            f"the scratch database {scratch.location.describe()} must be empty",
            argument="store",
        )
    started = time.perf_counter()
    _generate(scratch, plan_dataset(spec), progress)
    rows = load_postgres(scratch, dsn, progress=lambda table: _step(progress, f"copy {table}"))
    report = SeedReport(spec=spec, rows=rows, seconds=time.perf_counter() - started)
    log.info("seed into postgresql done orders={} seconds={:.1f}", rows["orders"], report.seconds)
    return report


def _generate(store: Store, plan: DatasetPlan, progress: StepProgress | None) -> None:
    _step(progress, "merchants")
    merchants = BY_NAME["merchants"]
    store.insert(
        merchants.name,
        [
            (m.id, m.name, m.email, m.country, "USD", m.status, m.created_at, m.updated_at)
            + (seed_sql.SEED_VERSION, 0)
            for m in plan.merchants
        ],
        merchants.store_columns,
    )

    _step(progress, "subscriptions")
    subscriptions = BY_NAME["subscriptions"]
    rows = [
        (*row, seed_sql.SEED_VERSION, 0)
        for merchant in plan.merchants
        for row in subscription_rows(plan.spec, merchant)
    ]
    store.insert(subscriptions.name, rows, subscriptions.store_columns)

    parameters = seed_sql.plan_parameters(plan)
    for name, build in _GENERATED:
        _step(progress, name)
        store.command(build() + _INSERT_SETTINGS, parameters)


def _counts(store: Store) -> dict[str, int]:
    return {t.name: int(store.query(f"SELECT count() FROM {t.name}")[0][0]) for t in TABLES}


def _step(progress: StepProgress | None, name: str) -> None:
    log.debug("seed step={}", name)
    if progress:
        progress(name)
