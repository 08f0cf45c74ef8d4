"""`optima-bi serve` over stdio with an issuer, as subprocesses: login, saved login, logout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.mcp import mcp_dataset as dataset

from .conftest import DevIdp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stdio_env(idp: DevIdp, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of stdio servers over their own store, trusting the IdP; tokens in a temp dir."""
    directory = tmp_path_factory.mktemp("stdio")
    dsn = f"chdb://{directory / 'store'}"
    dataset_script = str(ROOT / "tests" / "mcp" / "mcp_dataset.py")
    subprocess.run([sys.executable, dataset_script, dsn], check=True, capture_output=True)
    return {
        **os.environ,
        "OPTIMA_BI_STORE": dsn,
        "OPTIMA_BI_ISSUER": idp.issuer,
        "OPTIMA_BI_TOKEN_DIR": str(directory / "tokens"),
        "OPTIMA_BI_LOG_LEVEL": "DEBUG",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "STDERR_PATH": str(directory / "stdio.stderr"),
    }


async def session_calls(env: dict[str, str], calls: list[tuple[str, dict]], idp=None) -> list:
    """Run one stdio server session making `calls`; a `login` call is approved as alice."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "optima_bi_mcp.cli", "serve"], env=env
    )
    answers = []
    with Path(env["STDERR_PATH"]).open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            for tool, arguments in calls:
                result = await client.call_tool(tool, arguments)
                answers.append(result.structured_content)
                if tool == "login" and idp is not None:
                    idp.approve(result.structured_content["user_code"], "alice")
                    await wait_logged_in(client)
    return answers


async def wait_logged_in(client: Client) -> None:
    with anyio.fail_after(60):
        while (await client.call_tool("whoami", {})).is_error:
            await anyio.sleep(0.2)  # polling the server for a condition, with a deadline


async def test_stdio_login_then_saved_login_then_logout(stdio_env, idp):
    """Login in one session; the next starts logged in; logout; the one after is locked.

    The servers' stderr (their logs) never shows the user code.
    """
    first = await session_calls(stdio_env, [("login", {}), ("get_sales", {"days": 7})], idp)
    second = await session_calls(stdio_env, [("whoami", {}), ("logout", {})])
    third = await session_calls(stdio_env, [("get_sales", {"days": 7})])
    server_log = Path(stdio_env["STDERR_PATH"]).read_text(errors="replace")
    assert first[1]["revenue"] == dataset.A_WEEK["revenue"]
    assert first[0]["user_code"] not in server_log and "logged in" in server_log
    assert second[0]["merchant_id"] == str(dataset.MERCHANT_A) and second[1]["revoked"] is True
    assert third[0]["error"]["code"] == "UNAUTHENTICATED"
