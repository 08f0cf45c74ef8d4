"""The shape of the synthetic commerce dataset, decided in Python before any row exists.

`plan_dataset` turns a `SeedSpec` into a `DatasetPlan`: the merchants (ranked by
size, with Zipf-like order shares, lifetimes and growth), the daily demand curve
(trend, yearly and weekly seasonality, Black Friday), and the subscription
history of every merchant. The bulk rows (customers, products, orders, items,
transfers) are generated from this plan inside ClickHouse (`seed_sql`).

Every random choice is a hash of the seed and a label, never a global random
state, so the same spec gives the same plan on any machine and Python version.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from optima_bi_mcp.errors import InvalidArgumentError

DAYS = 1000  # about 2.7 years of history, enough for year-over-year comparisons
ANCHOR_SHARE = 0.10  # the smallest share of orders the largest merchant may hold
TRIAL_DAYS = 14

PRICES: dict[tuple[str, str], Decimal] = {
    ("free", "month"): Decimal("0.00"),
    ("pro", "month"): Decimal("29.00"),
    ("pro", "year"): Decimal("290.00"),
    ("enterprise", "month"): Decimal("299.00"),
    ("enterprise", "year"): Decimal("2990.00"),
}

# Roles of the merchants after the anchors, repeating: mostly active shops, some
# that stopped selling long ago (churned) and some that went quiet (sleeping).
ROLE_CYCLE = ("active", "churned", "active", "sleeping", "active", "active", "churned", "active")
WEEKDAY_FACTOR = (1.08, 1.04, 1.0, 0.98, 0.94, 0.86, 1.10)  # Monday first

_ADJECTIVES = [
    "Northwind",
    "Blue",
    "Copper",
    "Golden",
    "Urban",
    "Wild",
    "Quiet",
    "Bright",
    "Maple",
    "Harbor",
    "Silver",
    "Pine",
    "Coastal",
    "Velvet",
    "Iron",
    "Cedar",
    "Sunny",
    "Little",
    "Grand",
    "Rustic",
    "Modern",
    "Lucky",
    "Misty",
    "Amber",
    "Noble",
    "Happy",
]
_NOUNS = [
    "Outfitters",
    "Goods",
    "Supply",
    "Market",
    "Studio",
    "Emporium",
    "Trading",
    "Works",
    "Collective",
    "Boutique",
    "Provisions",
    "Mercantile",
    "Depot",
    "Atelier",
    "House",
    "Corner",
    "Bazaar",
    "Crafts",
    "Lab",
    "Co",
]
_COUNTRIES = ("US",) * 10 + ("GB", "GB", "DE", "DE", "FR", "CA", "CA", "AU", "NL", "ES", "SE", "JP")


@dataclass(frozen=True)
class SeedSpec:
    """What to generate: the seed, the scale and the last day of data."""

    seed: int = 42
    merchants: int = 20
    orders: int = 50_000
    until: date = field(default_factory=lambda: datetime.now(UTC).date() - timedelta(days=1))

    def __post_init__(self) -> None:
        if not 1 <= self.merchants <= 100_000:
            raise InvalidArgumentError("merchants must be 1 to 100000", argument="merchants")
        if not 0 <= self.orders <= 1_000_000_000:
            raise InvalidArgumentError("orders must be 0 to 1e9", argument="orders")
        if not 0 <= self.seed < 2**63:
            raise InvalidArgumentError("seed must be a non-negative integer", argument="seed")

    @property
    def start(self) -> date:
        """The first day of data."""
        return self.until - timedelta(days=DAYS - 1)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """The last instant of data: the end of the `until` day.

        The default `until` is yesterday (UTC): a seed cannot stop at "now" and stay
        deterministic, and a day that has not happened yet must hold no orders.
        """
        return self.start_at + timedelta(days=DAYS) - timedelta(microseconds=1)


@dataclass(frozen=True)
class MerchantPlan:
    rank: int
    id: uuid.UUID
    name: str
    email: str
    country: str
    status: str
    role: str
    created_at: datetime
    updated_at: datetime
    first_day: int  # day index of the first possible order
    last_day: int  # day index of the last possible order
    share: float  # expected share of all orders
    growth: float  # linear growth of demand over the whole history
    norm: float  # sum of the merchant's daily demand over its lifetime
    fee_bp: int  # platform fee in basis points of amount_total
    customers: int  # customer pool, registered and guests
    products: int


@dataclass(frozen=True)
class DatasetPlan:
    spec: SeedSpec
    daily: tuple[float, ...]
    merchants: tuple[MerchantPlan, ...]


def unit(seed: int, *parts: object) -> float:
    """A deterministic number in [0, 1) for the seed and the given labels."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def stable_uuid(seed: int, *parts: object) -> uuid.UUID:
    """A deterministic version-4 UUID for the seed and the given labels."""
    digest = hashlib.blake2b(repr((seed, "uuid", *parts)).encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4)


def daily_weights(spec: SeedSpec) -> tuple[float, ...]:
    """Platform demand per day: growth trend × yearly season × weekday × Black Friday."""
    weights = []
    for d in range(DAYS):
        day = spec.start + timedelta(days=d)
        trend = 1.0 + 0.6 * d / DAYS
        season = 1.0 + 0.25 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 350) / 365.25)
        weights.append(trend * season * WEEKDAY_FACTOR[day.weekday()] * _holiday(day))
    return tuple(weights)


def _holiday(day: date) -> float:
    """Black Friday through Cyber Monday sell about twice a usual day."""
    if day.month != 11:
        return 1.0
    first = date(day.year, 11, 1)
    black_friday = first + timedelta(days=(4 - first.weekday()) % 7 + 21)
    return 2.0 if 0 <= (day - black_friday).days <= 3 else 1.0


def zipf_shares(count: int) -> list[float]:
    """Shares ∝ 1/rank, with the largest lifted to at least ANCHOR_SHARE."""
    raw = [1.0 / (r + 1) for r in range(count)]
    total = sum(raw)
    shares = [w / total for w in raw]
    if count > 1 and shares[0] < ANCHOR_SHARE:
        rest = (1.0 - ANCHOR_SHARE) / (1.0 - shares[0])
        shares = [ANCHOR_SHARE] + [s * rest for s in shares[1:]]
    return shares


def plan_dataset(spec: SeedSpec) -> DatasetPlan:
    """Decide every merchant and the demand curve for a spec."""
    daily = daily_weights(spec)
    shares = zipf_shares(spec.merchants)
    names = _merchant_names(spec)
    merchants = tuple(
        _plan_merchant(spec, rank, shares[rank], names[rank], daily)
        for rank in range(spec.merchants)
    )
    return DatasetPlan(spec=spec, daily=daily, merchants=merchants)


def role_of(rank: int, count: int) -> str:
    """anchor (large, old, active), new (joined days ago), or from ROLE_CYCLE."""
    anchors = max(1, math.ceil(count * 0.1))
    if rank < anchors:
        return "anchor"
    if rank == count - 1 and count >= 4:
        return "new"
    return ROLE_CYCLE[(rank - anchors) % len(ROLE_CYCLE)]


def _lifetime(spec: SeedSpec, rank: int, role: str) -> tuple[int, int]:
    u = unit(spec.seed, "lifetime", rank)
    last = DAYS - 1
    if role == "anchor":
        return int(u * 40), last
    if role == "new":
        return last - 3 - int(u * 10), last
    first = int(u * (0.6 if role != "active" else 0.9) * DAYS)
    if role == "churned":
        stop = first + 90 + int(unit(spec.seed, "churn", rank) * max(1, DAYS - 200 - first - 90))
        return first, min(stop, last - 120)
    if role == "sleeping":
        return first, last - 35 - int(unit(spec.seed, "sleep", rank) * 50)
    return first, last


def _plan_merchant(
    spec: SeedSpec, rank: int, share: float, name: str, daily: tuple[float, ...]
) -> MerchantPlan:
    role = role_of(rank, spec.merchants)
    first, last = _lifetime(spec, rank, role)
    growth = -0.5 + 2.0 * unit(spec.seed, "growth", rank)
    if role == "anchor":
        growth = abs(growth) + 0.3
    norm = sum(daily[d] * (1.0 + growth * (d - first) / DAYS) for d in range(first, last + 1))
    expected = spec.orders * share
    created = spec.start_at + timedelta(days=first) - _jitter(spec.seed, "created", rank, hours=72)
    slug = "-".join(name.lower().split())
    return MerchantPlan(
        rank=rank,
        id=stable_uuid(spec.seed, "merchant", rank),
        name=name,
        email=f"owner+{rank}@{slug}.example",
        country=_COUNTRIES[int(unit(spec.seed, "country", rank) * len(_COUNTRIES))],
        status=_merchant_status(role, rank),
        role=role,
        created_at=created,
        updated_at=created + (spec.end_at - created) * unit(spec.seed, "updated", rank),
        first_day=first,
        last_day=last,
        share=share,
        growth=growth,
        norm=norm,
        fee_bp=(150, 200, 250, 290)[int(unit(spec.seed, "fee", rank) * 4)],
        customers=max(3, round(expected / 2.6)),
        products=max(8, min(1500, round(3 * math.sqrt(expected)))),
    )


def _merchant_status(role: str, rank: int) -> str:
    if role == "churned":
        return "closed"
    if role == "sleeping" and rank % 2:
        return "suspended"
    return "active"


def _merchant_names(spec: SeedSpec) -> list[str]:
    offset = int(unit(spec.seed, "names") * len(_ADJECTIVES))
    names = []
    for rank in range(spec.merchants):
        adjective = _ADJECTIVES[(rank + offset) % len(_ADJECTIVES)]
        noun = _NOUNS[(rank // len(_ADJECTIVES) + rank * 7 + offset) % len(_NOUNS)]
        lap = rank // (len(_ADJECTIVES) * len(_NOUNS))
        names.append(f"{adjective} {noun}" + (f" {lap + 1}" if lap else ""))
    return names


def _jitter(seed: int, label: str, rank: int, *, hours: int) -> timedelta:
    """Between one hour and `hours` hours, with microseconds."""
    micros = int(unit(seed, label, rank) * (hours - 1) * 3_600_000_000)
    return timedelta(hours=1, microseconds=micros)


# Subscription histories: each merchant follows a script of plan actions spread
# over its lifetime. The first scripts are fixed so that even a small dataset
# holds every plan, trials, yearly billing, upgrades, downgrades, cancellations,
# reactivations and a past-due account.
Action = tuple[str, ...]
_SCRIPTS: tuple[tuple[Action, ...], ...] = (
    (("start", "pro", "month", "trial"), ("change", "enterprise", "year", "")),
    (("start", "pro", "month", ""), ("change", "free", "month", ""), ("change", "pro", "year", "")),
    (("start", "free", "month", ""),),
    (("start", "pro", "month", "trial"), ("cancel",), ("reactivate", "pro", "month", "")),
    (("start", "enterprise", "month", "trial"), ("change", "pro", "month", ""), ("past_due",)),
)


def subscription_rows(spec: SeedSpec, merchant: MerchantPlan) -> list[tuple[object, ...]]:
    """The merchant's subscription rows, in `tables.py` column order."""
    actions = list(_script(spec, merchant))
    stop = spec.end_at
    if merchant.role == "churned":
        stop = spec.start_at + timedelta(days=merchant.last_day + 20)
        actions.append(("cancel",))
    times = _action_times(spec.seed, merchant, len(actions), stop)
    return _play(spec, merchant, list(zip(times, actions, strict=True)))


def _script(spec: SeedSpec, merchant: MerchantPlan) -> tuple[Action, ...]:
    if merchant.role == "new":
        return (("start", "pro", "month", "trial"),)
    if merchant.rank < len(_SCRIPTS):
        return _SCRIPTS[merchant.rank]

    def pick(label: str, *options: Action) -> Action:
        return options[int(unit(spec.seed, label, merchant.rank) * len(options))]

    plan = pick("plan", ("free",), ("free",), ("pro",), ("pro",), ("enterprise",))[0]
    interval = "year" if plan != "free" and unit(spec.seed, "yearly", merchant.rank) < 0.25 else ""
    trial = "trial" if plan != "free" and unit(spec.seed, "trial", merchant.rank) < 0.4 else ""
    script: list[Action] = [("start", plan, interval or "month", trial)]
    for step in range(int(unit(spec.seed, "events", merchant.rank) * 3)):
        if plan == "free":
            script.append(("change", "pro", pick(f"int{step}", ("month",), ("year",))[0], ""))
        elif plan == "pro":
            script += _pro_event(pick(f"pro{step}", ("up",), ("down",), ("cancel",), ("cancel",)))
        else:
            script.append(("change", "pro", "month", ""))
        plan = script[-1][1] if script[-1][0] != "cancel" else plan
    if unit(spec.seed, "past_due", merchant.rank) < 0.08:
        script.append(("past_due",))
    return tuple(script)


def _pro_event(choice: Action) -> list[Action]:
    if choice[0] == "up":
        return [("change", "enterprise", "month", "")]
    if choice[0] == "down":
        return [("change", "free", "month", "")]
    return [("cancel",), ("reactivate", "pro", "month", "")]


def _action_times(seed: int, merchant: MerchantPlan, count: int, stop: datetime) -> list[datetime]:
    """The first action at creation, the others spread over the lifetime with jitter."""
    span = stop - merchant.created_at
    times = [merchant.created_at]
    for i in range(1, count):
        shift = 0.8 * (unit(seed, "action", merchant.rank, i) - 0.5)
        times.append(merchant.created_at + span * ((i + shift) / count))
    return times


def _play(
    spec: SeedSpec, merchant: MerchantPlan, timeline: list[tuple[datetime, Action]]
) -> list[tuple[object, ...]]:
    rows: list[list[object]] = []
    current: list[object] | None = None
    past_due = False
    for at, action in timeline:
        kind = action[0]
        if kind == "past_due":
            past_due = True
            continue
        if current is not None and kind in ("change", "cancel"):
            current[3], current[8], current[10] = "canceled", at, at
            current = None
        if kind in ("start", "change", "reactivate"):
            current = _open_row(spec, merchant, len(rows), at, action)
            rows.append(current)
    if current is not None:
        _settle_open_row(spec, current, past_due)
    return [tuple(row) for row in rows]


def _open_row(
    spec: SeedSpec, merchant: MerchantPlan, index: int, at: datetime, action: Action
) -> list[object]:
    _, plan, interval, trial = action
    trial_ends = at + timedelta(days=TRIAL_DAYS) if trial else None
    row_id = stable_uuid(spec.seed, "subscription", merchant.rank, index)
    amount = PRICES[(plan, interval)]
    return [row_id, merchant.id, plan, "active", interval, amount, at, trial_ends, None, at, at]


def _settle_open_row(spec: SeedSpec, row: list[object], past_due: bool) -> None:
    """The status of the row still open at the end of the data."""
    trial_ends, created = row[7], row[9]
    if isinstance(trial_ends, datetime) and trial_ends > spec.end_at:
        row[3] = "trialing"
    elif past_due and row[2] != "free" and isinstance(created, datetime):
        row[3] = "past_due"
        row[10] = max(created, spec.end_at - timedelta(days=3))
    elif isinstance(trial_ends, datetime):
        row[10] = trial_ends
