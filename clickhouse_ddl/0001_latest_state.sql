-- Latest state of the seven source tables (SOURCE_SCHEMA.md).
--
-- Each table is a ReplacingMergeTree(_version, _is_deleted): a row with a
-- higher _version replaces the row with the same sorting key, and a row with
-- _is_deleted = 1 removes it. Reads that must see exactly the latest state use
-- FINAL. _version comes from the source position (the WAL LSN for change
-- events, the snapshot's position for backfills), so redelivered events write
-- the same version again and change nothing.
--
-- Sorting keys start with merchant_id so merchant-scoped reads touch one range.
-- orders adds created_at, which the source never changes, for period pruning.

CREATE TABLE IF NOT EXISTS merchants (
    id UUID,
    name String,
    email String,
    country LowCardinality(String),
    currency LowCardinality(String),
    status LowCardinality(String),
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY id;

CREATE TABLE IF NOT EXISTS customers (
    id UUID,
    merchant_id UUID,
    email String,
    name String,
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, id);

CREATE TABLE IF NOT EXISTS products (
    id UUID,
    merchant_id UUID,
    sku String,
    name String,
    category LowCardinality(String),
    price Decimal(12, 2),
    cost Nullable(Decimal(12, 2)),
    stock_quantity Int32,
    low_stock_threshold Int32,
    status LowCardinality(String),
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, id);

CREATE TABLE IF NOT EXISTS orders (
    id UUID,
    merchant_id UUID,
    order_number String,
    customer_email String,
    status LowCardinality(String),
    currency LowCardinality(String),
    amount_total Decimal(12, 2),
    platform_fee Decimal(12, 2),
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
PARTITION BY toYYYYMM(created_at)
ORDER BY (merchant_id, created_at, id);

CREATE TABLE IF NOT EXISTS order_items (
    id UUID,
    order_id UUID,
    merchant_id UUID,
    product_id UUID,
    quantity Int32,
    unit_price Decimal(12, 2),
    amount Decimal(12, 2),
    created_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, order_id, id);

CREATE TABLE IF NOT EXISTS subscriptions (
    id UUID,
    merchant_id UUID,
    plan LowCardinality(String),
    status LowCardinality(String),
    billing_interval LowCardinality(String),
    amount Decimal(12, 2),
    started_at DateTime64(6, 'UTC'),
    trial_ends_at Nullable(DateTime64(6, 'UTC')),
    canceled_at Nullable(DateTime64(6, 'UTC')),
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, id);

CREATE TABLE IF NOT EXISTS transfers (
    id UUID,
    merchant_id UUID,
    amount Decimal(12, 2),
    status LowCardinality(String),
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    _version UInt64,
    _is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(_version, _is_deleted)
ORDER BY (merchant_id, id);
