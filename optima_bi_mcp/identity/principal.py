"""The principal of a session: an administrator, or a merchant with its merchant id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from optima_bi_mcp.errors import ForbiddenError, IdentityError, InvalidArgumentError

Role = Literal["merchant", "admin"]


@dataclass(frozen=True)
class Principal:
    role: Role
    merchant_id: UUID | None = None
    subject: str | None = None
    email: str | None = None
    environment: str = "development"

    def __post_init__(self) -> None:
        if self.role == "merchant" and self.merchant_id is None:
            raise ValueError("a merchant principal needs a merchant_id")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def scope_key(self) -> str:
        """The principal's data scope, for cache keys: `admin` or `merchant:<uuid>`."""
        return "admin" if self.is_admin else f"merchant:{self.merchant_id}"

    def merchant_scope(self, requested: UUID | None) -> UUID:
        """The merchant a merchant-level query must be scoped to.

        Merchants always get their own merchant; naming another is FORBIDDEN.
        Administrators must name one.
        """
        if not self.is_admin:
            assert self.merchant_id is not None
            if requested is not None and requested != self.merchant_id:
                raise ForbiddenError(
                    "merchants can only see their own figures", argument="merchant_id"
                )
            return self.merchant_id
        if requested is None:
            raise InvalidArgumentError(
                "administrators must name a merchant_id for merchant tools",
                argument="merchant_id",
            )
        return requested

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ForbiddenError("platform figures are for administrators only")

    @classmethod
    def parse(cls, text: str, environment: str = "development") -> Principal:
        """`admin` or `merchant:<uuid>`, as given to `--as`."""
        if text == "admin":
            return cls(role="admin", subject="local-admin", environment=environment)
        kind, _, value = text.partition(":")
        if kind == "merchant":
            try:
                merchant_id = UUID(value)
            except ValueError as exc:
                raise InvalidArgumentError(
                    f"--as merchant needs a UUID, got {value!r}", argument="as"
                ) from exc
            return cls(
                role="merchant",
                merchant_id=merchant_id,
                subject=f"local-merchant:{merchant_id}",
                environment=environment,
            )
        raise InvalidArgumentError(
            f"--as must be 'admin' or 'merchant:<uuid>', got {text!r}", argument="as"
        )

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        role_claim: str,
        merchant_claim: str,
        environment: str,
    ) -> Principal:
        """The principal a validated access token names.

        The role comes from `role_claim` (`merchant` or `admin`); a merchant
        also needs a UUID in `merchant_claim`. Anything else is refused rather
        than guessed, because a wrong guess would widen someone's scope.
        """
        role = claims.get(role_claim)
        subject = _text(claims.get("sub"))
        email = _text(claims.get("email"))
        if role == "admin":
            return cls(role="admin", subject=subject, email=email, environment=environment)
        if role != "merchant":
            raise IdentityError(
                f"the token has no usable role in claim {role_claim!r} (merchant or admin)",
                claim=role_claim,
            )
        try:
            merchant_id = UUID(str(claims.get(merchant_claim)))
        except ValueError as exc:
            raise IdentityError(
                f"a merchant token needs a merchant UUID in claim {merchant_claim!r}",
                claim=merchant_claim,
            ) from exc
        return cls(
            role="merchant",
            merchant_id=merchant_id,
            subject=subject,
            email=email,
            environment=environment,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
