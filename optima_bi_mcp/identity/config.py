"""Identity configuration and the issuer's metadata (OIDC Discovery, RFC 8414).

The issuer URL is the one setting that switches login on: with no issuer the
process is local-only and `--as` picks the principal. Everything else about
the issuer (endpoints, keys) is discovered from its metadata document.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from loguru import logger

from optima_bi_mcp.errors import IdentityError
from optima_bi_mcp.settings import Settings

log = logger.bind(module=__name__)

ENVIRONMENTS = ("production", "stage", "development")

# OIDC Discovery 1.0 §4 first; RFC 8414 §3 for plain OAuth servers.
_WELL_KNOWN = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


@dataclass(frozen=True)
class IdentityConfig:
    """Who issues tokens for this environment and how to read them."""

    issuer: str
    client_id: str
    audience: str
    role_claim: str
    merchant_claim: str
    environment: str
    token_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityConfig | None:
        """The configuration of `settings`, or None when no issuer is set (local only)."""
        if settings.environment not in ENVIRONMENTS:
            raise IdentityError(
                f"OPTIMA_BI_ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}",
                setting="OPTIMA_BI_ENVIRONMENT",
            )
        if not settings.issuer:
            return None
        return cls(
            issuer=settings.issuer.rstrip("/"),
            client_id=settings.client_id,
            audience=settings.audience,
            role_claim=settings.role_claim,
            merchant_claim=settings.merchant_claim,
            environment=settings.environment,
            token_dir=Path(settings.token_dir),
        )


@dataclass(frozen=True)
class IssuerMetadata:
    """The endpoints of an authorization server, from its metadata document."""

    issuer: str
    jwks_uri: str
    token_endpoint: str
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None

    @classmethod
    def from_document(cls, issuer: str, doc: dict[str, Any]) -> IssuerMetadata:
        """Check and read a metadata document fetched for `issuer`."""
        # OIDC Discovery §4.3 / RFC 8414 §3.3: the document's issuer must be
        # exactly the one asked for, or a server could speak for another.
        if doc.get("issuer", "").rstrip("/") != issuer:
            raise IdentityError("the issuer's metadata names a different issuer", issuer=issuer)
        for field in ("jwks_uri", "token_endpoint"):
            if not isinstance(doc.get(field), str):
                raise IdentityError(f"the issuer's metadata has no {field}", issuer=issuer)
        return cls(
            issuer=issuer,
            jwks_uri=doc["jwks_uri"],
            token_endpoint=doc["token_endpoint"],
            device_authorization_endpoint=doc.get("device_authorization_endpoint"),
            revocation_endpoint=doc.get("revocation_endpoint"),
        )


async def discover(issuer: str, http: httpx.AsyncClient) -> IssuerMetadata:
    """Fetch the issuer's metadata (OIDC Discovery, falling back to RFC 8414)."""
    for suffix in _WELL_KNOWN:
        try:
            response = await http.get(issuer + suffix)
        except httpx.HTTPError as exc:
            raise IdentityError(
                "cannot reach the issuer; check OPTIMA_BI_ISSUER and the network",
                issuer=issuer,
            ) from exc
        if response.status_code == 200:
            log.debug("issuer metadata found issuer={} path={}", issuer, suffix)
            return IssuerMetadata.from_document(issuer, response.json())
    raise IdentityError("the issuer publishes no OAuth/OIDC metadata document", issuer=issuer)
