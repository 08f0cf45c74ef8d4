"""The seed, backfill, verify and migrate subcommands: exit codes and what they print."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from optima_bi_mcp.cli import build_parser
from optima_bi_mcp.data.commands import run_backfill, run_migrate, run_seed, run_verify
from optima_bi_mcp.data.seed import seed_store
from optima_bi_mcp.store import Store
from tests.data.conftest import SMALL, checksums


def store_dsn(root: Path, prefix: str = "cmd") -> str:
    return f"chdb://{root}?database={prefix}_{uuid.uuid4().hex[:10]}"


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `optima-bi` in its own process (it opens its own chDB path)."""
    env = {**os.environ, "OPTIMA_BI_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "optima_bi_mcp.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_migrate_prints_applied_then_up_to_date(
    chdb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`applied 0001_latest_state` on the first run, `no migration applied` on the second."""
    args = build_parser().parse_args(["migrate", "--store", store_dsn(chdb_root)])
    codes = [run_migrate(args)]
    first = capsys.readouterr().out
    codes.append(run_migrate(args))
    second = capsys.readouterr().out
    assert codes == [0, 0]
    assert "applied 0001_latest_state" in first
    assert "no migration applied" in second
    assert "applied 0" not in second


def test_seed_if_empty_leaves_a_store_with_data(
    chdb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--if-empty on a seeded store exits 0 and seeds nothing; without it, exit code 2."""
    dsn = store_dsn(chdb_root)
    seed = ["seed", "--store", dsn, "--seed", "3", "--merchants", "4", "--orders", "500"]
    assert run_seed(build_parser().parse_args([*seed, "--until", "2026-11-30"])) == 0
    assert run_seed(build_parser().parse_args([*seed, "--if-empty"])) == 0
    assert run_seed(build_parser().parse_args(seed)) == 2


def test_seed_error_goes_to_stderr(chdb_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --until is one line on stderr and exit code 2."""
    args = build_parser().parse_args(["seed", "--store", store_dsn(chdb_root), "--until", "soon"])
    code = run_seed(args)
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: --until must be YYYY-MM-DD, got 'soon'"


def test_verify_exit_codes(
    chdb_root: Path,
    make_source: Callable[[str], str],
    make_store: Callable[[str], Store],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """verify exits 0 after a backfill and 1, naming the table, once the source changed."""
    from optima_bi_mcp.data.seed import seed_postgres

    source, dsn = make_source("cmdverify"), store_dsn(chdb_root)
    seed_postgres(source, SMALL, make_store("scratch"))
    run_backfill(build_parser().parse_args(["backfill", "--source", source, "--store", dsn]))
    verify = build_parser().parse_args(["verify", "--source", source, "--store", dsn])
    before = run_verify(verify)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE products SET stock_quantity = stock_quantity - 3")
    capsys.readouterr()
    after = run_verify(verify)
    assert (before, after) == (0, 1)
    assert "products" in capsys.readouterr().out


def test_locked_store_is_a_clear_error(seeded: Store, chdb_root: Path) -> None:
    """A store this process holds gives another process exit code 2 and no traceback."""
    done = cli("migrate", "--store", f"chdb://{chdb_root}?database=other")
    assert done.returncode == 2
    assert "is held by" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_seed_target_then_backfill_equals_seed_store(
    make_source: Callable[[str], str], make_store: Callable[[str], Store]
) -> None:
    """`seed --target` (its own scratch engine) writes the rows `seed_store` writes."""
    source = make_source("cmdtarget")
    done = cli(
        "seed", "--target", source, "--seed", str(SMALL.seed), "--merchants",
        str(SMALL.merchants), "--orders", str(SMALL.orders), "--until", SMALL.until.isoformat(),
    )  # fmt: skip
    direct, loaded = make_store("direct"), make_store("loaded")
    seed_store(direct, SMALL)
    from optima_bi_mcp.data.backfill import backfill

    backfill(loaded, source)
    assert done.returncode == 0, done.stderr
    assert checksums(loaded) == checksums(direct)
