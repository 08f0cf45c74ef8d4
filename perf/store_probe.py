"""Store-side steps of the harness, each run in its own process (chDB: one path per process).

`python -m perf.store_probe fingerprint DSN` prints the store's fingerprint
(the same counts and sums as `dataset.FINGERPRINT_SQL`, over the latest state);
`python -m perf.store_probe info DSN` prints the engine version and the
active parts and size of every table; `backfill DSN SOURCE_DSN` fills the store
from PostgreSQL.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from optima_bi_mcp.store import open_store
from optima_bi_mcp.store.client import StoreLocation
from perf.dataset import FINGERPRINT_SQL, normalize

_PARTS_SQL = """
SELECT table, count(), sum(rows), sum(bytes_on_disk)
FROM system.parts
WHERE database = {db:String} AND active
GROUP BY table ORDER BY table
"""


def fingerprint(dsn: str) -> dict[str, list[str]]:
    location = StoreLocation.parse(dsn)
    if location.path is not None and not location.path.exists():
        return {}
    store = open_store(dsn, migrate=False)
    try:
        tables = {r[0] for r in store.query("SHOW TABLES")}
        if "orders" not in tables:
            return {}
        return {
            table: [normalize(v) for v in store.query(_final(query))[0]]
            for table, query in FINGERPRINT_SQL.items()
        }
    finally:
        store.close()


def _final(query: str) -> str:
    """The fingerprint query over the latest state (FINAL) of the store's table."""
    head, _, table = query.rpartition(" FROM ")
    return f"{head} FROM {table} FINAL".replace("count(*)", "count()")


def info(dsn: str) -> dict[str, Any]:
    store = open_store(dsn, migrate=False)
    try:
        version = store.query("SELECT version()")[0][0]
        parts = store.query(_PARTS_SQL, {"db": store.database})
    finally:
        store.close()
    return {
        "clickhouse": str(version),
        "parts": {r[0]: {"parts": r[1], "rows": r[2], "bytes": r[3]} for r in parts},
    }


def backfill(dsn: str, source_dsn: str) -> dict[str, Any]:
    """Load the source into the store (`data.backfill`, as `optima-bi backfill` does)."""
    from optima_bi_mcp.data.backfill import backfill as load

    store = open_store(dsn)
    try:
        report = load(store, source_dsn)
    finally:
        store.close()
    return {"version": report.version, "rows": report.rows}


def main(argv: list[str]) -> int:
    command, *args = argv
    commands = {"fingerprint": fingerprint, "info": info, "backfill": backfill}
    print(json.dumps(commands[command](*args), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
