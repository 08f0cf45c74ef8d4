-- Change data capture setup of one commerce database, for the Debezium
-- PostgreSQL connector (pgoutput). Idempotent; run as a superuser in the
-- database to capture, after commerce.sql. The cluster already runs with
-- wal_level = logical (infra/postgres/up).

-- The connector's login: REPLICATION to open a logical slot, SELECT for the
-- initial snapshot, nothing else. Roles are cluster-wide, so create it once.
-- Locally pg_hba trusts loopback; a real deployment gives it a password and
-- hands it to Connect through a config provider, never in the connector JSON.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optima_cdc') THEN
        CREATE ROLE optima_cdc WITH LOGIN REPLICATION;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO optima_cdc;
GRANT SELECT ON merchants, customers, products, orders, order_items, subscriptions, transfers
    TO optima_cdc;

-- REPLICA IDENTITY FULL: update and delete events carry the whole old row.
-- The store's tables are ReplacingMergeTree sorted by (merchant_id, ...) and,
-- for orders, (merchant_id, created_at, id); a deletion only removes a row if
-- it carries the same sorting key, and the rollup must recompute the old
-- (merchant, day) of a deleted order. Under the default identity a delete
-- carries the primary key alone; the sink then looks the row up in the store
-- (a fallback), which cannot work for a row it never saw. FULL costs extra WAL
-- on updates and deletes only, which are the rarer operations here.
ALTER TABLE merchants REPLICA IDENTITY FULL;
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE products REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE order_items REPLICA IDENTITY FULL;
ALTER TABLE subscriptions REPLICA IDENTITY FULL;
ALTER TABLE transfers REPLICA IDENTITY FULL;

-- The publication the connector reads (publication.name = optima_bi), created
-- here by a superuser so the connector needs no ownership of the tables
-- (publication.autocreate.mode = disabled).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'optima_bi') THEN
        CREATE PUBLICATION optima_bi FOR TABLE
            merchants, customers, products, orders, order_items, subscriptions, transfers;
    END IF;
END
$$;
