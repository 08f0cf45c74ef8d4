"""The row policy of ROW_POLICY.md, asked of the embedded engine: chDB refuses both parts.

This pins chDB's behaviour honestly rather than pretending the policy works
embedded; on a ClickHouse server the statements in ROW_POLICY.md apply.
"""

from __future__ import annotations

import pytest

from optima_bi_mcp.errors import StoreError

POLICY = (
    "CREATE ROW POLICY merchant_scope ON orders "
    "USING merchant_id = toUUID(getSetting('SQL_optima_merchant_id')) TO ALL"
)
MERCHANT = "a0000000-0000-4000-8000-00000000000a"


@pytest.fixture(scope="module")
def store(make_store):
    return make_store("rowpolicy")


def test_chdb_refuses_to_create_a_row_policy(store):
    """CREATE ROW POLICY is refused embedded: chDB has no access management (ACCESS_DENIED)."""
    with pytest.raises(StoreError, match="ACCESS_DENIED|Not enough privileges"):
        store.command(POLICY)


def test_chdb_refuses_the_custom_merchant_setting(store):
    """A per-query SQL_optima_merchant_id setting is refused embedded (UNKNOWN_SETTING)."""
    with pytest.raises(StoreError, match="UNKNOWN_SETTING|Unknown setting"):
        store.query(
            "SELECT count() FROM orders FINAL", settings={"SQL_optima_merchant_id": MERCHANT}
        )
