"""The `seed`, `backfill`, `verify` and `migrate` subcommands.

Each handler takes the namespace `cli.py` parsed and returns an exit code:
0 done (for `verify`: store and source agree), 1 `verify` found differences,
2 an error, printed on stderr in one line without a traceback. Progress goes to
stderr; results go to stdout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from optima_bi_mcp.errors import InvalidArgumentError, OptimaError
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store.client import Store, open_store

if TYPE_CHECKING:
    from optima_bi_mcp.data.synth import SeedSpec

log = logger.bind(module=__name__)

DEFAULT_MERCHANTS = 20
DEFAULT_ORDERS = 50_000
_SEED_STEPS = 8  # merchants … transfers, then rollups
_POSTGRES_STEPS = 14  # seven generated tables, then seven copies


def run_seed(args: argparse.Namespace) -> int:
    """`optima-bi seed`: generate the synthetic dataset into the store or PostgreSQL."""
    return _guarded(lambda: _seed(args))


def run_backfill(args: argparse.Namespace) -> int:
    """`optima-bi backfill`: load the source's current state into the store."""
    return _guarded(lambda: _backfill(args))


def run_verify(args: argparse.Namespace) -> int:
    """`optima-bi verify`: compare the store with the source; 1 when they differ."""
    return _guarded(lambda: _verify(args))


def run_migrate(args: argparse.Namespace) -> int:
    """`optima-bi migrate`: apply the pending store migrations and name them."""
    return _guarded(lambda: _migrate(args))


def _guarded(command: Callable[[], int]) -> int:
    """Run a command; an Optima error becomes one line on stderr and exit code 2."""
    try:
        return command()
    except OptimaError as exc:
        log.debug("command failed code={}", exc.code)
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


@contextmanager
def _opened(dsn: str | None, *, migrate: bool = True) -> Iterator[Store]:
    settings = Settings()
    store = open_store(
        dsn or settings.store,
        database=settings.database,
        query_timeout_s=settings.query_timeout_s,
        migrate=migrate,
    )
    try:
        yield store
    finally:
        store.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


# --- seed ---------------------------------------------------------------------------


def _seed(args: argparse.Namespace) -> int:
    from optima_bi_mcp.data.synth import SeedSpec

    spec = SeedSpec(
        seed=args.seed,
        merchants=args.merchants if args.merchants is not None else DEFAULT_MERCHANTS,
        orders=args.orders if args.orders is not None else DEFAULT_ORDERS,
        until=_parse_until(args.until),
    )
    if args.target:
        if args.store:
            raise InvalidArgumentError(
                "pass either --store or --target, not both", argument="target"
            )
        return _seed_postgres(args.target, spec, if_empty=args.if_empty)

    from optima_bi_mcp.data.seed import seed_store, store_is_empty

    with _opened(args.store) as store:
        if args.if_empty and not store_is_empty(store):
            print(f"{store.location.describe()} already holds data; nothing seeded")
            return 0
        with _progress() as bar:
            task = bar.add_task("seed", total=_SEED_STEPS)
            report = seed_store(store, spec, progress=_stepper(bar, task))
        _print_rows(f"seeded {store.location.describe()}", report.rows, report.seconds)
    return 0


def _seed_postgres(dsn: str, spec: SeedSpec, *, if_empty: bool) -> int:
    from optima_bi_mcp.data.pgload import source_is_empty
    from optima_bi_mcp.data.seed import seed_postgres

    if if_empty and not source_is_empty(dsn):
        print("the target database already holds data; nothing seeded")
        return 0
    # chDB allows one engine path per process: generate in a private scratch path.
    scratch_dir = Path(tempfile.mkdtemp(prefix="optima-bi-seed-"))
    try:
        with _opened(f"chdb://{scratch_dir}?database=seed_scratch") as scratch:
            with _progress() as bar:
                task = bar.add_task("seed", total=_POSTGRES_STEPS)
                report = seed_postgres(dsn, spec, scratch, progress=_stepper(bar, task))
            scratch.command("DROP DATABASE IF EXISTS seed_scratch SYNC")
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    _print_rows("seeded the target database", report.rows, report.seconds)
    return 0


def _stepper(bar: Progress, task: object) -> Callable[[str], None]:
    started = [False]

    def step(name: str) -> None:
        if started[0]:
            bar.advance(task)  # type: ignore[arg-type]
        started[0] = True
        bar.update(task, description=name)  # type: ignore[arg-type]

    return step


def _parse_until(text: str | None) -> date:
    if text is None:
        from datetime import UTC, datetime, timedelta

        # Yesterday: the newest whole day, so that no order lies in the future.
        return datetime.now(UTC).date() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"--until must be YYYY-MM-DD, got {text!r}") from exc


def _print_rows(title: str, rows: dict[str, int], seconds: float | None = None) -> None:
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(f"{title}{took}")
    for table, count in rows.items():
        print(f"  {table:<14} {count:>12,}")


# --- backfill, verify, migrate --------------------------------------------------------


def _backfill(args: argparse.Namespace) -> int:
    from optima_bi_mcp.data.backfill import backfill, source_tables_count

    totals = source_tables_count(args.source)
    with _opened(args.store) as store:
        with _progress() as bar:
            tasks = {name: bar.add_task(name, total=total) for name, total in totals.items()}
            report = backfill(
                store, args.source, progress=lambda table, rows: bar.advance(tasks[table], rows)
            )
        _print_rows(
            f"backfilled {store.location.describe()} at version {report.version}", report.rows
        )
    removed = {table: n for table, n in report.removed.items() if n}
    if removed:
        _print_rows("removed rows the source no longer has", removed)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from optima_bi_mcp.data.verify import verify

    with _opened(args.store) as store:
        differences = verify(store, args.source)
        where = store.location.describe()
    if not differences:
        print(f"{where} matches the source")
        return 0
    print(f"{len(differences)} differences between the source and {where}:")
    print(f"  {'table':<14} {'merchant':<36} {'measure':<22} {'source':>16} {'store':>16}")
    for d in differences:
        merchant = d.merchant or "(all)"
        print(f"  {d.table:<14} {merchant:<36} {d.measure:<22} {d.source!s:>16} {d.store!s:>16}")
    return 1


def _migrate(args: argparse.Namespace) -> int:
    from optima_bi_mcp.store.migrations import migrate

    with _opened(args.store, migrate=False) as store:
        applied = migrate(store)
        where = store.location.describe()
    if not applied:
        print(f"{where} is up to date; no migration applied")
        return 0
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    return 0
