"""Through the whole stream: PostgreSQL → Debezium → Kafka → sink → notice → cached answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.cdc.notify import ChangeBus
from optima_bi_mcp.cdc.sink import Sink
from optima_bi_mcp.data.backfill import lsn_to_int
from optima_bi_mcp.data.tables import TABLES
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from tests.cache.conftest import MakeCache
from tests.cdc.conftest import CdcSource, make_cdc_source, stack  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.stack, pytest.mark.asyncio(loop_scope="session")]

CATCH_UP_S = 120.0
COUNTED = "('paid', 'shipped', 'delivered', 'completed')"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = CATCH_UP_S) -> None:
    """Poll `condition`; fail naming `what` after `timeout` seconds."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.05)


@pytest.fixture(scope="module")
def streamed(
    make_cdc_source: Callable[..., CdcSource],  # noqa: F811
    make_store: Callable[[str], Store],
) -> Iterator[tuple[CdcSource, Store, Sink]]:
    """A small source streamed into a store by a running sink, caught up with its snapshot."""
    source = make_cdc_source(seed=9, merchants=3, orders_per_merchant=60)
    store = make_store("cachesink")
    sink = Sink(source.settings(), store, ChangeBus())
    sink.start()
    with psycopg.connect(source.dsn) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t.name}").fetchone() for t in TABLES]

    rows = sum(c[0] for c in counts if c is not None)
    # The sink counts a batch's events after announcing it: every snapshot notice is out.
    wait_until(lambda: sink.status()["events"] >= rows, "the snapshot of every table")
    yield source, store, sink
    sink.stop()


def change(source: CdcSource, sink: Sink, status: str, old: str, merchant: Any) -> None:
    """Move one of the merchant's orders in an `old` status to `status` on the source, then
    wait until the sink has applied (and so announced) it."""
    with psycopg.connect(source.dsn, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert lsn is not None
        updated = conn.execute(
            "UPDATE orders SET status = %s, updated_at = now() WHERE id = (SELECT id FROM orders"
            f" WHERE merchant_id = %s AND status IN {old} ORDER BY id LIMIT 1)",
            (status, merchant),
        )
        assert updated.rowcount == 1
    wait_until(
        lambda: sink.status()["applied_lsn"].get("orders", 0) >= lsn_to_int(lsn[0]),
        "the sink to apply the change",
    )


async def ask(server: MCPServer, args: dict[str, Any]) -> tuple[Any, str]:
    async with Client(server) as client:
        result = await client.call_tool("get_sales", args)
    assert not result.is_error, result.content
    figures = {k: v for k, v in result.structured_content.items() if k != "period"}
    return figures, (result.meta or {})["cache"]


async def test_sink_changes_refresh_only_what_they_alter(
    streamed: tuple[CdcSource, Store, Sink], make_cache: MakeCache, redis_url: str
) -> None:
    """Completing a paid order leaves get_sales in L1; refunding one makes it fresh at once."""
    source, store, sink = streamed
    cache = await make_cache(redis_url=redis_url, invalidation_interval_ms=0)
    cache.attach(sink.bus)
    admin = fixed_principal(Principal.parse("admin"))
    cached = build_server(Settings(), store, principal_resolver=admin, cache=cache, bus=sink.bus)
    uncached = build_server(Settings(), store, principal_resolver=admin, bus=sink.bus)
    with psycopg.connect(source.dsn) as conn:
        found = conn.execute(
            f"SELECT merchant_id FROM orders WHERE status IN {COUNTED} "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    assert found is not None
    m = found[0]
    args = {"merchant_id": str(m), "days": 730, "bucket": "month"}
    await ask(cached, args)
    before = await ask(cached, args)

    change(source, sink, "completed", "('paid', 'shipped', 'delivered')", m)
    assert await ask(cached, args) == before == ((await ask(uncached, args))[0], "L1")

    change(source, sink, "refunded", COUNTED, m)
    after = await ask(cached, args)
    assert after == ((await ask(uncached, args))[0], "none")
    assert after[0]["revenue"] < before[0]["revenue"]
