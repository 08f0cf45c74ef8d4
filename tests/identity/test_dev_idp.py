"""The development identity provider: metadata, tokens, approval, and its loopback-only guard."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from optima_bi_mcp.errors import InvalidArgumentError
from optima_bi_mcp.identity.dev_idp import (
    DevIdpConfig,
    DevUser,
    check_loopback_host,
    create_app,
    load_users,
)

from .conftest import MERCHANT_A

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def in_process(client_host: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client of a fresh in-process dev IdP, seen as coming from `client_host`."""
    users = {"alice": DevUser("alice", "merchant", MERCHANT_A), "root": DevUser("root", "admin")}
    app = create_app(DevIdpConfig(issuer="http://127.0.0.1:9400", users=users, interval_s=5))
    transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9400")


def segment(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
def test_metadata_is_valid_rfc8414(idp, path):
    """Both metadata documents pass Authlib's RFC 8414 validation."""
    document = httpx.get(idp.issuer + path).json()
    AuthorizationServerMetadata(document).validate()
    assert document["issuer"] == idp.issuer


def test_metadata_is_valid_oidc_discovery(idp):
    """The OpenID configuration passes Authlib's OIDC Discovery validation."""
    document = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    OpenIDProviderMetadata(document).validate()
    assert document["device_authorization_endpoint"] == f"{idp.issuer}/device_authorization"


def test_access_token_carries_the_claims(idp):
    """An access token from the device flow has the registered and Optima BI claims."""
    auth = httpx.post(f"{idp.issuer}/device_authorization", data={"client_id": "optima-bi"}).json()
    idp.approve(auth["user_code"], "alice")
    body = idp.token_request(grant_type=DEVICE_GRANT, device_code=auth["device_code"]).json()
    header, claims = segment(body["access_token"], 0), segment(body["access_token"], 1)
    assert header["alg"] == "RS256" and header["kid"] == idp.key.kid
    assert {"iss", "aud", "sub", "email", "exp", "iat", "nbf"} <= set(claims)
    assert (claims["optima_role"], claims["optima_merchant_id"]) == ("merchant", str(MERCHANT_A))


async def test_pending_then_slow_down_when_polling_too_fast():
    """Polling before approval: authorization_pending, then slow_down when too fast."""
    async with in_process() as http:
        auth = (await http.post("/device_authorization", data={"client_id": "optima-bi"})).json()
        form = {"client_id": "optima-bi", "grant_type": DEVICE_GRANT}
        form["device_code"] = auth["device_code"]
        first = (await http.post("/token", data=form)).json()
        second = (await http.post("/token", data=form)).json()
    assert (first["error"], second["error"]) == ("authorization_pending", "slow_down")


async def test_denied_code_answers_access_denied():
    """A code the person denied answers access_denied at the token endpoint."""
    async with in_process() as http:
        auth = (await http.post("/device_authorization", data={"client_id": "optima-bi"})).json()
        decision = {"user_code": auth["user_code"], "user": "alice", "deny": "1"}
        await http.post("/device/approve", data=decision)
        form = {"client_id": "optima-bi", "grant_type": DEVICE_GRANT}
        body = (await http.post("/token", data={**form, "device_code": auth["device_code"]})).json()
    assert body["error"] == "access_denied"


async def test_user_code_is_accepted_without_dash_and_in_lower_case():
    """RFC 8628 §6.1: the person may type the code loosely."""
    async with in_process() as http:
        auth = (await http.post("/device_authorization", data={"client_id": "optima-bi"})).json()
        loose = auth["user_code"].replace("-", "").lower()
        answer = await http.post("/device/approve", data={"user_code": loose, "user": "root"})
    assert answer.json()["ok"] is True


async def test_scripted_approval_refuses_non_loopback_clients():
    """POST /device/approve answers only clients on loopback."""
    async with in_process(client_host="10.1.2.3") as http:
        answer = await http.post("/device/approve", data={"user_code": "X", "user": "root"})
    assert answer.status_code == 403


async def test_device_page_offers_code_and_users():
    """The approval page is a form with the code prefilled and the users to pick."""
    async with in_process() as http:
        page = (await http.get("/device", params={"user_code": "BCDF-GHJK"})).text
    assert 'value="BCDF-GHJK"' in page and "not for production" in page
    assert '<option value="alice">' in page


async def test_device_page_form_approves():
    """Submitting the page's form approves the code for the picked user."""
    async with in_process() as http:
        auth = (await http.post("/device_authorization", data={"client_id": "optima-bi"})).json()
        form = {"user_code": auth["user_code"], "user": "alice", "approve": ""}
        page = (await http.post("/device", data=form)).text
    assert "approved as alice" in page


def test_unknown_client_is_refused(idp):
    """Only the configured client id may start a device flow."""
    answer = httpx.post(f"{idp.issuer}/device_authorization", data={"client_id": "intruder"})
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_non_loopback_hosts_are_refused(host):
    """The dev IdP binds to loopback only."""
    with pytest.raises(InvalidArgumentError, match="loopback only"):
        check_loopback_host(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_hosts_are_allowed(host):
    """Loopback addresses pass the guard."""
    assert check_loopback_host(host) is None


def test_startup_says_it_is_for_development_only(idp):
    """The process announces loudly that it is a development IdP."""
    assert "DEVELOPMENT IDENTITY PROVIDER" in idp.stderr()


def test_users_from_flags_and_file(tmp_path):
    """Users come from --user flags and a JSON file."""
    merchant = uuid.uuid4()
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"carol": f"merchant:{merchant}"}))
    users = load_users(["root=admin"], path)
    assert users["carol"].merchant_id == merchant and users["root"].role == "admin"
