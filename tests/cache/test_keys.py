"""Cache keys: one key per meaning, a new key per data version."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from optima_bi_mcp.cache.keys import canonical_json, result_key

ARGS = {"days": 7, "bucket": "day", "timezone": "UTC", "merchant_id": None}
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)


@given(st.dictionaries(st.text(max_size=6), json_scalars, max_size=6))
def test_key_ignores_argument_order(arguments: dict[str, object]) -> None:
    """Reordering the arguments gives the same key."""
    reordered = dict(reversed(list(arguments.items())))
    key = result_key("ns", "get_sales", arguments, "admin", {"platform": 1})
    assert key == result_key("ns", "get_sales", reordered, "admin", {"platform": 1})


def test_key_changes_with_data_version() -> None:
    """A bumped data version makes a new key."""
    old = result_key("ns", "get_sales", ARGS, "merchant:a", {"merchant:a": 3})
    assert old != result_key("ns", "get_sales", ARGS, "merchant:a", {"merchant:a": 4})


def test_key_separates_principals_and_tools() -> None:
    """Two principals, or two tools, never share a key."""
    key = result_key("ns", "get_sales", ARGS, "merchant:a", {})
    assert key != result_key("ns", "get_sales", ARGS, "admin", {})
    assert key != result_key("ns", "top_products", ARGS, "merchant:a", {})


def test_canonical_json_sorts_keys_without_spaces() -> None:
    """Canonical JSON is sorted and compact."""
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'
