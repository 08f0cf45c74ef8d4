"""SQL helpers shared by the platform metrics: UTC instants as query parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime


def ts(instant: datetime) -> str:
    """An instant as a `DateTime64(6, 'UTC')` parameter, microseconds kept."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def midnight(day: date) -> datetime:
    """The UTC instant `day` starts."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def instants(*names: str) -> str:
    """A WITH list binding each name to a `DateTime64(6, 'UTC')` query parameter."""
    return ", ".join(f"{{{name}:DateTime64(6, 'UTC')}} AS {name}" for name in names)
