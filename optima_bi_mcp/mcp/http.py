"""Streamable HTTP: the MCP endpoint at /mcp plus /healthz, /readyz and /metrics."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn
from loguru import logger
from mcp.server.mcpserver import MCPServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from optima_bi_mcp.errors import OptimaError
from optima_bi_mcp.mcp.server import services_of
from optima_bi_mcp.store.migrations import available

log = logger.bind(module=__name__)


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_app(server: MCPServer, host: str) -> Starlette:
    """The Starlette app serving `server` at /mcp with health, readiness and metrics."""
    services = services_of(server)

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @server.custom_route("/readyz", methods=["GET"])
    async def readyz(request: Request) -> Response:
        try:
            rows = await services.store.aquery("SELECT version FROM schema_migrations FINAL")
        except OptimaError as exc:
            return JSONResponse({"ready": False, "reason": exc.message}, status_code=503)
        missing = sorted({x.version for x in available()} - {int(r[0]) for r in rows})
        if missing:
            reason = f"migrations not applied: {missing}; run `optima-bi migrate`"
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True})

    @server.custom_route("/metrics", methods=["GET"])
    async def metrics(request: Request) -> Response:
        body = generate_latest(services.metrics.registry)
        cache_metrics = getattr(services.cache, "metrics", None)
        if cache_metrics is not None:
            body += generate_latest(cache_metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # JSON responses: a tool call is answered by one JSON body rather than an SSE
    # stream (clients accept either). Our tools send nothing back to the client while
    # they run (no progress, sampling or elicitation), so the stream bought nothing
    # and cost a task, a memory stream and chunked framing per call.
    return server.streamable_http_app(host=host, json_response=True)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Naming the protocol matters: asyncio turns Nagle off (TCP_NODELAY) only on
    # sockets whose proto is IPPROTO_TCP, and accepted sockets inherit it. With
    # proto 0 every response written in two parts (headers, then body) waited for
    # the client's delayed ACK, about 40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/mcp"


async def serve_http(
    server: MCPServer, sock: socket.socket, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve streamable HTTP on an already bound socket until cancelled or interrupted."""
    host = sock.getsockname()[0]
    app = http_app(server, host)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    url = url_of(sock)
    if on_ready is not None:
        on_ready(url)
    log.info("serving MCP over streamable HTTP url={}", url)
    await uvicorn.Server(config).serve(sockets=[sock])
