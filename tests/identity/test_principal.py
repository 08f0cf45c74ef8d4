"""Principals from validated token claims."""

from __future__ import annotations

import uuid

import pytest

from optima_bi_mcp.errors import IdentityError
from optima_bi_mcp.identity.principal import Principal

CLAIMS = {"role_claim": "optima_role", "merchant_claim": "optima_merchant_id"}
MERCHANT = uuid.UUID("a0000000-0000-4000-8000-00000000000a")


def test_merchant_claims_give_a_merchant_principal():
    """A merchant role with a merchant UUID gives that merchant."""
    claims = {"sub": "alice", "optima_role": "merchant", "optima_merchant_id": str(MERCHANT)}
    principal = Principal.from_claims(claims, environment="stage", **CLAIMS)
    assert (principal.merchant_id, principal.environment) == (MERCHANT, "stage")


def test_admin_claims_give_an_admin():
    """The admin role gives an administrator without a merchant."""
    claims = {"sub": "root", "optima_role": "admin"}
    principal = Principal.from_claims(claims, environment="development", **CLAIMS)
    assert principal.is_admin and principal.merchant_id is None


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "x"},
        {"sub": "x", "optima_role": "superuser"},
        {"sub": "x", "optima_role": "merchant"},
        {"sub": "x", "optima_role": "merchant", "optima_merchant_id": "' OR 1=1 --"},
        {"sub": "x", "optima_role": ["admin"]},
    ],
)
def test_unusable_claims_are_refused(claims):
    """No role, an unknown role, or a merchant without a UUID is refused, never guessed."""
    with pytest.raises(IdentityError):
        Principal.from_claims(claims, environment="development", **CLAIMS)
