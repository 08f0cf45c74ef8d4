"""Decoding Debezium envelopes: exact numerics, timestamps, uuids, and refusals."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optima_bi_mcp.cdc.decode import decode_column, decode_event, table_of_topic
from optima_bi_mcp.errors import ChangeEventError

DECIMAL_SCHEMA = {
    "type": "bytes",
    "name": "org.apache.kafka.connect.data.Decimal",
    "parameters": {"scale": "2", "connect.decimal.precision": "12"},
}
MICRO = {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}
NANO = {"type": "int64", "name": "io.debezium.time.NanoTimestamp"}


def precise(value: Decimal, scale: int = 2) -> str:
    unscaled = int(value.scaleb(scale))
    raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8 or 1, "big", signed=True)
    return base64.b64encode(raw).decode()


@given(st.decimals(min_value=-(10**10) + 1, max_value=10**10 - 1, places=2))
def test_precise_decimals_decode_exactly(value: Decimal) -> None:
    """Base64 big-endian unscaled values with the schema's scale decode to the same number."""
    assert decode_column("amount", precise(value), DECIMAL_SCHEMA) == value


@pytest.mark.parametrize(
    ("encoded", "schema", "expected"),
    [
        ("12.30", {"type": "string"}, Decimal("12.30")),
        ({"scale": 3, "value": precise(Decimal("-1.5"), 3)}, {}, Decimal("-1.500")),
        (precise(Decimal("0.01")), DECIMAL_SCHEMA, Decimal("0.01")),
    ],
)
def test_decimal_encodings(encoded: Any, schema: dict[str, Any], expected: Decimal) -> None:
    """String mode and VariableScaleDecimal structs decode exactly too."""
    assert decode_column("price", encoded, schema) == expected


@pytest.mark.parametrize("encoded", ["10000000000.00", "0.001"])
def test_decimals_outside_numeric_12_2_are_refused(encoded: str) -> None:
    """A value the store's Decimal(12, 2) cannot hold goes to the DLQ, not into a retry loop."""
    with pytest.raises(ChangeEventError, match="numeric"):
        decode_column("amount", encoded, {"type": "string"})


def test_double_decimals_are_refused() -> None:
    """decimal.handling.mode=double is inexact, so a float is an error, not a guess."""
    with pytest.raises(ChangeEventError, match="price"):
        decode_column("price", 12.3, {"type": "double"})


@pytest.mark.parametrize(
    ("encoded", "schema"),
    [
        ("2026-12-03T13:19:20.218628Z", {"name": "io.debezium.time.ZonedTimestamp"}),
        ("2026-12-03T14:19:20.218628+01:00", {"name": "io.debezium.time.ZonedTimestamp"}),
        (1796303960218628, MICRO),
        (1796303960218628000, NANO),
    ],
)
def test_timestamps_decode_to_utc(encoded: Any, schema: dict[str, Any]) -> None:
    """Zoned strings and epoch integers all give the same aware UTC instant."""
    expected = datetime(2026, 12, 3, 13, 19, 20, 218628, tzinfo=UTC)
    assert decode_column("created_at", encoded, schema) == expected


def test_null_is_refused_outside_nullable_columns() -> None:
    """cost may be null; created_at may not."""
    assert decode_column("cost", None) is None
    with pytest.raises(ChangeEventError, match="created_at"):
        decode_column("created_at", None)


def test_topics_map_to_tables_only_under_the_prefix() -> None:
    """`<prefix>.public.<table>` names a table; other prefixes and tables do not."""
    table = table_of_topic("commerce.public.orders", "commerce")
    assert table is not None and table.name == "orders"
    assert table_of_topic("other.public.orders", "commerce") is None
    assert table_of_topic("commerce.public.heartbeat", "commerce") is None


def envelope(op: str, before: Any, after: Any, lsn: Any = 100) -> bytes:
    payload = {"op": op, "before": before, "after": after, "source": {"lsn": lsn, "ts_ms": 5}}
    return json.dumps({"schema": {"fields": []}, "payload": payload}).encode()


MERCHANT = {
    "id": str(uuid.uuid4()),
    "name": "m",
    "email": "m@x",
    "country": "US",
    "currency": "USD",
    "status": "active",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


def test_a_delete_event_carries_the_old_row_and_lsn() -> None:
    """op d decodes with before as the image, the id from it, and source.lsn."""
    event = decode_event("p.public.merchants", "p", envelope("d", MERCHANT, None, 42))
    assert (event.op, event.id, event.lsn) == ("d", uuid.UUID(MERCHANT["id"]), 42)


@pytest.mark.parametrize(
    "value",
    [
        b"\x00\xffgarbage",
        b"[1, 2]",
        envelope("x", None, MERCHANT),
        envelope("c", None, {"id": MERCHANT["id"]}),
        envelope("c", None, MERCHANT, lsn=None),
        envelope("c", None, MERCHANT | {"created_at": "yesterday"}),
    ],
)
def test_malformed_events_are_refused_with_a_reason(value: bytes) -> None:
    """Garbage, unknown ops, missing columns, no LSN and bad values raise ChangeEventError."""
    with pytest.raises(ChangeEventError) as caught:
        decode_event("p.public.merchants", "p", value)
    assert caught.value.message


def test_an_update_decodes_both_images_each_with_its_own_values() -> None:
    """The old row shares the new row's decoded values where their encodings agree only."""
    renamed = MERCHANT | {"name": "n", "updated_at": "2026-02-01T00:00:00Z"}
    event = decode_event("p.public.merchants", "p", envelope("u", MERCHANT, renamed))
    assert event.before is not None and event.after is not None
    assert (event.before["name"], event.after["name"]) == ("m", "n")
    assert event.after["updated_at"] - event.before["updated_at"] == timedelta(days=31)
    assert (
        event.before["created_at"] == event.after["created_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    )
