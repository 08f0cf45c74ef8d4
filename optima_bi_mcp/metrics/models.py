"""Arguments and results of every metric, with the field names of TOOLS.md.

Arguments are validated here (pydantic) before any query runs; results are what
tools return as structured content. Money and ratios are exact `Decimal`s that
serialize as JSON numbers; instants serialize as ISO 8601 in UTC with `Z`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from optima_bi_mcp.metrics.numbers import Instant, Money, Ratio
from optima_bi_mcp.metrics.pagination import MAX_LIMIT

Bucket = Literal["hour", "day", "week", "month"]
InventoryState = Literal["out", "low", "overstock", "healthy"]
MerchantSegment = Literal["active", "sleeping", "churned", "top"]


class Arguments(BaseModel):
    """Base of tool arguments: unknown arguments are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MerchantArgs(Arguments):
    merchant_id: UUID | None = Field(
        None, description="Merchant to report on (administrators only; merchants get their own)."
    )


class PeriodArgs(Arguments):
    start: date | None = Field(None, description="First day of the period (YYYY-MM-DD).")
    end: date | None = Field(None, description="Last day of the period, inclusive (YYYY-MM-DD).")
    days: int | None = Field(
        None, ge=1, le=3660, description="The last N days up to now, today included."
    )
    timezone: str = Field(
        "UTC", max_length=64, description="IANA time zone that cuts days, weeks and months."
    )


class ListArgs(Arguments):
    limit: int = Field(20, ge=1, le=MAX_LIMIT, description="Page size (1-500).")
    cursor: str | None = Field(
        None, max_length=512, description="next_cursor of the previous page, to continue."
    )


class GetSalesArgs(MerchantArgs, PeriodArgs):
    bucket: Bucket = Field("day", description="Series granularity: hour, day, week or month.")


class TopProductsArgs(MerchantArgs, PeriodArgs, ListArgs):
    sort_by: Literal["revenue", "quantity"] = Field("revenue", description="Ranking measure.")


class CustomerSummaryArgs(MerchantArgs, PeriodArgs):
    churn_days: int = Field(
        90, ge=1, le=3650, description="Days without an order after which a customer is churned."
    )


class ChurnedCustomersArgs(MerchantArgs, ListArgs):
    as_of: date | None = Field(
        None, description="Judge churn at the end of this day (YYYY-MM-DD; default today)."
    )
    churn_days: int = Field(90, ge=1, le=3650, description="Days without an order to count.")
    timezone: str = Field("UTC", max_length=64, description="IANA zone that cuts as_of.")


class InventoryStatusArgs(MerchantArgs, ListArgs):
    status: InventoryState | None = Field(None, description="Only products in this state.")
    lead_time_days: int = Field(14, ge=0, le=365, description="Days a reorder takes to arrive.")
    cover_days: int = Field(30, ge=0, le=365, description="Days of sales a reorder should cover.")


class PlatformOverviewArgs(Arguments):
    month: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}$", description="Calendar month YYYY-MM (UTC); default now."
    )


class PlatformMerchantsArgs(ListArgs):
    segment: MerchantSegment = Field("top", description="Which merchants to list.")
    sort_by: Literal["gmv_30d", "growth_pct", "last_order_at"] = Field(
        "gmv_30d", description="Order of the list, descending."
    )


class PlatformMrrArgs(PlatformOverviewArgs):
    pass


class PlatformRevenueArgs(Arguments):
    start: date | None = Field(None, description="First day (YYYY-MM-DD, UTC).")
    end: date | None = Field(None, description="Last day, inclusive (YYYY-MM-DD, UTC).")
    days: int | None = Field(None, ge=1, le=3660, description="The last N days up to now.")
    breakdown: bool = Field(False, description="Add fees by month, subscriptions by plan, etc.")


# ---------------------------------------------------------------- results


class PeriodOut(BaseModel):
    start: Instant = Field(description="First instant of the period (UTC).")
    end: Instant = Field(description="End of the period, exclusive (UTC).")
    timezone: str
    start_date: date = Field(description="First local day of the period.")
    end_date: date = Field(description="Last local day of the period, inclusive.")


class SalesFigures(BaseModel):
    revenue: Money
    orders: int
    aov: Money
    unique_customers: int
    platform_fees: Money


class SalesBucket(SalesFigures):
    bucket_start: Instant = Field(description="Start of the bucket (UTC instant).")


class SalesGrowth(BaseModel):
    revenue: Ratio | None
    orders: Ratio | None
    aov: Ratio | None
    unique_customers: Ratio | None
    platform_fees: Ratio | None


class SalesResult(SalesFigures):
    period: PeriodOut
    currency: str
    bucket: Bucket
    series: list[SalesBucket]
    previous: SalesFigures
    growth_pct: SalesGrowth


class TopProduct(BaseModel):
    product_id: UUID
    sku: str
    name: str
    category: str
    revenue: Money
    quantity: int
    orders: int
    share_of_revenue: Ratio | None


class TopProductsResult(BaseModel):
    period: PeriodOut
    currency: str
    sort_by: str
    total_revenue: Money
    items: list[TopProduct]
    next_cursor: str | None


class CustomerSummaryResult(BaseModel):
    period: PeriodOut
    customers: int
    new: int
    repeat: int
    churned: int
    vip: int
    repeat_rate: Ratio | None
    avg_ltv: Money
    currency: str


class ChurnedCustomer(BaseModel):
    email: str
    last_order_at: Instant
    days_since_last_order: int
    orders_count: int
    ltv: Money


class ChurnedCustomersResult(BaseModel):
    as_of: Instant = Field(description="The instant churn is judged at (UTC).")
    churn_days: int
    currency: str
    total: int = Field(description="Churned customers in all pages.")
    items: list[ChurnedCustomer]
    next_cursor: str | None


class InventoryItem(BaseModel):
    product_id: UUID
    sku: str
    name: str
    stock: int
    units_sold_30d: int
    daily_velocity: Ratio
    days_of_cover: Ratio | None
    turnover_30d: Ratio | None
    status: InventoryState
    suggested_reorder_qty: int


class InventoryCounts(BaseModel):
    out: int
    low: int
    overstock: int
    healthy: int


class InventoryStatusResult(BaseModel):
    as_of: Instant
    items: list[InventoryItem]
    counts: InventoryCounts
    next_cursor: str | None


class PlatformGrowth(BaseModel):
    gmv: Ratio | None
    orders: Ratio | None
    active_merchants: Ratio | None


class PlatformOverviewResult(BaseModel):
    month: str
    currency: str
    gmv: Money
    orders: int
    aov: Money
    active_merchants: int
    new_merchants: int
    platform_fees: Money
    take_rate: Ratio | None
    mom_pct: PlatformGrowth
    yoy_pct: PlatformGrowth


class PlatformMerchant(BaseModel):
    merchant_id: UUID
    name: str
    segment: Literal["active", "sleeping", "churned", "other"]
    gmv_30d: Money
    orders_30d: int
    gmv_prev_30d: Money
    growth_pct: Ratio | None
    last_order_at: Instant | None


class PlatformMerchantsResult(BaseModel):
    as_of: Instant
    segment: MerchantSegment
    sort_by: str
    currency: str
    total: int = Field(description="Merchants in the segment, all pages.")
    items: list[PlatformMerchant]
    next_cursor: str | None


class MrrByPlan(BaseModel):
    pro: Money
    enterprise: Money


class PlatformMrrResult(BaseModel):
    month: str
    currency: str
    mrr: Money
    arr: Money
    mrr_by_plan: MrrByPlan
    paying_merchants: int
    new_mrr: Money
    reactivation_mrr: Money
    expansion_mrr: Money
    contraction_mrr: Money
    churned_mrr: Money
    logo_churn_rate: Ratio | None
    revenue_churn_rate: Ratio | None
    net_revenue_retention: Ratio | None
    quick_ratio: Ratio | None


class MonthFees(BaseModel):
    month: str
    fee_revenue: Money


class PlatformRevenueResult(BaseModel):
    period: PeriodOut
    fee_revenue: Money
    subscription_revenue: Money
    transfers_paid: Money
    total: Money
    currency: str
    fees_by_month: list[MonthFees] | None = None
    subscriptions_by_plan: dict[str, Money] | None = None
    transfers_by_status: dict[str, Money] | None = None


class WhoamiResult(BaseModel):
    role: Literal["merchant", "admin"]
    merchant_id: UUID | None
    subject: str | None
    email: str | None
    environment: str
