"""The device flow end to end over real HTTP against `optima-bi dev-idp` (RFC 8628, 6749, 7009)."""

from __future__ import annotations

import time

import anyio
import pytest

from optima_bi_mcp.errors import UnauthenticatedError
from optima_bi_mcp.identity.oauth import DeviceAuthorization
from optima_bi_mcp.identity.session import DeviceSession
from optima_bi_mcp.identity.storage import TokenStore

from .conftest import MERCHANT_A, DevIdp, session_for, stop_idp


async def log_in(session: DeviceSession, idp: DevIdp, user: str, *, deny: bool = False) -> None:
    """Start the device flow, approve (or deny) it at the IdP, wait for the outcome."""
    outcome = await session.login()
    assert isinstance(outcome, DeviceAuthorization)
    assert idp.approve(outcome.user_code, user, deny=deny)["ok"]
    with anyio.fail_after(30):
        while session.state == "pending":
            await session.wait_for_change()


async def test_calls_before_approval_get_unauthenticated_with_instructions(idp, identity_config):
    """Before approval, resolving names the verification URL and says login is pending."""
    async with session_for(identity_config(idp)) as session:
        outcome = await session.login()
        with pytest.raises(UnauthenticatedError) as caught:
            await session.resolve()
    assert "login pending" in caught.value.message
    assert caught.value.details["verification_uri"] == f"{idp.issuer}/device"
    assert outcome.user_code not in str(caught.value.to_dict())


async def test_login_returns_verification_urls_and_user_code(idp, identity_config):
    """The login answer carries the verification URI, the complete URI and the user code."""
    async with session_for(identity_config(idp)) as session:
        outcome = await session.login()
    assert outcome.verification_uri == f"{idp.issuer}/device"
    assert outcome.verification_uri_complete.endswith(f"user_code={outcome.user_code}")


async def test_approved_login_resolves_the_merchant(idp, identity_config):
    """After approval the session's principal is the approved user's merchant."""
    async with session_for(identity_config(idp)) as session:
        await log_in(session, idp, "alice")
        principal = await session.resolve()
    assert principal.merchant_id == MERCHANT_A
    assert principal.email == "alice@dev-idp.invalid"


async def test_denied_login_stays_logged_out(idp, identity_config):
    """access_denied ends the flow: logged out, and the failure says it was denied."""
    async with session_for(identity_config(idp)) as session:
        await log_in(session, idp, "alice", deny=True)
    assert session.state == "logged_out"
    assert "denied" in (session.failure or "")


async def test_expired_device_code_stops_polling(start_idp, identity_config):
    """A device code that expires before approval ends the flow (expired_token)."""
    idp = start_idp(extra=("--device-code-lifetime", "1"))
    async with session_for(identity_config(idp)) as session:
        await session.login()
        with anyio.fail_after(30):
            while session.state == "pending":
                await session.wait_for_change()
    assert session.state == "logged_out"
    assert "expired" in (session.failure or "")


async def test_device_code_is_single_use(idp, identity_config):
    """Once exchanged, a device code is refused (RFC 8628 §3.5)."""
    async with session_for(identity_config(idp)) as session:
        outcome = await session.login()
        device_code = outcome.device_code
        idp.approve(outcome.user_code, "alice")
        with anyio.fail_after(30):
            while session.state == "pending":
                await session.wait_for_change()
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    response = idp.token_request(grant_type=grant, device_code=device_code)
    assert response.status_code == 400


async def test_new_session_starts_logged_in_from_storage(idp, identity_config):
    """A second session of the same environment reads the saved tokens."""
    config = identity_config(idp)
    async with session_for(config) as first:
        await log_in(first, idp, "alice")
    async with session_for(config) as second:
        principal = await second.resolve()
    assert principal.merchant_id == MERCHANT_A


async def test_environments_keep_separate_tokens(idp, identity_config):
    """A login in `development` does not log `stage` in."""
    async with session_for(identity_config(idp, "development")) as dev:
        await log_in(dev, idp, "alice")
    async with session_for(identity_config(idp, "stage")) as stage:
        assert stage.state == "logged_out"


async def test_short_lived_token_is_refreshed_with_rotation(short_idp, identity_config):
    """A token close to expiry is refreshed; the rotated-out refresh token stops working."""
    idp = short_idp
    async with session_for(identity_config(idp)) as session:
        await log_in(session, idp, "alice")
        before = session.tokens
        principal = await session.resolve()
        after = session.tokens
    assert principal.merchant_id == MERCHANT_A
    assert after.access_token != before.access_token
    refused = idp.token_request(grant_type="refresh_token", refresh_token=before.refresh_token)
    assert refused.json()["error"] == "invalid_grant"


async def test_refresh_failure_asks_for_login_again(short_idp, identity_config):
    """When the refresh token was revoked elsewhere, resolving asks for a new login."""
    idp = short_idp
    async with session_for(identity_config(idp)) as session:
        await log_in(session, idp, "alice")
        form = {"token": session.tokens.refresh_token, "client_id": "optima-bi"}
        await _post(f"{idp.issuer}/revoke", form)
        with pytest.raises(UnauthenticatedError, match="log in again"):
            await session.resolve()
    assert session.state == "logged_out"


async def test_logout_revokes_the_refresh_token(idp, identity_config):
    """Logout revokes at the issuer (RFC 7009): the refresh token no longer works."""
    async with session_for(identity_config(idp)) as session:
        await log_in(session, idp, "alice")
        refresh_token = session.tokens.refresh_token
        revoked = await session.logout()
    refused = idp.token_request(grant_type="refresh_token", refresh_token=refresh_token)
    assert revoked is True
    assert refused.json()["error"] == "invalid_grant"


async def test_logout_forgets_the_saved_login(idp, identity_config):
    """After logout a new session starts logged out."""
    config = identity_config(idp)
    async with session_for(config) as session:
        await log_in(session, idp, "alice")
        await session.logout()
    async with session_for(config) as again:
        assert again.state == "logged_out"


async def _post(url: str, form: dict[str, str]) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        (await http.post(url, data=form)).raise_for_status()


async def test_saved_login_with_expired_access_token_refreshes(short_idp, identity_config):
    """A new session whose saved access token has expired starts logged in by refreshing."""
    idp = short_idp
    config = identity_config(idp)
    async with session_for(config) as first:
        await log_in(first, idp, "alice")
        tokens = first.tokens
    now = int(time.time())
    expired = idp.sign(idp.claims(exp=now - 3600, iat=now - 7200, nbf=now - 7200))
    stale = tokens.model_copy(update={"access_token": expired, "expires_at": now - 3600.0})
    TokenStore(config.token_dir, config.environment, use_keyring=False).save(stale)
    async with session_for(config) as second:
        principal = await second.resolve()
    assert principal.merchant_id == MERCHANT_A


async def test_unreachable_issuer_keeps_the_saved_login(start_idp, identity_config):
    """If the issuer cannot be reached at start, the saved login stays on disk."""
    idp = start_idp(token_lifetime=5)
    config = identity_config(idp)
    async with session_for(config) as first:
        await log_in(first, idp, "alice")
    stop_idp(idp)
    async with session_for(config) as second:
        with pytest.raises(UnauthenticatedError, match="cannot reach the issuer"):
            await second.resolve()
    assert second.store.path.exists()
