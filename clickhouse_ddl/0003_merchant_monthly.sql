-- Rollup of counted orders per merchant and UTC month, for platform-wide answers
-- that span months (platform_overview, last_order_at in platform_merchants,
-- whole months of platform_revenue) without scanning every day.
--
-- It is derived from `merchant_daily`, never from order inserts, and stays exact
-- the same way: whenever rollup rows of (merchant_id, day) keys are recomputed
-- (optima_bi_mcp.store.rollups.refresh_merchant_daily), the (merchant_id, month)
-- rows holding those days are recomputed from `merchant_daily FINAL` right after
-- and written whole with a higher _version, zeros included. Recomputing is
-- idempotent, so redelivered changes, updates and deletes leave it exact as long
-- as one writer refreshes at a time (the CDC sink applies batches in order).

CREATE TABLE IF NOT EXISTS merchant_monthly (
    month Date,
    merchant_id UUID,
    orders UInt64,
    gmv Decimal(38, 2),
    platform_fees Decimal(38, 2),
    first_order_at Nullable(DateTime64(6, 'UTC')),
    last_order_at Nullable(DateTime64(6, 'UTC')),
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (month, merchant_id);
