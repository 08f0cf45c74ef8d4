"""The server factory: tools, resources and prompts wired to a store, a cache and a principal.

`build_server` does all the wiring, so a test can build as many servers as it
likes. Who is calling is answered by `principal_resolver`, an async callable
given the request's `Context` that returns a `Principal` or raises
`UnauthenticatedError`. Today `commands.py` passes a fixed principal (`--as`)
or one that refuses every call; identity plugs in here with resolvers for
device-flow sessions, and for HTTP bearer tokens through the SDK's auth hooks
(`MCPServer(token_verifier=…, auth=…)`, after which the resolver reads
`mcp.server.auth.middleware.auth_context.get_access_token()`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
from cachetools import TTLCache
from loguru import logger
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent
from prometheus_client import CollectorRegistry, Counter, Histogram

from optima_bi_mcp import __version__
from optima_bi_mcp.cache.base import Compute, NullCache, ToolCache
from optima_bi_mcp.cache.scopes import data_scopes
from optima_bi_mcp.cdc.notify import ChangeBus
from optima_bi_mcp.errors import UnauthenticatedError
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp import boundary
from optima_bi_mcp.mcp.render import render
from optima_bi_mcp.mcp.tools import TOOLS, ToolSpec, sdk_tool
from optima_bi_mcp.metrics import merchant as merchant_metrics
from optima_bi_mcp.metrics import platform as platform_metrics
from optima_bi_mcp.metrics.scope import MerchantRow
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.auth.settings import AuthSettings

    from optima_bi_mcp.identity.session import DeviceSession

log = logger.bind(module=__name__)

# At most this many merchant rows are kept by the tool runner.
MERCHANT_ROWS = 10_000

PrincipalResolver = Callable[[Context], Awaitable[Principal]]

INSTRUCTIONS = (
    "Optima BI answers business questions about an e-commerce platform from its live data."
    " Merchants see their own shop (sales, products, customers, inventory); administrators"
    " also see platform figures (GMV, merchants, MRR, revenue) and must pass merchant_id to"
    " merchant tools. Call whoami when unsure who you are. Read bi://metrics for the exact"
    " definition of every figure. Money carries a currency; growth is in percent."
)


def fixed_principal(principal: Principal) -> PrincipalResolver:
    """A resolver answering every call with one principal (a local `--as` process)."""

    async def resolve(ctx: Context) -> Principal:
        return principal

    return resolve


def no_principal(reason: str) -> PrincipalResolver:
    """A resolver refusing every call with UNAUTHENTICATED and `reason`."""

    async def resolve(ctx: Context) -> Principal:
        raise UnauthenticatedError(reason)

    return resolve


class ToolMetrics:
    """Prometheus counters of calls, errors and latency per tool, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "optima_bi_tool_calls", "Tool calls", ["tool", "outcome"], registry=self.registry
        )
        self.errors = Counter(
            "optima_bi_tool_errors", "Tool errors by code", ["tool", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "optima_bi_tool_latency_seconds",
            "Tool call latency",
            ["tool"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def record(self, tool: str, seconds: float, code: str | None) -> None:
        self.calls.labels(tool, "error" if code else "ok").inc()
        self.latency.labels(tool).observe(seconds)
        if code:
            self.errors.labels(tool, code).inc()


_FRESHNESS_SQL = """
SELECT max(t) FROM (
    SELECT max(updated_at) AS t FROM orders
    UNION ALL SELECT max(updated_at) FROM products
    UNION ALL SELECT max(updated_at) FROM merchants
    UNION ALL SELECT max(updated_at) FROM subscriptions
    UNION ALL SELECT max(updated_at) FROM transfers
    UNION ALL SELECT max(source_ts) FROM cdc_sink_state
)
"""


@dataclass
class Freshness:
    """Time of the newest change in the store, remembered for a few seconds.

    The change bus knows it exactly when the CDC sink runs in this process;
    otherwise the newest source commit a sink recorded in the store, or the
    newest `updated_at` of a seeded or backfilled store, stands in for it.
    """

    store: Store
    bus: ChangeBus | None
    ttl_s: float = 5.0
    _value: datetime | None = None
    _read_at: float = field(default=-1e9)
    _reading: bool = False

    async def get(self) -> datetime | None:
        if self.bus is not None and self.bus.freshness is not None:
            return self.bus.freshness
        # One call reads it again; the others keep the last value meanwhile rather
        # than each queueing the same query behind the store's lock (under load, a
        # herd of them held cache hits behind every uncached query).
        if time.monotonic() - self._read_at > self.ttl_s and not self._reading:
            self._reading = True
            try:
                rows = await self.store.aquery(_FRESHNESS_SQL)
            finally:
                self._reading = False
            value = rows[0][0] if rows else None
            self._value = value.replace(tzinfo=UTC) if value and value.year > 1970 else None
            self._read_at = time.monotonic()
        return self._value


@dataclass
class Services:
    """What tools, resources and prompts share."""

    settings: Settings
    store: Store
    resolver: PrincipalResolver
    cache: ToolCache
    bus: ChangeBus | None
    metrics: ToolMetrics
    freshness: Freshness
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def build_server(
    settings: Settings,
    store: Store,
    *,
    principal_resolver: PrincipalResolver,
    cache: ToolCache | None = None,
    bus: ChangeBus | None = None,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
    login_session: DeviceSession | None = None,
) -> MCPServer:
    """An MCP server over `store`: every tool, resource and prompt of Optima BI.

    Identity (optional): `token_verifier` + `auth` protect streamable HTTP
    with bearer tokens (`identity.bearer`); `login_session` adds the `login`
    and `logout` tools of a stdio session (`identity.session.DeviceSession`).
    """
    from optima_bi_mcp.mcp import prompts, resources

    services = Services(
        settings=settings,
        store=store,
        resolver=principal_resolver,
        cache=cache if cache is not None else NullCache(),
        bus=bus,
        metrics=ToolMetrics(),
        freshness=Freshness(store, bus),
    )
    runner = ToolRunner(services)
    server: MCPServer = MCPServer(
        "optima-bi",
        title="Optima BI",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=[sdk_tool(spec, runner.call) for spec in TOOLS],
        token_verifier=token_verifier,
        auth=auth,
    )
    if login_session is not None:
        from optima_bi_mcp.identity.tools import register_login_tools

        register_login_tools(server, login_session)
    resources.register(server, services)
    prompts.register(server)
    server.optima = services  # type: ignore[attr-defined]
    return server


def services_of(server: MCPServer) -> Services:
    """The shared services of a server built by `build_server`."""
    return server.optima  # type: ignore[attr-defined, no-any-return]


class ToolRunner:
    """Runs one tool call: principal, arguments, scope, cache, metric, answer.

    Every merchant answer needs the merchant's row (its currency; NOT_FOUND when
    there is none), one store query that cost about a fifth of a small answer.
    The runner keeps the rows it read under the cache's versions of the
    merchant's `merchants` scope (`ToolCache.known_versions`), so a change to
    that row is read again by the next answer, exactly as L1 answers are retired.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._rows: TTLCache[tuple[UUID, tuple[int, ...]], MerchantRow] = TTLCache(
            # As long as L1 keeps answers: that bounds how old either can be when
            # changes cannot reach this process (a sink elsewhere, Redis down).
            maxsize=MERCHANT_ROWS,
            ttl=services.settings.l1_ttl_s,
        )
        self._rows_lock = threading.Lock()  # worker threads read and fill it

    async def call(self, spec: ToolSpec, ctx: Context, arguments: dict[str, Any]) -> CallToolResult:
        started = time.perf_counter()
        meta: dict[str, Any] = {"tool": spec.name, "source": spec.source, "cache": "none"}
        code: str | None = None
        try:
            content, meta["cache"] = await self._answer(spec, ctx, arguments)
            result = CallToolResult(
                content=[TextContent(type="text", text=render(spec.name, content))],
                structured_content=content,
            )
        except Exception as exc:
            error = boundary.error_of(exc, tool=spec.name)
            code = error["code"]
            result = boundary.error_result(error)
        elapsed = time.perf_counter() - started
        meta["duration_ms"] = round(elapsed * 1000, 2)
        meta["freshness"] = await self._freshness()
        result.meta = meta
        self.services.metrics.record(spec.name, elapsed, code)
        log.info(
            "tool call tool={} outcome={} cache={} duration_ms={}",
            spec.name,
            code or "ok",
            meta["cache"],
            meta["duration_ms"],
        )
        return result

    async def _answer(
        self, spec: ToolSpec, ctx: Context, arguments: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        principal = await self.services.resolver(ctx)
        args = spec.arguments.model_validate(arguments)
        if spec.kind == "identity":
            return _whoami(principal), "none"
        if spec.kind == "platform":
            principal.require_admin()
            merchant_id: UUID | None = None
            normalized = args.model_dump(mode="json")
            compute = self._platform(spec, args)
        else:
            merchant_id = principal.merchant_scope(getattr(args, "merchant_id", None))
            normalized = {**args.model_dump(mode="json"), "merchant_id": str(merchant_id)}
            compute = self._merchant(spec, args, merchant_id)
        scopes = data_scopes(spec.name, normalized, merchant_id, datetime.now(UTC))
        content, layer = await self.services.cache.get_or_compute(
            spec.name, normalized, principal.scope_key, scopes, compute
        )
        return content, layer

    def _merchant(self, spec: ToolSpec, args: Any, merchant_id: UUID) -> Compute:
        store = self.services.store
        metric = getattr(merchant_metrics, spec.name)

        async def compute() -> dict[str, Any]:
            # Every computation, a refresh of the answer included, starts here on the
            # event loop: the row it may reuse is the one current now.
            known = self._known_row(merchant_id)

            def run() -> dict[str, Any]:
                # Every merchant metric starts with merchant_info, which answers NOT_FOUND
                # for an unknown merchant before any figure is computed.
                now = datetime.now(UTC)
                return _dump(metric(store, merchant_id, args, now, known=known))

            return await anyio.to_thread.run_sync(run)

        return compute

    def _known_row(self, merchant_id: UUID) -> _KnownRow | None:
        """Where a computation about to start finds and keeps the merchant's row.

        The versions are read now, on the event loop, and a row read in the worker
        thread is kept under them: a change noticed meanwhile raises them, so that
        row, which may predate the change, is never found again.
        """
        versions = self.services.cache.known_versions((f"merchants:{merchant_id}",))
        if versions is None:
            return None
        return _KnownRow(self._rows, self._rows_lock, (merchant_id, versions))

    def _platform(self, spec: ToolSpec, args: Any) -> Any:
        store = self.services.store

        def run() -> dict[str, Any]:
            metric = getattr(platform_metrics, spec.name)
            return _dump(metric(store, args, datetime.now(UTC)))

        return _in_thread(run)

    async def _freshness(self) -> str | None:
        try:
            value = await self.services.freshness.get()
        except Exception as exc:
            # An outage is already reported by the call itself; freshness is a nicety.
            log.warning("freshness unknown: {}", type(exc).__name__)
            return None
        return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class _KnownRow:
    """One merchant's row in the runner's rows, under the versions a computation read."""

    rows: TTLCache[tuple[UUID, tuple[int, ...]], MerchantRow]
    lock: threading.Lock
    key: tuple[UUID, tuple[int, ...]]

    def get(self) -> MerchantRow | None:
        with self.lock:
            return self.rows.get(self.key)

    def put(self, row: MerchantRow) -> None:
        with self.lock:
            self.rows[self.key] = row


def _in_thread(run: Callable[[], dict[str, Any]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    # Metric functions are synchronous store queries: run them off the event loop.
    async def compute() -> dict[str, Any]:
        return await anyio.to_thread.run_sync(run)

    return compute


def _dump(result: Any) -> dict[str, Any]:
    return result.model_dump(mode="json")  # type: ignore[no-any-return]


def _whoami(principal: Principal) -> dict[str, Any]:
    return {
        "role": principal.role,
        "merchant_id": str(principal.merchant_id) if principal.merchant_id else None,
        "subject": principal.subject,
        "email": principal.email,
        "environment": principal.environment,
    }
