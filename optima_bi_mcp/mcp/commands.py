"""`optima-bi serve` and `optima-bi call`.

Who a local process acts as comes from `--as` (a process flag, never something
a request carries). With streamable HTTP it is accepted only on a loopback
address, since anyone who can reach the port acts as that principal. Without
`--as` and without identity configured, every tool call answers UNAUTHENTICATED.
With `OPTIMA_BI_ISSUER` set, `identity.wiring` supplies the principal instead:
a device-flow session for stdio, bearer tokens for HTTP. A serving process has
the tiered cache (`cache.tiered.create_cache`) and, with `--sink`, runs the CDC
sink in a thread whose change notices reach the cache and `_meta.freshness`.

`call` runs one tool through the real server with an in-memory MCP client. If
another process holds the embedded store and serves it over HTTP (its URL is
in the store's owner file), `call` and stdio `serve` go through that server
instead and act as *that server's* principal: a request never carries a
principal of its own, and an `--as` naming another principal is refused
(`proxy.py`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from loguru import logger
from mcp import Client

from optima_bi_mcp.errors import InvalidArgumentError, OptimaError, StoreError
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import PrincipalResolver, build_server, fixed_principal, no_principal
from optima_bi_mcp.mcp.tools import TOOLS_BY_NAME
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store, open_store
from optima_bi_mcp.store.client import StoreLocation, claim_owner, read_owner

log = logger.bind(module=__name__)

NO_PRINCIPAL = (
    "this server has no principal: start it with --as admin or --as merchant:<uuid>"
    " (local use), or configure OPTIMA_BI_ISSUER and run `optima-bi login`"
)


def settings_from(ns: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(ns, "store", None):
        settings = settings.model_copy(update={"store": ns.store})
    return settings


def principal_resolver(
    settings: Settings, flag: str | None, *, http_host: str | None = None
) -> PrincipalResolver:
    """The resolver of a process started with `--as flag` (or without it).

    Raises InvalidArgumentError when `--as` is not allowed here.
    """
    if flag is None:
        # Without an issuer nobody can be identified, so every call is refused;
        # with one, `identity.wiring` replaces this resolver when serving.
        return no_principal(NO_PRINCIPAL)
    if settings.issuer:
        raise InvalidArgumentError(
            "--as is for local use without an issuer; with OPTIMA_BI_ISSUER set, log in instead",
            argument="as",
        )
    if http_host is not None:
        from optima_bi_mcp.mcp.http import is_loopback

        if not is_loopback(http_host):
            raise InvalidArgumentError(
                f"--as with --http is only allowed on a loopback host, not {http_host!r}:"
                " anyone reaching the port would act as that principal",
                argument="as",
            )
    return fixed_principal(Principal.parse(flag, settings.environment))


def open_settings_store(settings: Settings) -> Store:
    return open_store(
        settings.store,
        database=settings.database,
        query_timeout_s=settings.query_timeout_s,
        connections=settings.store_connections or None,
    )


def run_serve(ns: argparse.Namespace) -> int:
    """Serve MCP over stdio (default) or streamable HTTP."""
    settings = settings_from(ns)
    try:
        resolver = principal_resolver(
            settings, ns.principal, http_host=ns.host if ns.http else None
        )
        store = open_settings_store(settings)
    except StoreError as exc:
        url = None if ns.http else serving_url(settings)
        if url is None:
            print(f"optima-bi serve: {exc.message}", file=sys.stderr)
            return 2
        return _serve_proxy(url, ns.principal)
    except OptimaError as exc:
        print(f"optima-bi serve: {exc.message}", file=sys.stderr)
        return 2
    route_stdlib_logging()
    try:
        if ns.http:
            anyio.run(
                _serve_http,
                *(settings, store, resolver, ns.host, ns.port, ns.sink),
                backend_options=event_loop_options(),
            )
        else:
            anyio.run(_serve_stdio, settings, store, resolver, ns.sink)
    except OptimaError as exc:
        print(f"optima-bi serve: {exc.message}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


@asynccontextmanager
async def runtime(settings: Settings, store: Store, sink: bool) -> AsyncIterator[dict[str, Any]]:
    """The cache (L1, plus L2 with Redis) and change bus of a serving process.

    With `sink`, the CDC sink runs in this process, in a thread of its own, and
    its change notices reach the cache and the answers' freshness.
    """
    from optima_bi_mcp.cache.tiered import create_cache
    from optima_bi_mcp.cdc.notify import ChangeBus

    bus = ChangeBus()
    cache = await create_cache(settings, bus)
    running = None
    try:
        if sink:
            from optima_bi_mcp.cdc.sink import Sink

            running = Sink(settings, store, bus)
            running.start()
        yield {"cache": cache, "bus": bus}
    finally:
        if running is not None:
            await anyio.to_thread.run_sync(running.stop)
        await cache.aclose()


async def _serve_stdio(
    settings: Settings, store: Store, local: PrincipalResolver, sink: bool
) -> None:
    from optima_bi_mcp.identity.wiring import stdio_identity

    # With an issuer, identity supplies the resolver (a device-flow session) and
    # the login/logout tools; without one, the local `--as` resolver stays.
    async with stdio_identity(settings) as identity, runtime(settings, store, sink) as shared:
        arguments = {"principal_resolver": local, **identity, **shared}
        server = build_server(settings, store, **arguments)
        log.info("serving MCP over stdio store={}", store.location.describe())
        await server.run_stdio_async()


def _serve_proxy(url: str, principal: str | None) -> int:
    from optima_bi_mcp.mcp.proxy import build_proxy, check_principal

    try:
        acting = anyio.run(check_principal, url, principal)
    except OptimaError as exc:
        print(f"optima-bi serve: {exc.message}", file=sys.stderr)
        return 2
    route_stdlib_logging()
    log.info("the store is held by {}; serving stdio through it as {}", url, acting)
    anyio.run(build_proxy(url).run_stdio_async)
    return 0


async def _serve_http(
    settings: Settings, store: Store, local: PrincipalResolver, host: str, port: int, sink: bool
) -> None:
    from optima_bi_mcp.identity.wiring import http_identity
    from optima_bi_mcp.mcp.http import bind, serve_http, url_of

    sock = bind(host, port)
    # With an issuer, identity supplies bearer-token validation and its resolver.
    identity_for = http_identity(settings, url_of(sock))
    async with identity_for as identity, runtime(settings, store, sink) as shared:
        arguments = {"principal_resolver": local, **identity, **shared}
        server = build_server(settings, store, **arguments)
        await serve_http(server, sock, on_ready=lambda url: claim_owner(store.location, url))


def event_loop_options() -> dict[str, Any]:
    """uvloop for the serving event loop when it is installed (`uvicorn[standard]` brings it).

    Under load the HTTP server spends most of its time in the event loop
    (sockets, tasks, memory streams), which uvloop runs in C.
    """
    return {"use_uvloop": True} if importlib.util.find_spec("uvloop") else {}


def run_call(ns: argparse.Namespace) -> int:
    """Run one tool and print its structured result; non-zero exit on a tool error."""
    try:
        arguments = _parse_arguments(ns.args)
        if ns.tool not in TOOLS_BY_NAME:
            raise InvalidArgumentError(
                f"unknown tool {ns.tool!r}; tools: {', '.join(TOOLS_BY_NAME)}", argument="tool"
            )
    except InvalidArgumentError as exc:
        _print({"error": exc.to_dict()}, ns)
        return 2
    route_stdlib_logging()
    result = anyio.run(call_tool, settings_from(ns), ns.principal, ns.tool, arguments)
    _print(result["structured"], ns, meta=result["meta"])
    return 1 if result["is_error"] else 0


async def call_tool(
    settings: Settings, principal: str | None, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """One tool call through a real server: in process, or the one holding the store."""
    try:
        resolver = principal_resolver(settings, principal)
        store = open_settings_store(settings)
    except StoreError as exc:
        url = serving_url(settings)
        if url is None:
            return _failure(exc)
        from optima_bi_mcp.mcp.proxy import check_principal

        try:
            await check_principal(url, principal)
        except OptimaError as refused:
            return _failure(refused)
        return await _call_via(url, tool, arguments)
    except OptimaError as exc:
        return _failure(exc)
    try:
        server = build_server(settings, store, principal_resolver=resolver)
        return await _call_via(server, tool, arguments)
    finally:
        store.close()


async def _call_via(target: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with Client(target) as client:
        result = await client.call_tool(tool, arguments)
    structured = result.structured_content
    if structured is None:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        structured = {"error": {"code": "INTERNAL", "message": text, "details": {}}}
    return {"structured": structured, "meta": result.meta or {}, "is_error": result.is_error}


def serving_url(settings: Settings) -> str | None:
    """The MCP URL of the live process holding the embedded store, if it serves HTTP."""
    # chDB does not always say "lock" when another process holds the path, so the
    # owner file decides rather than the error's text.
    location = StoreLocation.parse(settings.store, settings.database)
    owner = read_owner(location) if location.embedded else None
    url = owner.get("url") if owner else None
    return str(url) if url else None


def route_stdlib_logging() -> None:
    """Send the SDK's and uvicorn's stdlib logging through loguru (stderr, maybe JSON)."""

    class ToLoguru(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = record.levelname if record.levelname in _LEVELS else record.levelno
            logger.bind(module=record.name).opt(exception=record.exc_info).log(
                level, record.getMessage()
            )

    logging.basicConfig(handlers=[ToLoguru()], level=logging.INFO, force=True)


_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _failure(exc: OptimaError) -> dict[str, Any]:
    return {"structured": {"error": exc.to_dict()}, "meta": {}, "is_error": True}


def _parse_arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"--args is not JSON: {exc}", argument="args") from exc
    if not isinstance(value, dict):
        raise InvalidArgumentError("--args must be a JSON object", argument="args")
    return value


def _print(structured: Any, ns: argparse.Namespace, meta: dict[str, Any] | None = None) -> None:
    if ns.json:
        print(json.dumps(structured, default=str))
        return
    if ns.pretty:
        from optima_bi_mcp.mcp.pretty import print_pretty

        print_pretty(ns.tool, structured, meta or {})
        return
    print(json.dumps(structured, indent=2, default=str))
    if meta:
        shown = {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol")}
        print(f"_meta: {json.dumps(shown)}", file=sys.stderr)
