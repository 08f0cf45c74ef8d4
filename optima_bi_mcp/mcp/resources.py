"""Resources: metric definitions, the store's schema and status, a merchant overview."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources as package_files
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
from loguru import logger
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from optima_bi_mcp.errors import InvalidArgumentError, OptimaError
from optima_bi_mcp.metrics import models as m
from optima_bi_mcp.store.migrations import available
from optima_bi_mcp.store.rollups import STORE_TABLES

if TYPE_CHECKING:
    from optima_bi_mcp.mcp.server import Services

log = logger.bind(module=__name__)


def register(server: MCPServer, services: Services) -> None:
    """Add every resource of Optima BI to `server`."""

    @server.resource(
        "bi://metrics",
        name="metric-definitions",
        title="Metric definitions",
        description="How every figure the tools report is defined (counted orders, periods…).",
        mime_type="text/markdown",
    )
    def metric_definitions() -> str:
        return definitions()

    @server.resource(
        "bi://schema",
        name="store-schema",
        title="Store schema",
        description="Tables and rollups of the store, with their columns and types.",
        mime_type="text/markdown",
    )
    async def store_schema() -> str:
        return await _guard(schema_markdown(services))

    @server.resource(
        "bi://status",
        name="status",
        title="Server status",
        description="Store location, row counts, data freshness, migrations and cache statistics.",
        mime_type="application/json",
    )
    async def status() -> str:
        return json.dumps(await _guard(status_of(services)), indent=2, default=str)

    @server.resource(
        "bi://merchants/{merchant_id}/overview",
        name="merchant-overview",
        title="Merchant overview",
        description="One merchant at a glance: last 30 days of sales, customers and stock.",
        mime_type="application/json",
    )
    async def merchant_overview(merchant_id: str, ctx: Context) -> str:
        overview = await _guard(overview_of(services, ctx, merchant_id))
        return json.dumps(overview, indent=2)


def definitions() -> str:
    """The metric definitions shipped with the package."""
    return package_files.files("optima_bi_mcp.mcp").joinpath("definitions.md").read_text()


async def _guard(pending: Any) -> Any:
    # Resource errors reach the client as protocol errors: keep our words, drop internals.
    try:
        return await pending
    except OptimaError as exc:
        raise ResourceError(f"{exc.code}: {exc.message}") from exc


async def schema_markdown(services: Services) -> str:
    rows = await services.store.aquery(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}"
        " ORDER BY table, position",
        {"db": services.store.database},
    )
    lines = [f"# Store schema (database `{services.store.database}`)"]
    current = None
    for table, name, kind in rows:
        if table != current:
            lines += ["", f"## {table}", "", "| column | type |", "| --- | --- |"]
            current = table
        lines.append(f"| {name} | {kind} |")
    return "\n".join(lines) + "\n"


async def status_of(services: Services) -> dict[str, Any]:
    """What `bi://status` and `/readyz` report."""
    store = services.store
    counts = {}
    for table in STORE_TABLES:
        # Table names come from code, never from a request.
        rows = await store.aquery(f"SELECT count() FROM {table} FINAL")
        counts[table] = int(rows[0][0])
    applied = await store.aquery("SELECT version, name FROM schema_migrations FINAL ORDER BY 1")
    freshness = await services.freshness.get()
    return {
        "store": store.location.describe(),
        "rows": counts,
        "freshness": freshness.isoformat() if freshness else None,
        "migrations": {
            "applied": [f"{v:04d}_{n}" for v, n in applied],
            "pending": [
                f"{x.version:04d}_{x.name}" for x in available() if x.version not in dict(applied)
            ],
        },
        "cache": services.cache.stats(),
        "started_at": services.started_at.isoformat(),
    }


async def overview_of(services: Services, ctx: Context, merchant_id: str) -> dict[str, Any]:
    try:
        requested = UUID(merchant_id)
    except ValueError as exc:
        raise InvalidArgumentError("merchant_id must be a UUID", argument="merchant_id") from exc
    principal = await services.resolver(ctx)
    scoped = principal.merchant_scope(requested)

    def read() -> dict[str, Any]:
        from optima_bi_mcp.metrics import merchant

        store, now = services.store, datetime.now(UTC)
        name, currency = merchant.merchant_info(store, scoped)
        sales = merchant.get_sales(
            store, scoped, m.GetSalesArgs.model_validate({"days": 30, "bucket": "week"}), now
        )
        customers = merchant.customer_summary(
            store, scoped, m.CustomerSummaryArgs.model_validate({"days": 30}), now
        )
        stock = merchant.inventory_status(
            store, scoped, m.InventoryStatusArgs.model_validate({"limit": 1}), now
        )
        return {
            "merchant_id": str(scoped),
            "name": name,
            "currency": currency,
            "sales_30d": sales.model_dump(mode="json", exclude={"series"}),
            "customers_30d": customers.model_dump(mode="json"),
            "inventory_counts": stock.counts.model_dump(mode="json"),
        }

    return await anyio.to_thread.run_sync(read)
