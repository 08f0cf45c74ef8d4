"""`optima-bi serve --http` with an issuer, as a subprocess: bearer tokens from the dev IdP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from optima_bi_mcp.identity.config import discover
from optima_bi_mcp.identity.oauth import poll_device_token, request_device_authorization
from tests.mcp import mcp_dataset as dataset

from .conftest import MERCHANT_B, DevIdp, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path


@pytest.fixture(scope="module")
def served(idp: DevIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`optima-bi serve --http` over its own store of the MCP tests' dataset, trusting the IdP."""
    directory = tmp_path_factory.mktemp("served")
    dsn = f"chdb://{directory / 'store'}"
    dataset_script = str(ROOT / "tests" / "mcp" / "mcp_dataset.py")
    subprocess.run([sys.executable, dataset_script, dsn], check=True, capture_output=True)
    port = free_port()
    env = {
        **os.environ,
        "OPTIMA_BI_ISSUER": idp.issuer,
        "OPTIMA_BI_LOG_LEVEL": "DEBUG",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    args = [sys.executable, "-m", "optima_bi_mcp.cli", "serve", "--http", "--port", str(port)]
    stderr_path = directory / "serve.stderr"
    with stderr_path.open("wb") as err:
        process = subprocess.Popen([*args, "--store", dsn], env=env, stderr=err)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url), timeout=90, what="the server to answer")
    yield Served(url, process, stderr_path)
    process.terminate()
    process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


async def device_flow_token(idp: DevIdp, identity_config, user: str) -> str:
    """An access token obtained through the device flow, approved as `user`."""
    config = identity_config(idp)
    async with httpx.AsyncClient() as http:
        metadata = await discover(config.issuer, http)
        authorization = await request_device_authorization(http, metadata, config)
        idp.approve(authorization.user_code, user)
        tokens = await poll_device_token(http, metadata, config, authorization)
    return tokens.access_token


async def call(served: Served, token: str, tool: str, arguments: dict) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers) as http:
        transport = streamable_http_client(f"{served.url}/mcp", http_client=http)
        async with Client(transport) as client:
            result = await client.call_tool(tool, arguments)
    return dict(result.structured_content or {})


def test_request_without_token_is_401_with_metadata(served):
    """The served endpoint answers 401 naming its RFC 9728 metadata."""
    response = httpx.post(f"{served.url}/mcp", json={}, headers={"Accept": "application/json"})
    metadata_url = f"{served.url}/.well-known/oauth-protected-resource/mcp"
    assert response.status_code == 401
    assert f'resource_metadata="{metadata_url}"' in response.headers["www-authenticate"]


async def test_merchant_token_gets_own_figures(served, idp, identity_config):
    """A device-flow token of merchant A gets merchant A's sales over HTTP."""
    token = await device_flow_token(idp, identity_config, "alice")
    sales = await call(served, token, "get_sales", {"days": 7})
    assert sales["revenue"] == dataset.A_WEEK["revenue"]


async def test_merchant_token_cannot_name_another_merchant(served, idp, identity_config):
    """Naming merchant B with merchant A's token is FORBIDDEN."""
    token = await device_flow_token(idp, identity_config, "alice")
    other = await call(served, token, "get_sales", {"merchant_id": str(MERCHANT_B)})
    assert other["error"]["code"] == "FORBIDDEN"


async def test_admin_token_gets_platform_figures(served, idp, identity_config):
    """An administrator's token may call platform tools."""
    token = await device_flow_token(idp, identity_config, "root")
    who = await call(served, token, "whoami", {})
    overview = await call(served, token, "platform_overview", {})
    assert who["role"] == "admin" and "gmv" in overview


async def test_server_log_carries_no_token(served, idp, identity_config):
    """After authenticated calls, the server's stderr holds none of the tokens."""
    token = await device_flow_token(idp, identity_config, "bob")
    await call(served, token, "whoami", {})
    log = served.stderr_path.read_text(errors="replace")
    assert "tool call tool=whoami" in log  # the capture works
    assert token not in log and token.split(".")[2] not in log
