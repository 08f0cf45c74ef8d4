"""Money and ratio rounding: exact decimals, half to even, only at the end."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import PlainSerializer

CENT = Decimal("0.01")
RATIO_PLACES = Decimal("0.0001")


def money(value: Any) -> Decimal:
    """An exact amount rounded to the cent, half to even."""
    return Decimal(value if value is not None else 0).quantize(CENT, rounding=ROUND_HALF_EVEN)


def ratio(numerator: Any, denominator: Any) -> Decimal | None:
    """numerator / denominator to 4 decimals (half to even); None when denominator is 0."""
    den = Decimal(denominator or 0)
    if den == 0:
        return None
    return (Decimal(numerator or 0) / den).quantize(RATIO_PLACES, rounding=ROUND_HALF_EVEN)


def growth_pct(current: Any, previous: Any) -> Decimal | None:
    """(current − previous) / previous × 100 to 4 decimals; None when previous is 0."""
    prev = Decimal(previous or 0)
    if prev == 0:
        return None
    change = (Decimal(current or 0) - prev) * 100 / prev
    return change.quantize(RATIO_PLACES, rounding=ROUND_HALF_EVEN)


def utc(value: datetime) -> datetime:
    """A datetime from the store (naive means UTC there) as an aware UTC instant."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    text = utc(value).isoformat(timespec="microseconds")
    text = text.removesuffix("+00:00")
    return (text.removesuffix(".000000")) + "Z"


# JSON numbers for money and ratios; Decimal inside for exact arithmetic.
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
Ratio = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
Instant = Annotated[datetime, PlainSerializer(_iso_z, return_type=str, when_used="json")]
