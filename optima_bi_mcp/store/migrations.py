"""Numbered SQL migrations from `clickhouse_ddl/`, each applied exactly once.

A migration is a file `NNNN_name.sql` of statements separated by `;` at the end
of a line. Applied migrations are recorded in `schema_migrations` with a
checksum, so an edited migration is reported instead of silently skipped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from optima_bi_mcp.errors import MigrationError, StoreError
from optima_bi_mcp.store.client import Store

log = logger.bind(module=__name__)

DDL_DIR = Path(__file__).resolve().parents[2] / "clickhouse_ddl"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def available(ddl_dir: Path = DDL_DIR) -> list[Migration]:
    """Every migration file in version order."""
    found = []
    for path in sorted(ddl_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path.read_text()))
    return found


def applied(store: Store) -> dict[int, str]:
    """Applied migration versions with their checksums."""
    store.command(_LEDGER)
    rows = store.query("SELECT version, checksum FROM schema_migrations FINAL")
    return {int(v): str(c) for v, c in rows}


def pending(store: Store, ddl_dir: Path = DDL_DIR) -> list[Migration]:
    done = applied(store)
    for migration in available(ddl_dir):
        recorded = done.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            log.warning(
                "migration {} changed after it was applied (recorded checksum {})",
                migration.version,
                recorded,
            )
    return [m for m in available(ddl_dir) if m.version not in done]


def migrate(store: Store, ddl_dir: Path = DDL_DIR) -> list[Migration]:
    """Apply the pending migrations in order and return the ones applied."""
    todo = pending(store, ddl_dir)
    for migration in todo:
        try:
            for statement in migration.statements():
                store.command(statement)
        except StoreError as exc:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc.message}",
                version=migration.version,
            ) from exc
        store.insert(
            "schema_migrations",
            [(migration.version, migration.name, migration.checksum)],
            ["version", "name", "checksum"],
        )
        log.info("migration applied version={} name={}", migration.version, migration.name)
    return todo
