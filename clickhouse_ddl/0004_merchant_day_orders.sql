-- The counted orders of each merchant and UTC day as one row: their created_at,
-- amount_total and platform_fee. Platform answers cut at an instant inside a
-- day (`now`, `now - 30 days`, ...) split that day with this row instead of
-- reading `orders`, whose merchant-first sorting makes a platform-wide slice of
-- one day touch every granule of its month.
--
-- It is written together with `merchant_daily`, from the same recomputation of
-- `orders FINAL` per touched (merchant_id, day) key, and stays exact the same
-- way: the whole row is written again with a higher _version (an empty list
-- when the key's orders all vanished), so updates, deletes and redelivered
-- changes leave it equal to the latest state (optima_bi_mcp.store.rollups).

CREATE TABLE IF NOT EXISTS merchant_day_orders (
    day Date,
    merchant_id UUID,
    orders Array(Tuple(
        created_at DateTime64(6, 'UTC'),
        amount_total Decimal(12, 2),
        platform_fee Decimal(12, 2)
    )),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(day)
ORDER BY (day, merchant_id);
