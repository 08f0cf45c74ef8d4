"""Fixtures of the MCP tests: a store holding the hand-made dataset, and servers over it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.mcp.server import build_server, fixed_principal, no_principal
from optima_bi_mcp.settings import Settings
from optima_bi_mcp.store import Store
from optima_bi_mcp.store.client import StoreLocation, read_owner

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mcp_dataset as dataset  # noqa: E402
from mcp_support import child_env, optima_bi, wait_for  # noqa: E402


@pytest.fixture(scope="session")
def data_store(make_store: Callable[[str], Store]) -> tuple[Store, datetime]:
    """The process's store database holding the dataset, and the `now` it was loaded at."""
    store = make_store("mcp")
    return store, dataset.load(store)


@pytest.fixture(scope="session")
def make_server(data_store: tuple[Store, datetime]) -> Callable[..., MCPServer]:
    """A server over the dataset acting as `principal` (`None`: no principal)."""

    def make(principal: str | None, **kwargs: Any) -> MCPServer:
        resolver = (
            fixed_principal(Principal.parse(principal)) if principal else no_principal("log in")
        )
        return build_server(Settings(), data_store[0], principal_resolver=resolver, **kwargs)

    return make


@pytest.fixture(scope="session")
def make_served_store(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:
    """A new store DSN of its own path holding the dataset, for a server subprocess."""

    def make() -> str:
        dsn = f"chdb://{tmp_path_factory.mktemp('served') / 'store'}"
        command = [sys.executable, str(HERE / "mcp_dataset.py"), dsn]
        subprocess.run(command, check=True, capture_output=True, env=child_env(), timeout=300)
        return dsn

    return make


@pytest.fixture(scope="session")
def http_server(make_served_store, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """`optima-bi serve --http --port 0 --as admin` in a subprocess: (MCP URL, store DSN)."""
    dsn = make_served_store()
    log = (tmp_path_factory.mktemp("http") / "server.log").open("w")
    command = [*optima_bi(), "serve", "--http", "--port", "0", "--store", dsn, "--as", "admin"]
    process = subprocess.Popen(command, stdout=log, stderr=log, env=child_env())
    location = StoreLocation.parse(dsn)
    try:

        def serving() -> Any:
            return (read_owner(location) or {}).get("url") or process.poll()

        owner = wait_for(serving, timeout=60)
        assert isinstance(owner, str), "the server exited before serving"
        yield owner, dsn
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
