"""SQL that generates the bulk of the synthetic dataset inside ClickHouse.

Rows come from `numbers()` and `cityHash64` salted with the seed, so they are a
pure function of the plan (`synth.DatasetPlan`): the same plan always yields the
same rows, whatever the thread count or block boundaries. Only integer and
IEEE-exact float arithmetic (+, ×, ÷, floor) decide values; money is computed
in integer cents and converted to Decimal(12, 2) last.

Orders are generated per (merchant, day) cell: each cell's expected count is
the merchant's share × the day's demand / the merchant's lifetime demand, with
noise and stochastic rounding. An order's items are a function of the order's
hash and the item's position, so `orders.amount_total` (Σ of its items) and
`order_items` are computed from the same expressions without a join.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from optima_bi_mcp.data.synth import DAYS, DatasetPlan

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEED_VERSION = 1  # `_version` of seeded rows; any change event or backfill wins over it

_FIRST_NAMES = [
    "Ada",
    "Ben",
    "Chloe",
    "Dan",
    "Eva",
    "Finn",
    "Grace",
    "Hugo",
    "Iris",
    "Jack",
    "Kira",
    "Liam",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Victor",
    "Wendy",
    "Xavier",
    "Yara",
    "Zoe",
    "Omar",
    "Lena",
    "Ivan",
    "Sofia",
]
_LAST_NAMES = [
    "Smith",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Lopez",
    "Wilson",
    "Moore",
    "Taylor",
    "Thomas",
    "White",
    "Harris",
    "Martin",
    "Clark",
    "Lewis",
    "Young",
    "Walker",
    "Hall",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "O'Brien",
]
_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "example.org")
_CATEGORIES = ("Apparel", "Electronics", "Home", "Beauty", "Sports", "Toys", "Books", "Grocery")
_CATEGORY_NOUNS = [
    "T-Shirt",
    "Hoodie",
    "Jacket",
    "Sneakers",
    "Scarf",
    "Headphones",
    "Charger",
    "Speaker",
    "Keyboard",
    "Webcam",
    "Lamp",
    "Mug",
    "Blanket",
    "Vase",
    "Pillow",
    "Serum",
    "Lipstick",
    "Shampoo",
    "Perfume",
    "Lotion",
    "Jersey",
    "Dumbbell",
    "Bottle",
    "Racket",
    "Helmet",
    "Puzzle",
    "Robot",
    "Plush",
    "Blocks",
    "Kite",
    "Novel",
    "Cookbook",
    "Atlas",
    "Journal",
    "Comic",
    "Coffee",
    "Tea",
    "Honey",
    "Granola",
    "Chocolate",
]
_PRODUCT_ADJECTIVES = [
    "Classic",
    "Premium",
    "Eco",
    "Mini",
    "Pro",
    "Deluxe",
    "Everyday",
    "Vintage",
    "Smart",
    "Ultra",
]
_PRICE_DOLLARS = (5, 8, 10, 12, 15, 15, 20, 20, 25, 30, 35, 40, 50, 60, 80, 100, 150, 250)
_ITEM_COUNTS = (1,) * 9 + (2,) * 5 + (3,) * 3 + (4,) * 2 + (5,)  # 20 slots, mean ≈ 2
# Hour of day in UTC, 100 slots weighted towards the afternoon and evening.
_HOURS = tuple(
    h
    for h, n in enumerate((1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 6, 5, 2))
    for _ in range(n)
)

COUNTED = ("paid", "shipped", "delivered", "completed")
# Order status by age in days: (oldest age of the bucket, per-mille of each status).
_STATUS_BY_AGE = (
    (0, {"pending": 300, "paid": 500, "shipped": 150, "cancelled": 50}),
    (2, {"pending": 100, "paid": 350, "shipped": 400, "delivered": 80, "cancelled": 50,
         "refunded": 20}),
    (13, {"pending": 20, "paid": 80, "shipped": 250, "delivered": 400, "completed": 150,
          "cancelled": 60, "refunded": 40}),
    (DAYS, {"pending": 10, "paid": 20, "shipped": 20, "delivered": 100, "completed": 720,
            "cancelled": 70, "refunded": 60}),
)  # fmt: skip
# How long after creation an order reached its status, in microseconds: (base, spread).
_STATUS_LAG_US = {
    "pending": (0, 1),
    "paid": (60_000_000, 1_800_000_000),
    "shipped": (86_400_000_000, 172_800_000_000),
    "delivered": (259_200_000_000, 432_000_000_000),
    "completed": (864_000_000_000, 864_000_000_000),
    "cancelled": (3_600_000_000, 169_200_000_000),
    "refunded": (432_000_000_000, 2_160_000_000_000),
}


def plan_parameters(plan: DatasetPlan) -> dict[str, Any]:
    """The `{name:Type}` parameters every generating statement reads."""
    spec, merchants = plan.spec, plan.merchants
    return {
        "seed": spec.seed,
        "days": DAYS,
        "merchants": len(merchants),
        "cells": len(merchants) * DAYS,
        "orders": float(spec.orders),
        "start": spec.start_at.strftime("%Y-%m-%d %H:%M:%S"),
        "end": spec.end_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "end_us": _micros(spec.end_at),
        "version": SEED_VERSION,
        "mid": [m.id for m in merchants],
        "first": [m.first_day for m in merchants],
        "last": [m.last_day for m in merchants],
        "share": [m.share for m in merchants],
        "growth": [m.growth for m in merchants],
        "norm": [m.norm for m in merchants],
        "fee_bp": [m.fee_bp for m in merchants],
        "customers": [m.customers for m in merchants],
        "products": [m.products for m in merchants],
        "created_us": [_micros(m.created_at) for m in merchants],
        "daily": list(plan.daily),
        "hours": list(_HOURS),
        "item_counts": list(_ITEM_COUNTS),
        "price_dollars": list(_PRICE_DOLLARS),
        "first_names": list(_FIRST_NAMES),
        "last_names": list(_LAST_NAMES),
        "domains": list(_DOMAINS),
        "categories": list(_CATEGORIES),
        "category_nouns": list(_CATEGORY_NOUNS),
        "product_adjectives": list(_PRODUCT_ADJECTIVES),
    }


def _micros(at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    return (at - _EPOCH) // timedelta(microseconds=1)


# --- expressions shared by several statements --------------------------------


def _pick(array: str, hash_sql: str) -> str:
    """An element of an array parameter chosen by a hash."""
    return f"{{{array}}}[1 + ({hash_sql}) % length({{{array}}})]"


def _unit(hash_sql: str) -> str:
    """A float in [0, 1) from a hash (24 bits are plenty for picks)."""
    return f"(({hash_sql}) % 16777216 / 16777216)"


def _uuid(hash_sql: str) -> str:
    """A version-4 UUID from a hash: two derived halves with the version and variant bits set.

    The halves' bytes (as FixedString(8), little-endian) read as a UUID give the text
    `hex(high)-…-hex(low)`, which is what PostgreSQL receives.
    """
    high = f"bitOr(bitAnd(cityHash64({hash_sql}, 1), 18446744073709490175), 16384)"
    low = f"bitOr(bitAnd(cityHash64({hash_sql}, 2), 4611686018427387903), 9223372036854775808)"
    return (
        f"reinterpretAsUUID(concat(reinterpretAsFixedString({high}), "
        f"reinterpretAsFixedString({low})))"
    )


def _money(cents_sql: str) -> str:
    return f"(toDecimal64({cents_sql}, 2) / 100)"


_START = "toDateTime64({start:String}, 6, 'UTC')"
_END = "toDateTime64({end:String}, 6, 'UTC')"
_PRODUCT_HASH = "cityHash64({seed:UInt64}, 'product', toUInt32(m), toUInt32(j))"


def _price_cents(product_hash: str) -> str:
    """A product's list price in cents (x.99 prices), from its hash."""
    dollars = _pick("price_dollars:Array(UInt32)", f"cityHash64({product_hash}, 1)")
    return f"(toUInt64({dollars}) * 100 - 1)"


_CUSTOMER_HASH = "cityHash64({seed:UInt64}, 'customer', toUInt32(m), toUInt32(c))"
_EMAIL = (
    f"concat(lower({_pick('first_names:Array(String)', 'cityHash64(hc, 1)')}), '.', "
    f"replaceAll(lower({_pick('last_names:Array(String)', 'cityHash64(hc, 2)')}), '''', ''), "
    f"toString(c), '@', {_pick('domains:Array(String)', 'cityHash64(hc, 3)')})"
)
_CUSTOMER_NAME = (
    f"concat({_pick('first_names:Array(String)', 'cityHash64(hc, 1)')}, ' ', "
    f"{_pick('last_names:Array(String)', 'cityHash64(hc, 2)')})"
)


def _item_parts(order_hash: str, k: str, m: str) -> dict[str, str]:
    """Product index, unit price and quantity of item `k` of an order, as SQL."""
    hi = f"cityHash64({order_hash}, 'item', toUInt8({k}))"
    u = _unit(f"cityHash64({hi}, 1)")
    j = f"toUInt32(floor({{products:Array(UInt32)}}[{m} + 1] * {u} * {u}))"
    hp = f"cityHash64({{seed:UInt64}}, 'product', toUInt32({m}), {j})"
    price = _price_cents(hp)
    discount = f"if(cityHash64({hi}, 2) % 100 < 12, 10 + cityHash64({hi}, 3) % 21, 0)"
    quantity_draw = f"cityHash64({hi}, 4) % 100"
    quantity = (
        f"toUInt64(multiIf({quantity_draw} < 70, 1, {quantity_draw} < 90, 2, "
        f"3 + cityHash64({hi}, 5) % 3))"
    )
    unit_cents = f"intDiv({price} * (100 - {discount}), 100)"
    return {"hash": hi, "product_hash": hp, "unit_cents": unit_cents, "quantity": quantity}


def _status_sql(age: str, draw: str) -> str:
    branches = []
    for oldest, weights in _STATUS_BY_AGE:
        cumulative, arms = 0, []
        for status, per_mille in weights.items():
            cumulative += per_mille
            arms.append(f"{draw} < {cumulative}, '{status}'")
        branches.append(f"{age} <= {oldest}, multiIf({', '.join(arms)}, 'cancelled')")
    return f"multiIf({', '.join(branches)}, 'completed')"


def _status_lag_sql(status: str, draw: str) -> str:
    arms = [
        f"{status} = '{name}', {base} + {draw} % {spread}"
        for name, (base, spread) in _STATUS_LAG_US.items()
    ]
    return f"toInt64(multiIf({', '.join(arms)}, 0))"


# --- orders and their items ----------------------------------------------------

_CELLS = """
SELECT m, d, toUInt32(floor(expected * (0.75 + 0.5 * u1) + u2)) AS cnt
FROM (
    SELECT toUInt32(intDiv(number, {days:UInt32})) AS m,
           toUInt32(number % {days:UInt32}) AS d,
           {first:Array(UInt32)}[m + 1] AS first_day,
           {last:Array(UInt32)}[m + 1] AS last_day,
           if(d >= first_day AND d <= last_day,
              {orders:Float64} * {share:Array(Float64)}[m + 1] * {daily:Array(Float64)}[d + 1]
                * (1 + {growth:Array(Float64)}[m + 1] * (toInt64(d) - first_day) / {days:UInt32})
                / {norm:Array(Float64)}[m + 1],
              0) AS expected,
           cityHash64({seed:UInt64}, 'cell', m, d) AS h,
           (h % 16777216) / 16777216 AS u1,
           intDiv(h, 16777216) % 16777216 / 16777216 AS u2
    FROM numbers({cells:UInt64})
)
WHERE cnt > 0
"""


def _order_rows() -> str:
    """Every order with the attributes its row and its items need."""
    draw = _unit("cityHash64(h, 'lag')")
    return f"""
SELECT m, d, i, h, merchant_id, n_items, c, hc,
       addMicroseconds({_START}, toInt64(d) * 86400000000 + tod) AS created_at,
       {_status_sql("age", "cityHash64(h, 'status') % 1000")} AS status
FROM (
    SELECT m, d, i,
           cityHash64({{seed:UInt64}}, 'order', m, d, toUInt32(i)) AS h,
           {{mid:Array(UUID)}}[m + 1] AS merchant_id,
           toInt64({_pick("hours:Array(UInt8)", "cityHash64(h, 'hour')")}) * 3600000000
             + toInt64(cityHash64(h, 'usec') % 3600000000) AS tod,
           toInt64({{days:UInt32}}) - 1 - d AS age,
           {_pick("item_counts:Array(UInt8)", "cityHash64(h, 'items')")} AS n_items,
           {{first:Array(UInt32)}}[m + 1] AS first_day,
           {{last:Array(UInt32)}}[m + 1] - first_day + 1 AS span,
           toUInt64({{customers:Array(UInt32)}}[m + 1]) AS pool,
           greatest(toUInt64(1), intDiv(pool * (d - first_day + 1), span)) AS arrived,
           toUInt64(floor(pool * 120 / span * {draw} * {draw} * 4)) AS lag,
           toUInt32(if(cityHash64(h, 'loyal') % 100 < 20, cityHash64(h, 'pick') % arrived,
                       arrived - 1 - least(lag, arrived - 1))) AS c,
           {_CUSTOMER_HASH} AS hc
    FROM ({_CELLS}) ARRAY JOIN range(cnt) AS i
)
"""


def orders_sql() -> str:
    """INSERT … SELECT of every order."""
    item = _item_parts("h", "k", "m")
    amount = f"{item['quantity']} * {item['unit_cents']}"
    variant = "cityHash64(h, 'case') % 100"
    return f"""
INSERT INTO orders (id, merchant_id, order_number, customer_email, status, currency,
                    amount_total, platform_fee, created_at, updated_at, _version, _is_deleted)
SELECT {_uuid("h")}, merchant_id,
       concat(toString(toYYYYMMDD(created_at)), '-', leftPad(toString(i + 1), 4, '0')),
       multiIf({variant} = 0, upper(email), {variant} = 1,
               concat(upper(substring(email, 1, 1)), substring(email, 2)),
               {variant} = 2, concat(' ', email), {variant} = 3, concat(email, ' '), email),
       status, 'USD', {_money("total_cents")},
       {_money("intDiv(total_cents * {fee_bp:Array(UInt32)}[m + 1] + 5000, 10000)")},
       created_at,
       least(addMicroseconds(created_at, {_status_lag_sql("status", "cityHash64(h, 'upd')")}),
             {_END}),
       {{version:UInt64}}, 0
FROM (
    SELECT *, {_EMAIL} AS email,
           arraySum(arrayMap(k -> {amount}, range(n_items))) AS total_cents
    FROM ({_order_rows()})
)
"""


def order_items_sql() -> str:
    """INSERT … SELECT of every order's items (same expressions as the order total)."""
    item = _item_parts("h", "k", "m")
    return f"""
INSERT INTO order_items (id, order_id, merchant_id, product_id, quantity, unit_price, amount,
                         created_at, _version, _is_deleted)
SELECT {_uuid(item["hash"])}, {_uuid("h")}, merchant_id, {_uuid(item["product_hash"])},
       toInt32(quantity), {_money("unit_cents")}, {_money("quantity * unit_cents")},
       created_at, {{version:UInt64}}, 0
FROM (
    SELECT *, k, {item["quantity"]} AS quantity, {item["unit_cents"]} AS unit_cents
    FROM ({_order_rows()}) ARRAY JOIN range(n_items) AS k
)
"""


# --- customers and products ------------------------------------------------------


def customers_sql() -> str:
    """Registered customers (70 % of each merchant's pool; the rest check out as guests)."""
    capitalize = "cityHash64(hc, 'cap') % 100 < 5"
    return f"""
INSERT INTO customers (id, merchant_id, email, name, created_at, updated_at,
                       _version, _is_deleted)
SELECT {_uuid("hc")}, {{mid:Array(UUID)}}[m + 1],
       if({capitalize}, concat(upper(substring(email, 1, 1)), substring(email, 2)), email),
       {_CUSTOMER_NAME}, created_at, created_at, {{version:UInt64}}, 0
FROM (
    SELECT m, c, hc, {_EMAIL} AS email,
           {{first:Array(UInt32)}}[m + 1] AS first_day,
           {{last:Array(UInt32)}}[m + 1] - first_day + 1 AS span,
           first_day + intDiv(toUInt64(c) * span, {{customers:Array(UInt32)}}[m + 1]) AS arrival,
           addMicroseconds({_START}, toInt64(arrival) * 86400000000 - 1
                           - toInt64(cityHash64(hc, 'signup') % 86399999999)) AS created_at
    FROM (
        SELECT toUInt32(number) AS m, arrayJoin(range({{customers:Array(UInt32)}}[m + 1])) AS c,
               {_CUSTOMER_HASH} AS hc
        FROM numbers({{merchants:UInt32}})
    )
    WHERE cityHash64(hc, 'registered') % 100 < 70
)
"""


def products_sql() -> str:
    """Each merchant's catalogue, with low, out-of-stock (some oversold) and overstock items."""
    stock_draw = "cityHash64(hp, 'stock') % 100"
    amount_draw = "cityHash64(hp, 'units')"
    category = "cityHash64(hp, 'category') % length({categories:Array(String)})"
    return f"""
INSERT INTO products (id, merchant_id, sku, name, category, price, cost, stock_quantity,
                      low_stock_threshold, status, created_at, updated_at, _version, _is_deleted)
SELECT {_uuid("hp")}, {{mid:Array(UUID)}}[m + 1],
       concat(upper(substring(category, 1, 3)), '-', leftPad(toString(j + 1), 5, '0')),
       concat({_pick("product_adjectives:Array(String)", "cityHash64(hp, 'adj')")}, ' ',
              {{category_nouns:Array(String)}}[1 + cat * 5 + cityHash64(hp, 'noun') % 5]),
       category, {_money("price_cents")},
       if(cityHash64(hp, 'cost') % 100 < 10, NULL,
          {_money("intDiv(price_cents * (35 + cityHash64(hp, 'margin') % 35), 100)")}),
       toInt32(multiIf({stock_draw} < 3, -1 - toInt64({amount_draw} % 5),
                       {stock_draw} < 8, 0,
                       {stock_draw} < 18, 1 + toInt64({amount_draw} % threshold),
                       {stock_draw} < 28, 2000 + toInt64({amount_draw} % 8000),
                       20 + toInt64({amount_draw} % 400))),
       threshold,
       if(cityHash64(hp, 'status') % 100 < 6, 'archived', 'active'),
       created_at,
       addMicroseconds(created_at, toInt64(cityHash64(hp, 'touched')
                       % greatest(1, {{end_us:Int64}} - toUnixTimestamp64Micro(created_at)))),
       {{version:UInt64}}, 0
FROM (
    SELECT m, j, hp, {_price_cents("hp")} AS price_cents,
           {category} AS cat, {{categories:Array(String)}}[cat + 1] AS category,
           toInt32([5, 10, 10, 10, 10, 20][1 + cityHash64(hp, 'threshold') % 6]) AS threshold,
           addMicroseconds(fromUnixTimestamp64Micro({{created_us:Array(Int64)}}[m + 1], 'UTC'),
                           toInt64(cityHash64(hp, 'listed') % 3600000000)) AS created_at
    FROM (
        SELECT toUInt32(number) AS m, arrayJoin(range({{products:Array(UInt32)}}[m + 1])) AS j,
               {_PRODUCT_HASH} AS hp
        FROM numbers({{merchants:UInt32}})
    )
)
"""


# --- transfers ----------------------------------------------------------------------


def transfers_sql() -> str:
    """Weekly payouts of counted sales net of fees, pending for their first week; a few
    fail and are retried two days later."""
    counted = ", ".join(f"'{s}'" for s in COUNTED)
    return f"""
INSERT INTO transfers (id, merchant_id, amount, status, created_at, updated_at,
                       _version, _is_deleted)
SELECT {_uuid("cityHash64(th, attempt)")}, merchant_id, payout, state, paid_at,
       if(state = 'pending', paid_at, least(paid_at + INTERVAL 1 DAY, {_END})),
       {{version:UInt64}}, 0
FROM (
    SELECT merchant_id, payout, th, attempt,
           addMicroseconds(toDateTime64(week, 6, 'UTC'),
                           toInt64(8 * 86400 + 9 * 3600) * 1000000
                           + toInt64(th % 3600000000) + attempt * 172800000000) AS paid_at,
           multiIf(attempt = 0 AND failed, 'failed',
                   paid_at > {_END} - INTERVAL 7 DAY, 'pending', 'paid') AS state
    FROM (
        SELECT merchant_id, week, payout,
               cityHash64({{seed:UInt64}}, 'transfer', merchant_id, week) AS th,
               th % 100 < 4 AS failed
        FROM (
            SELECT merchant_id, toMonday(created_at) AS week,
                   sum(amount_total - platform_fee) AS payout
            FROM orders WHERE status IN ({counted})
            GROUP BY merchant_id, week
        )
    ) ARRAY JOIN if(failed, [0, 1], [0]) AS attempt
)
WHERE paid_at <= {_END}
"""
