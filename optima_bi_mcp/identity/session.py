"""Identity of a stdio session: device-flow login state, tokens and refresh.

One `DeviceSession` per MCP session (or per `optima-bi login` run). It
starts from the tokens saved for its environment, so a new session of the
same person is already logged in. `login()` starts the device flow and polls
in a background task of the session's task group; until the person approves,
`resolve()` raises UNAUTHENTICATED with the pending instructions. Access
tokens are refreshed shortly before they expire; a failed refresh forgets
the tokens and asks for a new login.

    async with DeviceSession(config) as session:
        server = build_server(..., principal_resolver=session.resolve)
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx
from anyio.abc import TaskGroup
from loguru import logger

from optima_bi_mcp.errors import IdentityError, UnauthenticatedError
from optima_bi_mcp.identity.bearer import JwksCache, JwtVerifier
from optima_bi_mcp.identity.config import IdentityConfig, IssuerMetadata, discover
from optima_bi_mcp.identity.oauth import (
    DeviceAuthorization,
    poll_device_token,
    refresh_tokens,
    request_device_authorization,
    revoke_tokens,
)
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.identity.storage import TokenSet, TokenStore

log = logger.bind(module=__name__)

# Refresh this long before the access token expires, so a tool call never
# starts with a token that dies in flight.
REFRESH_MARGIN_S = 30.0
HTTP_TIMEOUT_S = 10.0

State = Literal["logged_out", "pending", "logged_in"]


@dataclass(frozen=True)
class Pending:
    """A device flow waiting for the person's approval."""

    authorization: DeviceAuthorization
    started: float


class DeviceSession:
    """Login state of one session against one issuer and environment."""

    def __init__(
        self,
        config: IdentityConfig,
        *,
        store: TokenStore | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.store = store or TokenStore(config.token_dir, config.environment)
        self._http = http
        self._stack = AsyncExitStack()
        self._tasks: TaskGroup | None = None
        self._metadata: IssuerMetadata | None = None
        self._verifier: JwtVerifier | None = None
        self._tokens: TokenSet | None = None
        self._principal: Principal | None = None
        self._pending: Pending | None = None
        self._failure: str | None = None
        self._poll_scope: anyio.CancelScope | None = None
        # Saved tokens not yet adopted (the issuer was unreachable at start).
        self._saved: TokenSet | None = None
        self._refresh_lock = anyio.Lock()
        self.changed = anyio.Event()

    async def __aenter__(self) -> DeviceSession:
        if self._http is None:
            self._http = await self._stack.enter_async_context(
                httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)
            )
        self._tasks = await self._stack.enter_async_context(anyio.create_task_group())
        self._saved = self.store.load()
        await self._restore()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()
        await self._stack.aclose()

    @property
    def state(self) -> State:
        if self._tokens is not None:
            return "logged_in"
        return "pending" if self._pending is not None else "logged_out"

    @property
    def tokens(self) -> TokenSet | None:
        """The session's current tokens (never log them)."""
        return self._tokens

    @property
    def pending(self) -> DeviceAuthorization | None:
        return self._pending.authorization if self._pending else None

    @property
    def failure(self) -> str | None:
        """Why the last login or refresh failed, if it did (no secrets)."""
        return self._failure

    async def resolve(self, ctx: Any = None) -> Principal:
        """The session's principal; UNAUTHENTICATED with instructions when not logged in.

        `ctx` (the MCP request context) is accepted and unused: a stdio session
        has one person, whatever the request.
        """
        if self._pending is not None:
            raise UnauthenticatedError(self._pending_message(), **self._pending_details())
        if self._tokens is None and self._saved is not None:
            await self._restore()
        if self._tokens is None or self._principal is None:
            raise UnauthenticatedError(self._logged_out_message(), environment=self.environment)
        await self._refresh_if_due()
        assert self._principal is not None
        return self._principal

    @property
    def environment(self) -> str:
        return self.config.environment

    async def login(self) -> DeviceAuthorization | Principal:
        """Start the device flow (or return the pending one, or the principal if logged in)."""
        if self._principal is not None and self._tokens is not None:
            return self._principal
        if self._pending is not None:
            return self._pending.authorization
        metadata = await self._issuer()
        authorization = await request_device_authorization(self._client, metadata, self.config)
        self._pending = Pending(authorization, anyio.current_time())
        self._failure = None
        assert self._tasks is not None, "enter the session (async with) before login"
        self._tasks.start_soon(self._poll, authorization)
        log.info("device flow started environment={}", self.environment)
        return authorization

    async def logout(self) -> bool:
        """Forget the tokens here and on disk; True if the issuer revoked them (RFC 7009)."""
        tokens = self._tokens or self._saved
        self._tokens, self._principal, self._saved = None, None, None
        if self._poll_scope is not None:
            self._poll_scope.cancel()
        self._pending = None
        self.store.clear()
        self._notify()
        if tokens is None:
            return False
        try:
            revoked = await revoke_tokens(self._client, await self._issuer(), self.config, tokens)
        except IdentityError as exc:
            # Logged out here all the same; the issuer keeps the tokens until they expire.
            log.warning("revocation failed environment={} reason={}", self.environment, exc)
            revoked = False
        log.info("logged out environment={} revoked={}", self.environment, revoked)
        return revoked

    async def wait_for_change(self) -> None:
        """Wait until the login state changes (approval, denial, expiry, logout)."""
        await self.changed.wait()

    @property
    def _client(self) -> httpx.AsyncClient:
        assert self._http is not None, "enter the session (async with) first"
        return self._http

    async def _issuer(self) -> IssuerMetadata:
        if self._metadata is None:
            self._metadata = await discover(self.config.issuer, self._client)
            jwks = JwksCache(self._metadata.jwks_uri, self._client)
            self._verifier = JwtVerifier(self.config, jwks)
        return self._metadata

    async def _restore(self) -> None:
        """Adopt the saved login; an unreachable issuer keeps it for the next call."""
        tokens = self._saved
        if tokens is None or tokens.issuer != self.config.issuer:
            self._saved = None
            return
        try:
            if tokens.expires_within(REFRESH_MARGIN_S) and tokens.refresh_token:
                # An expired access token would fail validation: refresh it first.
                metadata = await self._issuer()
                tokens = await refresh_tokens(self._client, metadata, self.config, tokens)
            await self._adopt(tokens)
        except UnauthenticatedError as exc:
            if _unreachable(exc):
                # A network outage must not log the person out: keep the saved login.
                log.warning("issuer unreachable; saved login kept environment={}", self.environment)
                self._failure = "cannot reach the issuer to check the saved login; try again"
                return
            log.info("saved login not usable environment={} reason={}", self.environment, exc)
            self._forget(exc.message)
        self._saved = None

    async def _poll(self, authorization: DeviceAuthorization) -> None:
        with anyio.CancelScope() as self._poll_scope:
            try:
                tokens = await poll_device_token(
                    self._client, await self._issuer(), self.config, authorization
                )
                await self._adopt(tokens)
            except IdentityError as exc:
                log.info("device flow ended environment={} reason={}", self.environment, exc)
                self._forget(exc.message)
            finally:
                self._pending, self._poll_scope = None, None
                self._notify()

    async def _adopt(self, tokens: TokenSet) -> None:
        """Validate fresh tokens like any bearer token, then keep and save them."""
        await self._issuer()
        assert self._verifier is not None
        claims = await self._verifier.claims(tokens.access_token)
        self._principal = self._verifier.principal(claims)
        self._tokens = tokens
        self._failure = None
        self.store.save(tokens)
        log.info(
            "logged in environment={} role={} subject={}",
            self.environment,
            self._principal.role,
            self._principal.subject,
        )

    async def _refresh_if_due(self) -> None:
        async with self._refresh_lock:
            tokens = self._tokens
            if tokens is None or not tokens.expires_within(REFRESH_MARGIN_S):
                return
            try:
                metadata = await self._issuer()
                fresh = await refresh_tokens(self._client, metadata, self.config, tokens)
                await self._adopt(fresh)
            except IdentityError as exc:
                if _unreachable(exc):
                    raise IdentityError(
                        "cannot reach the issuer to refresh the login; try again",
                        environment=self.environment,
                    ) from exc
                self._forget(exc.message)
                self._notify()
                raise UnauthenticatedError(
                    "the login expired and could not be refreshed; call the login tool "
                    "(or run `optima-bi login`) to log in again",
                    environment=self.environment,
                ) from exc
            log.info("tokens refreshed environment={}", self.environment)

    def _forget(self, reason: str) -> None:
        self._tokens, self._principal, self._failure = None, None, reason
        self.store.clear()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def _pending_message(self) -> str:
        # The user code is shown by the login tool only: error messages may be
        # logged, and codes must never reach a log.
        assert self._pending is not None
        return (
            "login pending: open the verification URL and enter the code the login tool "
            "showed (call login again to see it); then retry"
        )

    def _pending_details(self) -> dict[str, str]:
        assert self._pending is not None
        return {
            "verification_uri": self._pending.authorization.verification_uri,
            "environment": self.environment,
        }

    def _logged_out_message(self) -> str:
        why = f" ({self._failure})" if self._failure else ""
        return f"not logged in{why}: call the login tool, or run `optima-bi login`"


def _unreachable(exc: BaseException) -> bool:
    """Whether `exc` was caused by the network rather than by the issuer's answer."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.HTTPError):
            return True
        cause = cause.__cause__
    return False
