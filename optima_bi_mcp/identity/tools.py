"""The `login`, `logout` and `whoami` tools' logic, for the MCP layer to register.

Each returns a pydantic model (structured content with an output schema).
`login` and `logout` need the session's `DeviceSession` (stdio sessions with
an issuer); `whoami` needs only the resolved principal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast
from uuid import UUID

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from optima_bi_mcp.errors import InvalidArgumentError, OptimaError
from optima_bi_mcp.identity.principal import Principal
from optima_bi_mcp.identity.session import DeviceSession
from optima_bi_mcp.metrics.models import WhoamiResult

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

LOGIN_DESCRIPTION = (
    "Log in to Optima BI with a device code. Returns a verification URL and a user "
    "code: show both to the person and ask them to open the URL (or the complete URL, "
    "which carries the code) and approve. Approval is picked up in the background; "
    "other tools answer UNAUTHENTICATED until then. If already logged in, says who."
)
LOGOUT_DESCRIPTION = (
    "Log out of Optima BI: forget this environment's saved tokens and revoke them at "
    "the issuer where it supports revocation. Other tools then need a new login."
)


class LoginResult(BaseModel):
    """What the person must do to log in, or who is already logged in."""

    status: Literal["pending", "logged_in"]
    environment: str
    verification_uri: str | None = Field(default=None, description="page where the code is entered")
    verification_uri_complete: str | None = Field(
        default=None, description="the same page with the code filled in"
    )
    user_code: str | None = Field(default=None, description="code the person enters on the page")
    expires_in: int | None = Field(default=None, description="seconds until the code expires")
    role: Literal["merchant", "admin"] | None = None
    merchant_id: UUID | None = None
    subject: str | None = None
    email: str | None = None
    message: str


class LogoutResult(BaseModel):
    """Whether tokens were forgotten and revoked."""

    logged_out: bool
    revoked: bool = Field(description="the issuer confirmed revocation (RFC 7009)")
    environment: str
    message: str


async def login(session: DeviceSession | None) -> LoginResult:
    """Start (or show) the device-flow login of this session."""
    session = _require(session)
    outcome = await session.login()
    if isinstance(outcome, Principal):
        who = outcome.email or outcome.subject or outcome.role
        return LoginResult(
            status="logged_in",
            environment=session.environment,
            role=outcome.role,
            merchant_id=outcome.merchant_id,
            subject=outcome.subject,
            email=outcome.email,
            message=f"already logged in as {who}",
        )
    return LoginResult(
        status="pending",
        environment=session.environment,
        verification_uri=outcome.verification_uri,
        verification_uri_complete=outcome.verification_uri_complete,
        user_code=outcome.user_code,
        expires_in=outcome.expires_in,
        message=(
            f"open {outcome.verification_uri} and enter the code {outcome.user_code} "
            "(or open the complete URL), approve, then ask again"
        ),
    )


async def logout(session: DeviceSession | None) -> LogoutResult:
    """Log this session (and this environment's saved login) out."""
    session = _require(session)
    was_logged_in = session.state == "logged_in"
    revoked = await session.logout()
    if not was_logged_in:
        message = "was not logged in; nothing to revoke"
    elif revoked:
        message = "logged out; the issuer revoked the tokens"
    else:
        message = "logged out here; the issuer does not support revocation"
    return LogoutResult(
        logged_out=was_logged_in,
        revoked=revoked,
        environment=session.environment,
        message=message,
    )


def whoami(principal: Principal) -> WhoamiResult:
    """The principal of this session, as the `whoami` tool reports it."""
    return WhoamiResult(
        role=principal.role,
        merchant_id=principal.merchant_id,
        subject=principal.subject,
        email=principal.email,
        environment=principal.environment,
    )


def _require(session: DeviceSession | None) -> DeviceSession:
    if session is None:
        raise InvalidArgumentError(
            "login is only for stdio sessions with an issuer (OPTIMA_BI_ISSUER); "
            "HTTP sessions send a bearer token instead"
        )
    return session


def register_login_tools(server: MCPServer, session: DeviceSession) -> None:
    """Add the `login` and `logout` tools of a stdio session with an issuer to `server`.

    They run without a principal (that is what they obtain), so they sit
    outside the server's tool runner; failures come back in the same
    `{"error": {code, message, details}}` shape as every other tool's.
    """

    async def login_tool() -> LoginResult:
        try:
            return await login(session)
        except OptimaError as exc:
            return cast(LoginResult, _error_result(exc))

    async def logout_tool() -> LogoutResult:
        try:
            return await logout(session)
        except OptimaError as exc:
            return cast(LogoutResult, _error_result(exc))

    server.add_tool(login_tool, name="login", title="Log in", description=LOGIN_DESCRIPTION)
    server.add_tool(logout_tool, name="logout", title="Log out", description=LOGOUT_DESCRIPTION)


def _error_result(exc: OptimaError) -> CallToolResult:
    # Identity error messages are written to carry no token or code.
    error = exc.to_dict()
    return CallToolResult(
        content=[TextContent(type="text", text=f"{error['code']}: {error['message']}")],
        structured_content={"error": error},
        is_error=True,
    )
