"""Who is asking: principals, device-flow login, token storage, bearer validation.

- `principal`: the `Principal` (role, merchant) every query is scoped by.
- `config`: settings and the issuer's metadata (OIDC Discovery / RFC 8414).
- `oauth`: the client side of RFC 8628 (device flow), RFC 6749 §6 (refresh)
  and RFC 7009 (revocation).
- `storage`: tokens at rest, encrypted, per environment.
- `session`: a stdio session's login state (`DeviceSession`).
- `bearer`: JWT validation against the issuer's JWKS for streamable HTTP.
- `tools`: the `login`, `logout` and `whoami` tool logic.
- `wiring`: the `build_server` arguments for each transport.
- `dev_idp`: a development OAuth/OIDC provider (`optima-bi dev-idp`).
- `ROW_POLICY.md`: isolation in depth, and the ClickHouse row policy.
"""
