"""Periods, buckets and months exactly as METRICS.md cuts them.

A period is half-open `[start, end)` in UTC instants. It is given either as
`start`/`end` dates (end inclusive as a date) or as `days=N`, meaning
`[start of today − (N−1) days, now)`; dates are cut in the requested IANA zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from optima_bi_mcp.errors import InvalidArgumentError

Bucket = Literal["hour", "day", "week", "month"]
MAX_BUCKETS = 400


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or INVALID_ARGUMENT naming `timezone`."""
    if name not in _zone_names():
        raise InvalidArgumentError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'",
            argument="timezone",
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgumentError(f"unknown time zone {name!r}", argument="timezone") from exc


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones() | {"UTC"})
    return _ZONES


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which `day` starts in `tz`."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """A resolved half-open period `[start, end)` in UTC, with the zone it was cut in."""

    start: datetime
    end: datetime
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length that ends where this one starts."""
        return Period(self.start - self.length, self.start, self.timezone)

    @property
    def start_date(self) -> date:
        return self.start.astimezone(self.tz).date()

    @property
    def end_date(self) -> date:
        """The last local date the period touches (inclusive)."""
        return (self.end - timedelta(microseconds=1)).astimezone(self.tz).date()


def resolve_period(
    *,
    start: date | None,
    end: date | None,
    days: int | None,
    timezone: str,
    default_days: int,
    now: datetime,
) -> Period:
    """Turn tool arguments into a `Period`, validating the combination."""
    tz = zone(timezone)
    if days is not None and (start is not None or end is not None):
        raise InvalidArgumentError(
            "give either start and end dates or days, not both", argument="days"
        )
    if (start is None) != (end is None):
        missing = "end" if end is None else "start"
        raise InvalidArgumentError(f"{missing} is required with the other date", argument=missing)
    if start is not None and end is not None:
        if end < start:
            raise InvalidArgumentError("end must not be before start", argument="end")
        return Period(
            local_midnight(start, tz), local_midnight(end + timedelta(days=1), tz), timezone
        )
    n = days if days is not None else default_days
    if n < 1:
        raise InvalidArgumentError("days must be at least 1", argument="days")
    today = now.astimezone(tz).date()
    return Period(local_midnight(today - timedelta(days=n - 1), tz), now.astimezone(UTC), timezone)


def bucket_starts(period: Period, bucket: Bucket) -> list[datetime]:
    """The UTC start of every bucket that overlaps the period, in order.

    Buckets are cut in the period's zone: local midnights for days, local
    Mondays for ISO weeks, the 1st for months, and local hour starts for hours.
    The first bucket may begin before the period (a week or month cut short).
    """
    tz = period.tz
    local_start = period.start.astimezone(tz)
    if bucket == "hour":
        first = local_start.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        count = int((period.end - first).total_seconds() // 3600) + 1
        _check_count(count, bucket)
        hours = (first + timedelta(hours=i) for i in range(count))
        return [h for h in hours if h < period.end]

    day = local_start.date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    starts: list[datetime] = []
    while (instant := local_midnight(day, tz)) < period.end:
        starts.append(instant)
        _check_count(len(starts), bucket)
        day = _next_bucket_day(day, bucket)
    return starts


def _next_bucket_day(day: date, bucket: Bucket) -> date:
    if bucket == "day":
        return day + timedelta(days=1)
    if bucket == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _check_count(count: int, bucket: Bucket) -> None:
    if count > MAX_BUCKETS:
        coarser = {"hour": "day", "day": "week", "week": "month", "month": "month"}[bucket]
        raise InvalidArgumentError(
            f"the series would have more than {MAX_BUCKETS} {bucket} buckets; "
            f"use bucket='{coarser}' or a shorter period",
            argument="bucket",
        )


def parse_month(value: str | None, now: datetime, argument: str = "month") -> date:
    """`YYYY-MM` (default: the current UTC month) as the date of its first day."""
    if value is None:
        current = now.astimezone(UTC)
        return date(current.year, current.month, 1)
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{argument} must be YYYY-MM, got {value!r}", argument=argument
        ) from exc
    return date(parsed.year, parsed.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """`[start of month, start of next month)` in UTC."""
    nxt = add_months(month, 1)
    return (
        datetime(month.year, month.month, 1, tzinfo=UTC),
        datetime(nxt.year, nxt.month, 1, tzinfo=UTC),
    )
