"""The OAuth client side: device authorization (RFC 8628), refresh (RFC 6749 §6),
revocation (RFC 7009).

Each function is one request, or one polling loop, against the issuer's
endpoints; none keeps state. Tokens and codes pass through as values and
never reach a log line or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from loguru import logger
from pydantic import BaseModel

from optima_bi_mcp.errors import IdentityError
from optima_bi_mcp.identity.config import IdentityConfig, IssuerMetadata
from optima_bi_mcp.identity.storage import TokenSet

log = logger.bind(module=__name__)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 §3.2: clients MUST use 5 seconds when the server gives no interval.
DEFAULT_INTERVAL_S = 5
# RFC 8628 §3.5: every slow_down adds 5 seconds for this and later requests.
SLOW_DOWN_STEP_S = 5


class DeviceAuthorization(BaseModel):
    """The device authorization response (RFC 8628 §3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int = DEFAULT_INTERVAL_S

    def __repr__(self) -> str:
        return f"DeviceAuthorization(verification_uri={self.verification_uri!r})"

    __str__ = __repr__


class DeviceFlowError(IdentityError):
    """The device flow ended without tokens: denied, expired, or refused."""


async def request_device_authorization(
    http: httpx.AsyncClient, metadata: IssuerMetadata, config: IdentityConfig
) -> DeviceAuthorization:
    """Ask the issuer for a device code and a user code (RFC 8628 §3.1)."""
    if not metadata.device_authorization_endpoint:
        raise IdentityError(
            "the issuer does not offer the device authorization grant", issuer=config.issuer
        )
    form = {"client_id": config.client_id, "scope": "openid email"}
    body = await _post(http, metadata.device_authorization_endpoint, form)
    if "error" in body:
        raise DeviceFlowError(_describe("device authorization", body), error=body["error"])
    return DeviceAuthorization.model_validate(body)


async def poll_device_token(
    http: httpx.AsyncClient,
    metadata: IssuerMetadata,
    config: IdentityConfig,
    authorization: DeviceAuthorization,
    *,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> TokenSet:
    """Poll the token endpoint until the person approves, denies, or the code expires.

    Follows RFC 8628 §3.4-3.5: wait `interval` between requests, add 5 s on
    `slow_down`, keep going on `authorization_pending`, stop on
    `access_denied` and `expired_token` (or when `expires_in` has passed).
    """
    interval = float(authorization.interval or DEFAULT_INTERVAL_S)
    deadline = time.monotonic() + authorization.expires_in
    form = {
        "grant_type": DEVICE_CODE_GRANT,
        "device_code": authorization.device_code,
        "client_id": config.client_id,
    }
    while True:
        await sleep(interval)
        if time.monotonic() > deadline:
            raise DeviceFlowError("the login code expired before it was approved; log in again")
        body = await _post(http, metadata.token_endpoint, form)
        error = body.get("error")
        if error is None:
            log.info("device flow approved issuer={}", config.issuer)
            return TokenSet.from_response(config.issuer, config.client_id, body)
        interval = next_interval(interval, error)


def next_interval(interval: float, error: str) -> float:
    """The wait before the next poll after a token endpoint `error` (RFC 8628 §3.5)."""
    if error == "authorization_pending":
        return interval
    if error == "slow_down":
        return interval + SLOW_DOWN_STEP_S
    if error == "access_denied":
        raise DeviceFlowError("the login was denied at the issuer", error=error)
    if error == "expired_token":
        raise DeviceFlowError("the login code expired before it was approved", error=error)
    raise DeviceFlowError(f"the issuer refused the login ({error})", error=error)


async def refresh_tokens(
    http: httpx.AsyncClient, metadata: IssuerMetadata, config: IdentityConfig, tokens: TokenSet
) -> TokenSet:
    """Trade the refresh token for new tokens (RFC 6749 §6)."""
    if not tokens.refresh_token:
        raise IdentityError("the session expired and has no refresh token; log in again")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "client_id": config.client_id,
    }
    body = await _post(http, metadata.token_endpoint, form)
    if "error" in body:
        raise IdentityError("the session could not be refreshed; log in again", error=body["error"])
    fresh = TokenSet.from_response(config.issuer, config.client_id, body)
    # RFC 6749 §6: the server MAY keep the old refresh token and send none.
    if fresh.refresh_token is None:
        fresh = fresh.model_copy(update={"refresh_token": tokens.refresh_token})
    return fresh


async def revoke_tokens(
    http: httpx.AsyncClient, metadata: IssuerMetadata, config: IdentityConfig, tokens: TokenSet
) -> bool:
    """Revoke the refresh token, then the access token (RFC 7009); False if unsupported."""
    if not metadata.revocation_endpoint:
        return False
    pairs = [(tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")]
    for token, hint in pairs:
        if not token:
            continue
        form = {"token": token, "token_type_hint": hint, "client_id": config.client_id}
        body = await _post(http, metadata.revocation_endpoint, form)
        if "error" in body:
            log.warning("revocation refused error={} hint={}", body["error"], hint)
            return False
    return True


async def _post(http: httpx.AsyncClient, url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST a form and return the JSON body, success or OAuth error alike."""
    try:
        response = await http.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise IdentityError("cannot reach the issuer; check the network and try again") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise IdentityError(
            f"the issuer answered HTTP {response.status_code} without JSON"
        ) from exc
    if not isinstance(body, dict):
        raise IdentityError("the issuer answered with an unexpected body")
    if response.status_code >= 400 and "error" not in body:
        body["error"] = f"http_{response.status_code}"
    return body


def _describe(step: str, body: dict[str, Any]) -> str:
    # error_description is server text; the error code alone is safe and enough.
    return f"the issuer refused the {step} ({body.get('error')})"
