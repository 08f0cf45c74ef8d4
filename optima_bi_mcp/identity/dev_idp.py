"""A development identity provider: OAuth 2.0 / OIDC on loopback, for local use and tests.

Built on Authlib's server components: the device authorization endpoint and
device_code grant (RFC 8628), the refresh_token grant with rotation
(RFC 6749 §6), revocation (RFC 7009), metadata (RFC 8414, OIDC Discovery)
and a JWKS. Access tokens are RS256 JWTs (RFC 7519, RFC 9068 profile)
carrying `iss`, `aud`, `sub`, `email`, `exp`, `iat`, `nbf` and the role and
merchant claims. Everything lives in memory and the signing key is made at
start, so a restart logs everyone out.

A person approves a device code at `/device` (a form: user code + user);
tests approve with `POST /device/approve` (user_code, user[, deny]), which
answers loopback clients only. It is NOT an identity provider for any real
deployment: it has no passwords, and whoever reaches it picks any user.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from authlib.common.security import generate_token
from authlib.oauth2 import rfc7009, rfc8628
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749 import grants as rfc6749_grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet, RSAKey
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from optima_bi_mcp.errors import InvalidArgumentError

log = logger.bind(module=__name__)

BANNER = (
    "DEVELOPMENT IDENTITY PROVIDER: for local development and tests ONLY. "
    "No passwords; anyone who can reach it logs in as any configured user. "
    "Never expose it or trust its tokens in production."
)


@dataclass(frozen=True)
class DevUser:
    """A user the dev IdP can log in: an administrator or a merchant's user."""

    name: str
    role: str
    merchant_id: UUID | None = None

    @property
    def email(self) -> str:
        return f"{self.name}@dev-idp.invalid"

    def get_user_id(self) -> str:
        return self.name

    @classmethod
    def parse(cls, spec: str) -> DevUser:
        """`name=admin` or `name=merchant:<uuid>`."""
        name, sep, principal = spec.partition("=")
        if not sep or not name:
            raise InvalidArgumentError(f"--user must be name=admin|merchant:<uuid>: {spec!r}")
        if principal == "admin":
            return cls(name=name, role="admin")
        kind, _, value = principal.partition(":")
        try:
            merchant_id = UUID(value)
        except ValueError as exc:
            raise InvalidArgumentError(f"--user needs a merchant UUID: {spec!r}") from exc
        if kind != "merchant":
            raise InvalidArgumentError(f"--user must be name=admin|merchant:<uuid>: {spec!r}")
        return cls(name=name, role="merchant", merchant_id=merchant_id)


def load_users(specs: list[str], users_file: Path | None) -> dict[str, DevUser]:
    """Users from `--user` flags and a JSON file `{"alice": "merchant:<uuid>", ...}`."""
    entries = list(specs)
    if users_file is not None:
        data = json.loads(users_file.read_text())
        entries += [f"{name}={value}" for name, value in data.items()]
    users = {u.name: u for u in map(DevUser.parse, entries)}
    if not users:
        raise InvalidArgumentError("the dev IdP needs at least one --user or --users-file")
    return users


@dataclass(frozen=True)
class DevIdpConfig:
    """How the dev IdP issues tokens."""

    issuer: str
    users: dict[str, DevUser]
    client_id: str = "optima-bi"
    audience: str = "optima-bi"
    role_claim: str = "optima_role"
    merchant_claim: str = "optima_merchant_id"
    token_lifetime_s: int = 3600
    refresh_lifetime_s: int = 30 * 24 * 3600
    device_code_lifetime_s: int = 600
    interval_s: int = 5


class DevClient(ClientMixin):
    """The one public client (no secret): the Optima BI command line and server."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (rfc8628.DEVICE_CODE_GRANT_TYPE, "refresh_token")

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def get_default_redirect_uri(self) -> None:
        return None


@dataclass
class RefreshRecord:
    """A refresh token the IdP issued; revoked on use (rotation) or revocation."""

    token: str
    client_id: str
    user: DevUser
    scope: str
    expires_at: float
    revoked: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class AccessRecord:
    """An access token's id, so revocation can be recorded (JWTs stay self-contained)."""

    jti: str
    client_id: str
    revoked: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)


@dataclass
class DevState:
    """Everything the dev IdP remembers, in memory."""

    device_credentials: dict[str, rfc8628.DeviceCredentialDict] = field(default_factory=dict)
    grants: dict[str, tuple[DevUser, bool]] = field(default_factory=dict)
    last_poll: dict[str, float] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshRecord] = field(default_factory=dict)
    access_tokens: dict[str, AccessRecord] = field(default_factory=dict)

    def credential_by_user_code(self, user_code: str) -> rfc8628.DeviceCredentialDict | None:
        wanted = _normalize_user_code(user_code)
        for credential in self.device_credentials.values():
            if _normalize_user_code(credential["user_code"]) == wanted:
                return credential
        return None


class StarletteOAuth2Request(OAuth2Request):
    """Authlib's request view of a Starlette request whose form was already read."""

    def __init__(self, method: str, uri: str, headers: dict[str, str], form: dict[str, str]):
        super().__init__(method=method, uri=uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class DevTokenGenerator(JWTBearerTokenGenerator):
    """RS256 JWT access tokens with Optima BI's claims and rotating refresh tokens."""

    def __init__(self, config: DevIdpConfig, keys: KeySet, state: DevState) -> None:
        super().__init__(
            issuer=config.issuer,
            alg="RS256",
            refresh_token_generator=lambda **kw: generate_token(48),
            expires_generator=config.token_lifetime_s,
        )
        self.config = config
        self.keys = keys
        self.state = state

    def get_jwks(self) -> KeySet:
        # A KeySet (not a single key) makes joserfc put the key's `kid` in the header.
        return self.keys

    def get_audiences(self, client: Any, user: Any, scope: Any) -> str:
        return self.config.audience

    def get_jti(self, client: Any, grant_type: Any, user: Any, scope: Any) -> str:
        jti: str = generate_token(16)
        self.state.access_tokens[jti] = AccessRecord(jti, client.get_client_id())
        return jti

    def get_extra_claims(
        self, client: Any, grant_type: Any, user: DevUser, scope: Any
    ) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "email": user.email,
            "nbf": int(time.time()),
            self.config.role_claim: user.role,
        }
        if user.merchant_id is not None:
            claims[self.config.merchant_claim] = str(user.merchant_id)
        return claims


class DevDeviceAuthorizationEndpoint(rfc8628.DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = ["none"]

    def get_verification_uri(self) -> str:
        return f"{self.server.config.issuer}/device"

    def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
        credential = rfc8628.DeviceCredentialDict(
            client_id=client_id, scope=scope, expires_at=time.time() + data["expires_in"], **data
        )
        self.server.state.device_credentials[data["device_code"]] = credential


class DevDeviceCodeGrant(rfc8628.DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def query_device_credential(self, device_code: str) -> Any:
        return self.server.state.device_credentials.get(device_code)

    def query_user_grant(self, user_code: str) -> tuple[DevUser, bool] | None:
        state: DevState = self.server.state
        return state.grants.get(_normalize_user_code(user_code))

    def should_slow_down(self, credential: Any) -> bool:
        # RFC 8628 §3.5: a client polling faster than `interval` is told to slow down.
        state, code = self.server.state, credential["device_code"]
        now = time.monotonic()
        last, state.last_poll[code] = state.last_poll.get(code), now
        return last is not None and now - last < credential["interval"] * 0.5

    def create_token_response(self) -> Any:
        response = super().create_token_response()
        # A device code is good for one token response (RFC 8628 §3.5, §5.2).
        credential = self.request.credential
        self.server.state.device_credentials.pop(credential["device_code"], None)
        self.server.state.grants.pop(_normalize_user_code(credential["user_code"]), None)
        return response


class DevRefreshTokenGrant(rfc6749_grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    # Rotation: every refresh returns a new refresh token and retires the old one.
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        state: DevState = self.server.state
        record = state.refresh_tokens.get(refresh_token)
        if record is None or record.is_revoked() or record.is_expired():
            return None
        return record

    def authenticate_user(self, refresh_token: RefreshRecord) -> DevUser:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: RefreshRecord) -> None:
        refresh_token.revoked = True


class DevRevocationEndpoint(rfc7009.RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        state = self.server.state
        record = state.refresh_tokens.get(token_string)
        if record is not None:
            return record
        return state.access_tokens.get(_jti_of(token_string) or "")

    def revoke_token(self, token: Any, request: Any) -> None:
        token.revoked = True


class DevAuthorizationServer(AuthorizationServer):
    """Authlib's authorization server over the dev IdP's in-memory state."""

    def __init__(self, config: DevIdpConfig, keys: KeySet) -> None:
        super().__init__(scopes_supported=["openid", "email", "profile"])
        self.config = config
        self.state = DevState()
        self.client = DevClient(config.client_id)
        self.register_token_generator("default", DevTokenGenerator(config, keys, self.state))
        device = DevDeviceAuthorizationEndpoint(self)
        device.EXPIRES_IN = config.device_code_lifetime_s
        device.INTERVAL = config.interval_s
        self.register_endpoint(device)
        self.register_endpoint(DevRevocationEndpoint)
        self.register_grant(DevDeviceCodeGrant)
        self.register_grant(DevRefreshTokenGrant)

    def query_client(self, client_id: str) -> DevClient | None:
        return self.client if client_id == self.config.client_id else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        if "refresh_token" not in token:
            return
        self.state.refresh_tokens[token["refresh_token"]] = RefreshRecord(
            token=token["refresh_token"],
            client_id=request.client.get_client_id(),
            user=request.user,
            scope=token.get("scope", ""),
            expires_at=time.time() + self.config.refresh_lifetime_s,
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return cast(OAuth2Request, request)  # already a StarletteOAuth2Request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return JSONResponse(body, status_code=status, headers=dict(headers))


def _normalize_user_code(code: str) -> str:
    # RFC 8628 §6.1: accept codes typed without the dash and in lower case.
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _jti_of(token: str) -> str | None:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti if isinstance(jti, str) else None


def metadata(config: DevIdpConfig) -> dict[str, Any]:
    """The issuer's metadata (RFC 8414 §2; OIDC Discovery §3)."""
    base = config.issuer
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "device_authorization_endpoint": f"{base}/device_authorization",
        "revocation_endpoint": f"{base}/revoke",
        "jwks_uri": f"{base}/jwks",
        "grant_types_supported": [rfc8628.DEVICE_CODE_GRANT_TYPE, "refresh_token"],
        # RFC 8414 and OIDC Discovery require these members even though the
        # dev IdP offers no authorization-code flow (/authorize refuses).
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "email", "profile"],
        "claims_supported": ["sub", "email", "iss", "aud", "exp", "iat", "nbf"]
        + [config.role_claim, config.merchant_claim],
    }


def signing_key(path: Path | None) -> RSAKey:
    """The RS256 signing key: read from `path` (a private JWK), made there if missing.

    A key file lets tokens survive a restart, and lets tests sign tokens the
    IdP's JWKS vouches for (expired or for another audience, on purpose).
    """
    if path is not None and path.exists():
        return RSAKey.import_key(json.loads(path.read_text()))
    key = RSAKey.generate_key(2048, parameters={"kid": generate_token(8), "use": "sig"})
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(key.as_dict(private=True), f)
    return key


def create_app(config: DevIdpConfig, key: RSAKey | None = None) -> Starlette:
    """The dev IdP's Starlette application, signing with `key` (a fresh one by default)."""
    keys = KeySet([key or signing_key(None)])
    server = DevAuthorizationServer(config, keys)
    meta = metadata(config)
    public_jwks = keys.as_dict(private=False)

    async def well_known(request: Request) -> Response:
        return JSONResponse(meta)

    async def jwks(request: Request) -> Response:
        return JSONResponse(public_jwks)

    async def device_authorization(request: Request) -> Response:
        response = server.create_endpoint_response(
            "device_authorization", await _oauth_request(request)
        )
        return cast(Response, response)

    async def token(request: Request) -> Response:
        return cast(Response, server.create_token_response(await _oauth_request(request)))

    async def revoke(request: Request) -> Response:
        oauth_request = await _oauth_request(request)
        return cast(Response, server.create_endpoint_response("revocation", oauth_request))

    async def authorize(request: Request) -> Response:
        body = {"error": "unsupported_response_type", "error_description": "use the device flow"}
        return JSONResponse(body, status_code=400)

    async def device_page(request: Request) -> Response:
        if request.method == "GET":
            return HTMLResponse(_device_form(config, request.query_params.get("user_code", "")))
        form = await request.form()
        outcome = _decide(server, config, form_dict(form), deny="deny" in form)
        return HTMLResponse(f"<!doctype html><p>{html.escape(outcome['message'])}</p>")

    async def device_approve(request: Request) -> Response:
        if not _is_loopback(request.client.host if request.client else ""):
            return JSONResponse({"error": "access_denied"}, status_code=403)
        form = form_dict(await request.form())
        outcome = _decide(server, config, form, deny=form.get("deny") in ("1", "true"))
        return JSONResponse(outcome, status_code=200 if outcome["ok"] else 400)

    routes = [
        Route("/.well-known/openid-configuration", well_known),
        Route("/.well-known/oauth-authorization-server", well_known),
        Route("/jwks", jwks),
        Route("/device_authorization", device_authorization, methods=["POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/revoke", revoke, methods=["POST"]),
        Route("/authorize", authorize),
        Route("/device", device_page, methods=["GET", "POST"]),
        Route("/device/approve", device_approve, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.server = server
    return app


def form_dict(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _oauth_request(request: Request) -> StarletteOAuth2Request:
    form = form_dict(await request.form()) if request.method == "POST" else {}
    return StarletteOAuth2Request(request.method, str(request.url), dict(request.headers), form)


def _decide(
    server: DevAuthorizationServer, config: DevIdpConfig, form: dict[str, str], *, deny: bool
) -> dict[str, Any]:
    """Record the person's decision on a user code; never echoes the code back."""
    credential = server.state.credential_by_user_code(form.get("user_code", ""))
    user = config.users.get(form.get("user", ""))
    if credential is None or credential.is_expired():
        return {"ok": False, "message": "unknown or expired code"}
    if user is None:
        return {"ok": False, "message": "unknown user"}
    server.state.grants[_normalize_user_code(credential["user_code"])] = (user, not deny)
    log.info("device code decided user={} approved={}", user.name, not deny)
    verdict = "denied" if deny else f"approved as {user.name}"
    return {"ok": True, "message": f"device {verdict}; you can close this page"}


def _device_form(config: DevIdpConfig, user_code: str) -> str:
    options = "".join(
        f'<option value="{html.escape(u.name)}">{html.escape(u.name)} ({u.role}'
        f"{': ' + str(u.merchant_id) if u.merchant_id else ''})</option>"
        for u in config.users.values()
    )
    return (
        "<!doctype html><title>Optima BI dev IdP</title>"
        "<h1>Optima BI development login</h1>"
        "<p><strong>Development identity provider: not for production.</strong></p>"
        '<form method="post" action="/device">'
        f'<label>Code <input name="user_code" value="{html.escape(user_code)}"></label> '
        f'<label>User <select name="user">{options}</select></label> '
        '<button name="approve">Approve</button> <button name="deny">Deny</button>'
        "</form>"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_loopback_host(host: str) -> None:
    """Refuse to bind anywhere but loopback: the dev IdP has no passwords."""
    if not _is_loopback(host):
        raise InvalidArgumentError(
            f"the dev IdP binds to loopback only (127.0.0.1, ::1, localhost), not {host!r}",
            argument="host",
        )
