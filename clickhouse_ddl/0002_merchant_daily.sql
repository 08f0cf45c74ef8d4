-- Rollup of counted orders per merchant and UTC day, for platform-wide answers.
--
-- Incremental materialized views would count every version of an order (a
-- pending order later paid would count twice), so this rollup is recomputed
-- from the latest state instead: for every (merchant_id, day) a batch of
-- changes touches, the writer reads the counted orders of that key from
-- `orders FINAL` and writes the whole row again with a higher _version
-- (optima_bi_mcp.store.rollups). A key whose orders all vanished gets a zero
-- row. Recomputing is idempotent, so redelivered changes leave it exact.

CREATE TABLE IF NOT EXISTS merchant_daily (
    day Date,
    merchant_id UUID,
    orders UInt64,
    gmv Decimal(38, 2),
    platform_fees Decimal(38, 2),
    first_order_at Nullable(DateTime64(6, 'UTC')),
    last_order_at Nullable(DateTime64(6, 'UTC')),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(day)
ORDER BY (day, merchant_id);
