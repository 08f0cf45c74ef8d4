"""The benchmark's dataset: one PostgreSQL database and one embedded store, identical rows.

PostgreSQL gets the commerce schema of `infra/postgres/commerce.sql` (primary
keys, foreign keys and the `(merchant_id, created_at)` index on orders, as the
OLTP database has them) and is filled by `optima-bi seed --target`. The store
is filled from that database by a backfill (what `optima-bi backfill` runs),
so both hold the same rows whatever the seed's parameters were; a fingerprint
(row counts and money sums of every table) taken on both sides proves it
before anything is timed. chDB lets one process hold a store path, so every
store step runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from psycopg import sql

log = logger.bind(module=__name__)

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".data" / "bench"
COMMERCE_SQL = ROOT / "infra" / "postgres" / "commerce.sql"
MARKER_TABLE = "optima_bench_marker"

# What both sides are compared on: counts of every table, and its money.
FINGERPRINT_SQL = {
    "merchants": "SELECT count(*), 0 FROM merchants",
    "customers": "SELECT count(*), 0 FROM customers",
    "products": "SELECT count(*), coalesce(sum(stock_quantity), 0) FROM products",
    "orders": "SELECT count(*), coalesce(sum(amount_total), 0) FROM orders",
    "order_items": "SELECT count(*), coalesce(sum(amount), 0) FROM order_items",
    "subscriptions": "SELECT count(*), coalesce(sum(amount), 0) FROM subscriptions",
    "transfers": "SELECT count(*), coalesce(sum(amount), 0) FROM transfers",
}


@dataclass(frozen=True)
class Profile:
    """One size of benchmark: its databases and how many calls it makes."""

    name: str
    database: str
    orders: int
    merchants: int
    seed: int
    rounds: int  # uncached calls per case, spread over rounds in shuffled order
    pg_rounds: int  # PostgreSQL calls per case
    cached_calls: int  # cached calls per case
    http_seconds: float  # duration of each HTTP throughput run

    @property
    def store_path(self) -> Path:
        return BENCH_DIR / self.database

    @property
    def store_dsn(self) -> str:
        return f"chdb://{self.store_path}?database=optima"


FULL = Profile("full", "bench10m", 10_000_000, 500, 42, 15, 5, 50, 20.0)
QUICK = Profile("quick", "benchquick", 200_000, 50, 42, 5, 3, 20, 5.0)


def database_dsn(admin_dsn: str, database: str) -> str:
    """The DSN of another database of the same cluster."""
    return admin_dsn.rsplit("/", 1)[0] + f"/{database}"


def ensure_source(profile: Profile, admin_dsn: str, wait_s: float = 7200) -> str:
    """The PostgreSQL database of `profile`, seeded and analyzed; returns its DSN.

    A database another engineer is still seeding is waited for, not seeded twice.
    """
    dsn = database_dsn(admin_dsn, profile.database)
    wait_for_seeders(profile.database, wait_s)
    if not _database_exists(admin_dsn, profile.database):
        _create_source(admin_dsn, dsn)
        _seed_source(profile, dsn)
    _check_marker(profile, dsn)
    _check_indexes(dsn)
    _analyze_if_never(dsn)
    return dsn


def wait_for_seeders(database: str, timeout_s: float) -> None:
    """Wait while an `optima-bi seed` or `backfill` naming `database` is running."""
    deadline = time.monotonic() + timeout_s
    while (busy := _seeders(database)) and time.monotonic() < deadline:
        log.info("waiting for a running seed of {} (pids {})", database, busy)
        time.sleep(15)
    if busy:
        raise TimeoutError(f"the seed of {database} still runs after {timeout_s:.0f} s")


def _seeders(database: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        naming = any(w.endswith(f"/{database}") for w in words)
        if naming and any(w in ("seed", "backfill") for w in words):
            found.append(int(entry.name))
    return found


def _database_exists(admin_dsn: str, database: str) -> bool:
    with psycopg.connect(admin_dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    return row is not None


def _create_source(admin_dsn: str, dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(COMMERCE_SQL.read_text())


def _seed_source(profile: Profile, dsn: str) -> None:
    until = datetime.now(UTC).date()
    log.info("seeding {} orders into {} (this takes a while)", profile.orders, profile.database)
    run_cli(
        "seed",
        "--target",
        dsn,
        "--seed",
        str(profile.seed),
        "--merchants",
        str(profile.merchants),
        "--orders",
        str(profile.orders),
        "--until",
        until.isoformat(),
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (profile text, seed int, merchants int, orders bigint,"
                " until date, seeded_at timestamptz DEFAULT now())"
            ).format(sql.Identifier(MARKER_TABLE))
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(
                sql.Identifier(MARKER_TABLE)
            ),
            (profile.name, profile.seed, profile.merchants, profile.orders, until),
        )


def _check_marker(profile: Profile, dsn: str) -> None:
    """Refuse a database seeded by this harness with other parameters."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (MARKER_TABLE,)).fetchone()
        if not exists or exists[0] is None:
            log.info("{} was seeded outside the harness; using it as it is", profile.database)
            return
        row = conn.execute(
            sql.SQL("SELECT seed, merchants, orders FROM {}").format(sql.Identifier(MARKER_TABLE))
        ).fetchone()
    if row != (profile.seed, profile.merchants, profile.orders):
        raise RuntimeError(
            f"{profile.database} was seeded with (seed, merchants, orders) = {row}, not "
            f"{(profile.seed, profile.merchants, profile.orders)}: drop it to reseed"
        )


def _check_indexes(dsn: str) -> None:
    """The OLTP index the comparison assumes must be there."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'"
            " AND indexdef LIKE '%(merchant_id, created_at)%'"
        ).fetchone()
    if not row or row[0] == 0:
        raise RuntimeError("orders has no (merchant_id, created_at) index: not an OLTP copy")


def _analyze_if_never(dsn: str) -> None:
    """Give PostgreSQL its statistics and visibility map, as a live database has them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'orders'"
            " AND coalesce(last_analyze, last_autoanalyze) IS NOT NULL"
            " AND coalesce(last_vacuum, last_autovacuum) IS NOT NULL"
        ).fetchone()
        if row and row[0]:
            return
        log.info("VACUUM ANALYZE of the source (never vacuumed and analyzed)")
        conn.execute("VACUUM ANALYZE")


def source_fingerprint(dsn: str) -> dict[str, list[str]]:
    """Row count and money sum of every source table."""
    with psycopg.connect(dsn) as conn:
        return {
            table: [normalize(v) for v in conn.execute(query).fetchone() or ()]  # type: ignore[arg-type]
            for table, query in FINGERPRINT_SQL.items()
        }


def normalize(value: Any) -> str:
    """A count or sum as text both engines agree on (no trailing zeros)."""
    return format(Decimal(str(value)).normalize(), "f")


def ensure_store(profile: Profile, source_dsn: str, store_dsn: str | None = None) -> str:
    """A store holding exactly the source's rows; returns its DSN.

    A given `store_dsn` is used only if it matches the source; the harness's own
    store under `.data/bench/` is rebuilt by a backfill when it does not.
    """
    wanted = source_fingerprint(source_dsn)
    dsn = store_dsn or profile.store_dsn
    found = store_fingerprint(dsn)
    if found == wanted:
        return dsn
    if store_dsn is not None:
        raise RuntimeError(f"the store {store_dsn} does not hold the source's rows: {found}")
    log.info("filling the bench store from {} (backfill)", profile.database)
    shutil.rmtree(profile.store_path, ignore_errors=True)
    log.info("backfill done: {}", run_python("perf.store_probe", "backfill", dsn, source_dsn))
    found = store_fingerprint(dsn)
    if found != wanted:
        raise RuntimeError(f"the store differs from the source after backfill: {found} {wanted}")
    return dsn


def store_fingerprint(dsn: str) -> dict[str, list[str]] | None:
    """The store's fingerprint, read in a subprocess (None when it is empty or absent)."""
    out = run_python("perf.store_probe", "fingerprint", dsn)
    value = json.loads(out)
    return value or None


def run_cli(*args: str) -> None:
    """Run `optima-bi ARGS` with this interpreter; its output goes to our terminal."""
    command = [sys.executable, "-m", "optima_bi_mcp.cli", *args]
    subprocess.run(command, check=True, cwd=ROOT)


def run_python(module: str, *args: str) -> str:
    """Run `python -m module ARGS` and return its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return done.stdout


def plan_dates(dsn: str) -> dict[str, Any]:
    """The last day with orders, which periods of the benchmark end on."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT max(created_at) FROM orders").fetchone()
    last: datetime | None = row[0] if row else None
    today = datetime.now(UTC).date()
    end: date = min(today, last.astimezone(UTC).date()) if last else today
    return {"end": end.isoformat(), "today": today.isoformat()}


def describe(profile: Profile) -> dict[str, Any]:
    return asdict(profile)
