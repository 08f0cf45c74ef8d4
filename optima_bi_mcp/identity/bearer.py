"""Bearer tokens for the HTTP transport: JWT validation against the issuer's JWKS.

A token is accepted only if its RS256/ES256 signature verifies with a key of
the issuer's JWKS and its `iss`, `aud`, `exp` and `nbf` hold (RFC 7519 §4.1),
with 60 seconds of clock skew. The JWKS is cached; a token naming an unknown
key id (`kid`) triggers one refetch, at most once per `min_refresh_s`, so a
stream of forged key ids cannot turn the server into a JWKS flooder.

The MCP SDK does the HTTP side: `BearerTokenVerifier` is its `TokenVerifier`,
`auth_settings()` its `AuthSettings`, which make it serve RFC 9728 protected
resource metadata and answer 401 with
`WWW-Authenticate: Bearer error="invalid_token", …, resource_metadata="…"`.

XXX: a request with no token at all also gets `error="invalid_token"`,
because the SDK's RequireAuthMiddleware adds it to every 401; RFC 6750 §3.1
says a server SHOULD NOT send an error code when no credentials were sent.
Clients follow `resource_metadata` either way. Pinned by
tests/identity/test_http_bearer.py::test_no_token_gets_401_pointing_at_resource_metadata.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from loguru import logger
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from optima_bi_mcp.errors import IdentityError, InvalidArgumentError, UnauthenticatedError
from optima_bi_mcp.identity.config import IdentityConfig, IssuerMetadata, discover
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.settings import Settings

log = logger.bind(module=__name__)

CLOCK_SKEW_S = 60
ALGORITHMS = ("RS256", "ES256")
# Called with the MCP request context (unused here) by the server's tool runner.
PrincipalResolver = Callable[[Any], Awaitable[Principal]]


class JwksCache:
    """The issuer's signing keys, fetched lazily and refreshed on an unknown `kid`."""

    def __init__(self, jwks_uri: str, http: httpx.AsyncClient, *, min_refresh_s: float = 30.0):
        self.jwks_uri = jwks_uri
        self.min_refresh_s = min_refresh_s
        self.fetches = 0
        self._http = http
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = anyio.Lock()

    async def key_set_for(self, kid: str | None) -> KeySet:
        """A key set holding `kid` if the issuer has it (refetching if allowed)."""
        async with self._lock:
            if self._keys is None or (not self._has(kid) and self._may_refresh()):
                await self._fetch()
            assert self._keys is not None
            return self._keys

    def _has(self, kid: str | None) -> bool:
        assert self._keys is not None
        if kid is None:
            return True
        return any(key.kid == kid for key in self._keys.keys)

    def _may_refresh(self) -> bool:
        return time.monotonic() - self._fetched_at >= self.min_refresh_s

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self.jwks_uri)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise IdentityError("cannot read the issuer's signing keys (JWKS)") from exc
        finally:
            # Failed fetches count too, so an unreachable issuer is not hammered.
            self._fetched_at = time.monotonic()
        self.fetches += 1
        log.info("jwks fetched keys={} uri={}", len(self._keys.keys), self.jwks_uri)


class JwtVerifier:
    """Validates access tokens of one issuer and audience; returns their claims."""

    def __init__(self, config: IdentityConfig, jwks: JwksCache) -> None:
        self.config = config
        self.jwks = jwks

    async def claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; IdentityError (never naming the token) otherwise."""
        header = _header(token)
        if header.get("alg") not in ALGORITHMS:
            raise IdentityError("the token is not signed with an accepted algorithm")
        keys = await self.jwks.key_set_for(header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
            self._registry().validate(decoded.claims)
        except JoseError as exc:
            raise IdentityError(f"the token is not valid ({exc.error})") from exc
        return dict(decoded.claims)

    def _registry(self) -> jwt.JWTClaimsRegistry:
        return jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW_S,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    def principal(self, claims: dict[str, Any]) -> Principal:
        """The principal the claims of a validated token name."""
        return Principal.from_claims(
            claims,
            role_claim=self.config.role_claim,
            merchant_claim=self.config.merchant_claim,
            environment=self.config.environment,
        )


class BearerTokenVerifier:
    """The MCP SDK's `TokenVerifier` for Optima BI's issuer: None means 401."""

    def __init__(self, verifier: JwtVerifier) -> None:
        self.verifier = verifier

    async def verify_token(self, token: str) -> AccessToken | None:
        """Validate `token`; None for any invalid token (the SDK answers 401)."""
        try:
            claims = await self.verifier.claims(token)
            self.verifier.principal(claims)
        except IdentityError as exc:
            log.info("bearer token refused reason={}", exc.message)
            return None
        scope = claims.get("scope")
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or ""),
            scopes=scope.split() if isinstance(scope, str) else [],
            # The SDK refuses a token past `expires_at` with no leeway of its
            # own; the skew allowed above must hold there too.
            expires_at=int(claims["exp"]) + CLOCK_SKEW_S,
            resource=self.verifier.config.audience,
            subject=str(claims["sub"]),
            claims=claims,
        )


def auth_settings(config: IdentityConfig, resource_server_url: str) -> AuthSettings:
    """The SDK auth settings: RFC 9728 metadata at `/.well-known/oauth-protected-resource…`.

    `resource_server_url` is the MCP endpoint as clients reach it, e.g.
    `http://127.0.0.1:8000/mcp`. The audience is checked by the verifier, so
    the SDK's own resource check stays off.
    """
    return AuthSettings(
        issuer_url=config.issuer,  # type: ignore[arg-type]
        resource_server_url=resource_server_url,  # type: ignore[arg-type]
        validate_token_resource=False,
    )


async def build_bearer_verifier(
    config: IdentityConfig, http: httpx.AsyncClient, *, min_refresh_s: float = 30.0
) -> BearerTokenVerifier:
    """Discover the issuer and return a verifier using its JWKS."""
    metadata = await discover(config.issuer, http)
    return bearer_verifier_for(config, metadata, http, min_refresh_s=min_refresh_s)


def bearer_verifier_for(
    config: IdentityConfig,
    metadata: IssuerMetadata,
    http: httpx.AsyncClient,
    *,
    min_refresh_s: float = 30.0,
) -> BearerTokenVerifier:
    """A verifier for already discovered issuer metadata."""
    jwks = JwksCache(metadata.jwks_uri, http, min_refresh_s=min_refresh_s)
    return BearerTokenVerifier(JwtVerifier(config, jwks))


def http_principal_resolver(config: IdentityConfig) -> PrincipalResolver:
    """A resolver for HTTP sessions: the principal of the request's verified bearer token.

    The SDK's middleware has already validated the token (401 otherwise) and
    put it in a context variable for the duration of the request.
    """

    async def resolve(ctx: Any = None) -> Principal:
        access = _request_access_token(ctx) or get_access_token()
        if access is None or access.claims is None:
            raise UnauthenticatedError("this request carries no valid bearer token")
        return Principal.from_claims(
            access.claims,
            role_claim=config.role_claim,
            merchant_claim=config.merchant_claim,
            environment=config.environment,
        )

    return resolve


def _request_access_token(ctx: Any) -> AccessToken | None:
    """The verified token of the HTTP request behind an MCP request context, if any.

    Preferred to the SDK's context variable: a streamable HTTP session's tasks
    may have been started by an earlier request, whose token the variable holds.
    """
    try:
        request = ctx.request_context.request
    except (AttributeError, LookupError, ValueError):
        return None
    user = getattr(request, "scope", {}).get("user")
    token = getattr(user, "access_token", None)
    return token if isinstance(token, AccessToken) else None


def local_principal(settings: Settings, as_text: str | None) -> Principal | None:
    """The `--as` principal of a local process; refused when an issuer is configured.

    With an issuer, identity must come from a token: a command-line flag that
    picks any merchant would bypass it.
    """
    if as_text is None:
        return None
    if settings.issuer:
        raise InvalidArgumentError(
            "--as is for local processes without an issuer; unset OPTIMA_BI_ISSUER "
            "or log in with `optima-bi login`",
            argument="as",
        )
    return Principal.parse(as_text, environment=settings.environment)


def _header(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IdentityError("the token is not a JWT") from exc
    if not isinstance(header, dict):
        raise IdentityError("the token is not a JWT")
    return header
