"""Fixtures of the identity tests: the dev IdP as a real subprocess, and configs for it.

Each `start_idp(...)` runs `optima-bi dev-idp` on a free loopback port with a
signing key file the test can read, so tests can also sign tokens that the
IdP's own JWKS vouches for (expired, for another audience) on purpose.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from optima_bi_mcp.identity.config import IdentityConfig
from optima_bi_mcp.identity.session import DeviceSession
from optima_bi_mcp.identity.storage import TokenStore
from tests.waiting import wait_for

MERCHANT_A = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
MERCHANT_B = uuid.UUID("b0000000-0000-4000-8000-00000000000b")
USERS = [f"alice=merchant:{MERCHANT_A}", f"bob=merchant:{MERCHANT_B}", "root=admin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DevIdp:
    """A running dev IdP subprocess."""

    issuer: str
    process: subprocess.Popen[bytes]
    stderr_path: Path
    key: RSAKey

    def approve(self, user_code: str, user: str, *, deny: bool = False) -> dict[str, Any]:
        form = {"user_code": user_code, "user": user, "deny": "1" if deny else "0"}
        response = httpx.post(f"{self.issuer}/device/approve", data=form)
        return dict(response.json())

    def token_request(self, **form: str) -> httpx.Response:
        return httpx.post(f"{self.issuer}/token", data={"client_id": "optima-bi", **form})

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        """A JWT signed with the IdP's key (or `key`), for deliberately bad tokens."""
        return jwt.encode({"alg": "RS256", "typ": "at+jwt"}, claims, KeySet([key or self.key]))

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "aud": "optima-bi",
            "sub": "alice",
            "email": "alice@dev-idp.invalid",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "optima_role": "merchant",
            "optima_merchant_id": str(MERCHANT_A),
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def spawn_idp(
    directory: Path, *, token_lifetime: int = 300, interval: int = 1, extra: tuple[str, ...] = ()
) -> DevIdp:
    """Run `optima-bi dev-idp` on a free loopback port and wait until it answers."""
    port = free_port()
    key_path = directory / f"idp-{port}.jwk"
    stderr_path = directory / f"idp-{port}.stderr"
    args = [sys.executable, "-m", "optima_bi_mcp.cli", "dev-idp", "--port", str(port)]
    args += [f"--user={u}" for u in USERS]
    args += ["--token-lifetime", str(token_lifetime), "--interval", str(interval)]
    args += ["--signing-key", str(key_path), *extra]
    env = {**os.environ, "OPTIMA_BI_LOG_LEVEL": "DEBUG"}
    with stderr_path.open("wb") as err:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(issuer), timeout=60, what="the dev IdP to answer")
    except AssertionError:
        process.terminate()
        raise
    key = RSAKey.import_key(json.loads(key_path.read_text()))
    return DevIdp(issuer, process, stderr_path, key)


def stop_idp(idp: DevIdp) -> None:
    idp.process.terminate()
    idp.process.wait(timeout=10)


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdp]:
    """One dev IdP for the session: 300 s tokens, 1 s polling interval."""
    running = spawn_idp(tmp_path_factory.mktemp("idp"))
    yield running
    stop_idp(running)


@pytest.fixture(scope="session")
def short_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdp]:
    """A dev IdP issuing 5-second access tokens, always due for refresh."""
    running = spawn_idp(tmp_path_factory.mktemp("short-idp"), token_lifetime=5)
    yield running
    stop_idp(running)


@pytest.fixture
def start_idp(tmp_path: Path) -> Iterator[Callable[..., DevIdp]]:
    """Start a dev IdP with special settings for one test; stopped at its end."""
    started: list[DevIdp] = []

    def start(**kwargs: Any) -> DevIdp:
        started.append(spawn_idp(tmp_path, **kwargs))
        return started[-1]

    yield start
    for running in started:
        stop_idp(running)


def _answers(issuer: str) -> bool:
    try:
        return httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def identity_config(tmp_path: Path) -> Callable[[DevIdp], IdentityConfig]:
    """The client configuration for a dev IdP, with tokens under the test's directory."""

    def make(idp: DevIdp, environment: str = "development") -> IdentityConfig:
        return IdentityConfig(
            issuer=idp.issuer,
            client_id="optima-bi",
            audience="optima-bi",
            role_claim="optima_role",
            merchant_claim="optima_merchant_id",
            environment=environment,
            token_dir=tmp_path / "tokens",
        )

    return make


def session_for(config: IdentityConfig) -> DeviceSession:
    """A device session whose token key is in a file (never the developer's keyring)."""
    store = TokenStore(config.token_dir, config.environment, use_keyring=False)
    return DeviceSession(config, store=store)
