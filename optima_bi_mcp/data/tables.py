"""The seven source tables and their columns, shared by seed, backfill, verify and the sink."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[str, ...]
    # Columns naming the merchant a row belongs to (None for merchants themselves).
    merchant_column: str | None = "merchant_id"
    # A money column summed per merchant by `verify`.
    amount_column: str | None = None

    @property
    def store_columns(self) -> tuple[str, ...]:
        return (*self.columns, "_version", "_is_deleted")


TABLES: tuple[SourceTable, ...] = (
    SourceTable(
        "merchants",
        ("id", "name", "email", "country", "currency", "status", "created_at", "updated_at"),
        merchant_column="id",
    ),
    SourceTable("customers", ("id", "merchant_id", "email", "name", "created_at", "updated_at")),
    SourceTable(
        "products",
        (
            "id",
            "merchant_id",
            "sku",
            "name",
            "category",
            "price",
            "cost",
            "stock_quantity",
            "low_stock_threshold",
            "status",
            "created_at",
            "updated_at",
        ),
        amount_column="stock_quantity",
    ),
    SourceTable(
        "orders",
        (
            "id",
            "merchant_id",
            "order_number",
            "customer_email",
            "status",
            "currency",
            "amount_total",
            "platform_fee",
            "created_at",
            "updated_at",
        ),
        amount_column="amount_total",
    ),
    SourceTable(
        "order_items",
        (
            "id",
            "order_id",
            "merchant_id",
            "product_id",
            "quantity",
            "unit_price",
            "amount",
            "created_at",
        ),
        amount_column="amount",
    ),
    SourceTable(
        "subscriptions",
        (
            "id",
            "merchant_id",
            "plan",
            "status",
            "billing_interval",
            "amount",
            "started_at",
            "trial_ends_at",
            "canceled_at",
            "created_at",
            "updated_at",
        ),
        amount_column="amount",
    ),
    SourceTable(
        "transfers",
        ("id", "merchant_id", "amount", "status", "created_at", "updated_at"),
        amount_column="amount",
    ),
)

BY_NAME = {table.name: table for table in TABLES}
