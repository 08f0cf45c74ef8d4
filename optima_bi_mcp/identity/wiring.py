"""What `build_server` needs from identity, per transport, in one call each.

Both yield keyword arguments for `optima_bi_mcp.mcp.server.build_server`, or
an empty dict when no issuer is configured (the caller keeps its `--as`
resolver, which `bearer.local_principal` refuses once an issuer is set):

    async with stdio_identity(settings) as identity:
        server = build_server(settings, store, **{"principal_resolver": local, **identity})
        await server.run_stdio_async()

    async with http_identity(settings, "http://127.0.0.1:8000/mcp") as identity:
        server = build_server(settings, store, **{"principal_resolver": local, **identity})
        # serve server.streamable_http_app(...) while inside the block
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from optima_bi_mcp.identity.bearer import (
    auth_settings,
    build_bearer_verifier,
    http_principal_resolver,
)
from optima_bi_mcp.identity.config import IdentityConfig
from optima_bi_mcp.identity.session import HTTP_TIMEOUT_S, DeviceSession
from optima_bi_mcp.settings import Settings


@asynccontextmanager
async def stdio_identity(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """A device-flow session: its resolver and the `login`/`logout` tools."""
    config = IdentityConfig.from_settings(settings)
    if config is None:
        yield {}
        return
    async with DeviceSession(config) as session:
        yield {"principal_resolver": session.resolve, "login_session": session}


@asynccontextmanager
async def http_identity(settings: Settings, resource_url: str) -> AsyncIterator[dict[str, Any]]:
    """Bearer validation for streamable HTTP served at `resource_url` (the /mcp URL)."""
    config = IdentityConfig.from_settings(settings)
    if config is None:
        yield {}
        return
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
        verifier = await build_bearer_verifier(config, http)
        yield {
            "principal_resolver": http_principal_resolver(config),
            "token_verifier": verifier,
            "auth": auth_settings(config, resource_url),
        }
