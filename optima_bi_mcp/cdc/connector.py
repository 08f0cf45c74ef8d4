"""Registering the Debezium connector with Kafka Connect's REST API.

`connectors/commerce-postgres.json` is the reference configuration (see
connectors/README.md); `connector_config` loads it with per-deployment
overrides (database, port, topic prefix, slot), and `register` PUTs it, which
creates or updates the connector idempotently.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from loguru import logger

from optima_bi_mcp.errors import SinkError

log = logger.bind(module=__name__)

CONNECTOR_JSON = Path(__file__).resolve().parents[2] / "connectors" / "commerce-postgres.json"


def connector_config(path: Path = CONNECTOR_JSON, **overrides: str) -> dict[str, str]:
    """The connector config from `path` with `overrides` (keys with `_` for `.`)."""
    config: dict[str, str] = json.loads(path.read_text())
    config.update({key.replace("_", "."): str(value) for key, value in overrides.items()})
    return config


def register(connect_url: str, name: str, config: dict[str, Any], timeout: float = 300) -> None:
    """Create or update connector `name` and wait until it and its task run.

    A new connector creates its replication slot first, and PostgreSQL makes
    that wait for every transaction open in the cluster at that moment (any
    database), so a long bulk load elsewhere delays the start.
    """
    url = f"{connect_url.rstrip('/')}/connectors/{name}"
    response = httpx.put(f"{url}/config", json=config, timeout=30)
    if response.status_code >= 300:
        raise SinkError(f"Connect refused connector {name}: {response.text[:500]}")
    deadline = time.monotonic() + timeout
    state: Any = None
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/status", timeout=10).json()
        tasks = state.get("tasks") or []
        if tasks and any(t.get("state") == "FAILED" for t in tasks):
            raise SinkError(f"connector {name} failed: {tasks[0].get('trace', '')[:2000]}")
        running = state.get("connector", {}).get("state") == "RUNNING"
        if running and tasks and all(t.get("state") == "RUNNING" for t in tasks):
            log.info("connector running name={}", name)
            return
        time.sleep(0.2)
    raise SinkError(
        f"connector {name} did not start within {timeout}s (is a long transaction open in "
        f"the source cluster? slot creation waits for it): {state}"
    )


def delete(connect_url: str, name: str) -> None:
    """Delete connector `name` if it exists (its replication slot stays; drop it apart)."""
    response = httpx.delete(f"{connect_url.rstrip('/')}/connectors/{name}", timeout=30)
    if response.status_code not in (200, 204, 404):
        raise SinkError(f"Connect could not delete connector {name}: {response.text[:500]}")


def drop_slot(conn: psycopg.Connection[Any], slot: str) -> None:
    """Drop a deleted connector's replication slot.

    The slot stays active until the connector's task has let go of it; a task
    still creating it (waiting for transactions open elsewhere in the cluster)
    never does, so after a grace period its backend, ours, is ended.
    """
    for attempt in range(100):
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None:
            return
        if row[0] is None:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return
        if attempt == 50:
            conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        conn.execute("SELECT pg_sleep(0.1)")
