"""The build_server keyword arguments identity hands to each transport."""

from __future__ import annotations

import httpx

from optima_bi_mcp.identity.wiring import http_identity, stdio_identity
from optima_bi_mcp.mcp.server import build_server
from optima_bi_mcp.settings import Settings

RESOURCE = "http://127.0.0.1:8000/mcp"


async def test_without_issuer_identity_adds_nothing():
    """No issuer: both transports keep the caller's local resolver."""
    settings = Settings(issuer=None)
    async with stdio_identity(settings) as stdio, http_identity(settings, RESOURCE) as http:
        assert (stdio, http) == ({}, {})


async def test_stdio_identity_adds_login_tools(idp, make_store, tmp_path, monkeypatch):
    """With an issuer, a stdio server gets the login and logout tools."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    settings = Settings(issuer=idp.issuer, token_dir=tmp_path)
    async with stdio_identity(settings) as identity:
        server = build_server(settings, make_store("wiring"), **identity)
        names = {tool.name for tool in await server.list_tools()}
    assert {"login", "logout", "whoami"} <= names


async def test_http_identity_protects_the_endpoint(idp, make_store):
    """With an issuer, the streamable HTTP app refuses a request without a token."""
    settings = Settings(issuer=idp.issuer)
    async with http_identity(settings, RESOURCE) as identity:
        server = build_server(settings, make_store("wiring"), **identity)
        app = server.streamable_http_app(host="127.0.0.1")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            response = await c.post("/mcp", json={})
    assert response.status_code == 401
