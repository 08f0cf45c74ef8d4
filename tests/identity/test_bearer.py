"""JWT validation details: JWKS caching and refetch on an unknown key id, and `--as`."""

from __future__ import annotations

import httpx
import pytest
from joserfc.jwk import RSAKey

from optima_bi_mcp.errors import IdentityError, InvalidArgumentError
from optima_bi_mcp.identity.bearer import JwksCache, JwtVerifier, local_principal
from optima_bi_mcp.settings import Settings


async def verifier_for(idp, identity_config, http, min_refresh_s: float) -> JwtVerifier:
    jwks = JwksCache(f"{idp.issuer}/jwks", http, min_refresh_s=min_refresh_s)
    return JwtVerifier(identity_config(idp), jwks)


async def test_keys_are_cached_between_tokens(idp, identity_config):
    """Two valid tokens cost one JWKS fetch."""
    async with httpx.AsyncClient() as http:
        verifier = await verifier_for(idp, identity_config, http, min_refresh_s=0)
        await verifier.claims(idp.sign(idp.claims()))
        claims = await verifier.claims(idp.sign(idp.claims(sub="bob")))
    assert claims["sub"] == "bob"
    assert verifier.jwks.fetches == 1


async def test_unknown_key_id_refetches_the_jwks(idp, identity_config):
    """A token naming an unknown kid triggers one refetch, then is refused."""
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rotated-away"})
    async with httpx.AsyncClient() as http:
        verifier = await verifier_for(idp, identity_config, http, min_refresh_s=0)
        await verifier.claims(idp.sign(idp.claims()))
        with pytest.raises(IdentityError):
            await verifier.claims(idp.sign(idp.claims(), key=stranger))
    assert verifier.jwks.fetches == 2


async def test_unknown_key_id_refetch_is_rate_limited(idp, identity_config):
    """Within min_refresh_s, unknown kids do not refetch: forged kids cannot flood the issuer."""
    stranger = RSAKey.generate_key(2048, parameters={"kid": "forged"})
    async with httpx.AsyncClient() as http:
        verifier = await verifier_for(idp, identity_config, http, min_refresh_s=3600)
        await verifier.claims(idp.sign(idp.claims()))
        for _ in range(5):
            with pytest.raises(IdentityError):
                await verifier.claims(idp.sign(idp.claims(), key=stranger))
    assert verifier.jwks.fetches == 1


async def test_refusal_never_names_the_token(idp, identity_config):
    """The error for a bad token says why, without the token."""
    token = idp.sign(idp.claims(aud="elsewhere"))
    async with httpx.AsyncClient() as http:
        verifier = await verifier_for(idp, identity_config, http, min_refresh_s=0)
        with pytest.raises(IdentityError) as caught:
            await verifier.claims(token)
    assert token not in str(caught.value.to_dict())


def test_as_override_is_refused_with_an_issuer():
    """`--as` is refused once an issuer is configured."""
    with pytest.raises(InvalidArgumentError, match="--as"):
        local_principal(Settings(issuer="http://127.0.0.1:9400"), "admin")


def test_as_override_works_locally():
    """Without an issuer, `--as` picks the local principal."""
    principal = local_principal(Settings(issuer=None), "admin")
    assert principal is not None and principal.is_admin
