-- The commerce source schema (SOURCE_SCHEMA.md), for tests, demos and local
-- development. The commerce backend owns the real one; these are exactly its
-- tables, columns and meanings.

CREATE TABLE IF NOT EXISTS merchants (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    country text NOT NULL,
    currency char(3) NOT NULL DEFAULT 'USD',
    status text NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS customers (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    email text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS customers_merchant_email
    ON customers (merchant_id, lower(email));

CREATE TABLE IF NOT EXISTS products (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    sku text NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(12, 2) NOT NULL,
    cost numeric(12, 2),
    stock_quantity integer NOT NULL DEFAULT 0,
    low_stock_threshold integer NOT NULL DEFAULT 10,
    status text NOT NULL CHECK (status IN ('active', 'archived')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, sku)
);

CREATE TABLE IF NOT EXISTS orders (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    order_number text NOT NULL,
    customer_email text NOT NULL,
    status text NOT NULL CHECK (
        status IN ('pending', 'paid', 'shipped', 'delivered', 'completed', 'cancelled', 'refunded')
    ),
    currency char(3) NOT NULL DEFAULT 'USD',
    amount_total numeric(12, 2) NOT NULL,
    platform_fee numeric(12, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, order_number)
);
-- The OLTP index every storefront query uses.
CREATE INDEX IF NOT EXISTS orders_merchant_created ON orders (merchant_id, created_at);

CREATE TABLE IF NOT EXISTS order_items (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    merchant_id uuid NOT NULL,
    product_id uuid NOT NULL REFERENCES products (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2) NOT NULL,
    amount numeric(12, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS order_items_order ON order_items (order_id);
CREATE INDEX IF NOT EXISTS order_items_product ON order_items (product_id);

CREATE TABLE IF NOT EXISTS subscriptions (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    plan text NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
    status text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    billing_interval text NOT NULL CHECK (billing_interval IN ('month', 'year')),
    amount numeric(12, 2) NOT NULL,
    started_at timestamptz NOT NULL,
    trial_ends_at timestamptz,
    canceled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subscriptions_merchant ON subscriptions (merchant_id);

CREATE TABLE IF NOT EXISTS transfers (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    amount numeric(12, 2) NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS transfers_merchant ON transfers (merchant_id);
