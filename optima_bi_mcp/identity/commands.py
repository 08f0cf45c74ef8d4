"""`optima-bi login | logout | whoami | dev-idp`.

`login` runs the device flow in the terminal and saves the tokens for the
environment, so later sessions (stdio servers, `whoami`) start logged in.
`dev-idp` runs the development identity provider on loopback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from loguru import logger

from optima_bi_mcp.errors import OptimaError
from optima_bi_mcp.identity.config import IdentityConfig
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.identity.session import DeviceSession
from optima_bi_mcp.identity.tools import whoami
from optima_bi_mcp.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from optima_bi_mcp.identity.dev_idp import DevIdpConfig

log = logger.bind(module=__name__)

NO_ISSUER = (
    "no issuer is configured (OPTIMA_BI_ISSUER), so there is nothing to log in to; "
    "local processes pick a principal with --as"
)


def run_login(ns: argparse.Namespace) -> int:
    """Log in with a device code and save the tokens for this environment."""
    return _with_config("login", _login)


def run_logout(ns: argparse.Namespace) -> int:
    """Forget this environment's tokens and revoke them at the issuer."""
    return _with_config("logout", _logout)


def run_whoami(ns: argparse.Namespace) -> int:
    """Print who the saved login of this environment is."""
    return _with_config("whoami", _whoami)


def _with_config(command: str, action: Callable[[IdentityConfig], Awaitable[int]]) -> int:
    try:
        config = IdentityConfig.from_settings(Settings())
        if config is None:
            print(f"optima-bi {command}: {NO_ISSUER}", file=sys.stderr)
            return 2
        return anyio.run(action, config)
    except OptimaError as exc:
        print(f"optima-bi {command}: {exc.message}", file=sys.stderr)
        return 1


async def _login(config: IdentityConfig) -> int:
    async with DeviceSession(config) as session:
        outcome = await session.login()
        if isinstance(outcome, Principal):
            print(f"already logged in to {config.environment} as {_who(outcome)}")
            return 0
        print(f"To log in to Optima BI ({config.environment}), open {outcome.verification_uri}")
        print(f"and enter the code {outcome.user_code}")
        if outcome.verification_uri_complete:
            print(f"or open {outcome.verification_uri_complete}")
        sys.stdout.flush()
        while session.state == "pending":
            await session.wait_for_change()
        if session.state != "logged_in":
            print(f"login failed: {session.failure}", file=sys.stderr)
            return 1
        principal = await session.resolve()
        print(f"logged in to {config.environment} as {_who(principal)}")
        return 0


async def _logout(config: IdentityConfig) -> int:
    async with DeviceSession(config) as session:
        was_in = session.state == "logged_in"
        revoked = await session.logout()
    print("logged out" + (" and revoked" if revoked else "") if was_in else "was not logged in")
    return 0


async def _whoami(config: IdentityConfig) -> int:
    async with DeviceSession(config) as session:
        principal = await session.resolve()
    print(whoami(principal).model_dump_json())
    return 0


def _who(principal: Principal) -> str:
    scope = f"merchant {principal.merchant_id}" if principal.merchant_id else principal.role
    return f"{principal.email or principal.subject} ({scope})"


def run_dev_idp(ns: argparse.Namespace) -> int:
    """Run the development identity provider on a loopback address."""
    from optima_bi_mcp.identity.dev_idp import (
        BANNER,
        DevIdpConfig,
        check_loopback_host,
        create_app,
        load_users,
        signing_key,
    )

    settings = Settings()
    try:
        check_loopback_host(ns.host)
        users = load_users(ns.user or [], Path(ns.users_file) if ns.users_file else None)
        key = signing_key(Path(ns.signing_key) if ns.signing_key else None)
    except (OptimaError, OSError, ValueError) as exc:
        print(f"optima-bi dev-idp: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    shown = f"[{ns.host}]" if ":" in ns.host else ns.host
    config = DevIdpConfig(
        issuer=f"http://{shown}:{ns.port}",
        users=users,
        client_id=settings.client_id,
        audience=settings.audience,
        role_claim=settings.role_claim,
        merchant_claim=settings.merchant_claim,
        token_lifetime_s=ns.token_lifetime,
        refresh_lifetime_s=ns.refresh_lifetime,
        device_code_lifetime_s=ns.device_code_lifetime,
        interval_s=ns.interval,
    )
    return _serve_dev_idp(config, create_app(config, key), ns.host, ns.port, BANNER)


def _serve_dev_idp(config: DevIdpConfig, app: Starlette, host: str, port: int, banner: str) -> int:
    import uvicorn

    # Authlib logs issued tokens at DEBUG through the standard logging module.
    logging.getLogger("authlib").setLevel(logging.INFO)
    print("!" * 78, file=sys.stderr)
    print(banner, file=sys.stderr)
    print("!" * 78, file=sys.stderr)
    log.warning("dev IdP starting issuer={} users={}", config.issuer, len(config.users))
    print(json.dumps({"issuer": config.issuer}), flush=True)
    # No access log: the device page's URL carries the user code.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0
