"""The sample dataset's tables: names, columns, types, vocabularies and joins.

This module is the one description of the data. The generator builds its Arrow schemas
from it (so what is written always has these types), ``definitions/sources/*.yaml`` are
rendered from it by :func:`source_yaml`, and the tests compare both to the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from kpiengine.loader.model import arrow_types

# Vocabularies. The generator stores category codes that index these tuples, so their
# order is part of the data: append, never reorder.
REGIONS = ("north_america", "emea", "apac", "latam", "internal")
SEGMENTS = ("smb", "mid_market", "enterprise")
INDUSTRIES = (
    "software",
    "financial_services",
    "healthcare",
    "manufacturing",
    "retail",
    "education",
    "media",
    "logistics",
    "public_sector",
)
COUNTRIES = (
    ("US", "CA"),
    ("GB", "DE", "FR", "NL", "ES", "IT", "SE"),
    ("AU", "JP", "SG", "IN"),
    ("BR", "MX", "AR", "CO", "CL"),
    ("US",),
)
PRODUCTS = ("platform", "analytics", "automation", "integrations", "premium_support")
CONTACT_METHODS = ("phone", "email", "web", "social", "event", "referral", "partner")
LEAD_SOURCES = (
    "organic_search",
    "paid_search",
    "social",
    "email",
    "events",
    "content",
    "partners",
    "referral",
    "outbound",
)
LEAD_STAGES = ("lead", "mql", "sql", "opportunity", "customer")
OPPORTUNITY_STAGES = ("open", "won", "lost")
OPPORTUNITY_TYPES = ("new_business", "expansion")
LOSS_REASONS = ("price", "competitor", "no_decision", "timing", "product_fit")
ACTIVITY_KINDS = ("call", "email", "meeting", "demo")
PLANS = ("starter", "professional", "enterprise")
BILLING_PERIODS = ("monthly", "quarterly", "annual")
SUBSCRIPTION_STATUSES = ("active", "churned")
CHURN_REASONS = ("price", "product_fit", "competitor", "budget", "business_closed")
MOVEMENTS = ("new", "expansion", "contraction", "churn", "flat")
INVOICE_STATUSES = ("paid", "open", "overdue")
SPEND_DEPARTMENTS = ("marketing", "sales", "success")
SPEND_CHANNELS = (
    "paid_search",
    "social",
    "content",
    "events",
    "email",
    "partners",
    "brand",
    "salaries",
    "commissions",
    "tools",
    "travel",
    "onboarding",
)
NPS_KINDS = ("customer", "employee")
TICKET_CHANNELS = ("email", "chat", "phone", "portal")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_CATEGORIES = ("bug", "how_to", "billing", "feature_request")
TICKET_STATUSES = ("open", "closed")
SOCIAL_CHANNELS = ("linkedin", "twitter", "youtube", "facebook", "instagram")
POST_FORMATS = ("text", "image", "video", "article")
DEPARTMENTS = ("sales", "marketing", "success", "support", "engineering", "product", "g_and_a")
ROLES = (
    "account_executive",
    "sales_development",
    "sales_manager",
    "marketer",
    "customer_success_manager",
    "support_agent",
    "engineer",
    "product_manager",
    "finance",
    "people_ops",
)
HIRE_SOURCES = ("referral", "inbound", "agency", "sourced")

ARROW_TYPES: dict[str, pa.DataType] = arrow_types()  # column type → Arrow (loader.model)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # one of ARROW_TYPES
    description: str
    unit: str | None = None
    key: bool = False
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    time: str
    columns: tuple[ColumnSpec, ...]
    joins: tuple[str, ...] = ()  # each joined source shares the key column's name

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in self.columns])

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


def _c(name: str, type_: str, description: str, **extra: Any) -> ColumnSpec:
    return ColumnSpec(name, type_, description, **extra)


def _money(name: str, description: str) -> ColumnSpec:
    return ColumnSpec(name, "number", description, unit="currency")


def _key(name: str, description: str, type_: str = "integer") -> ColumnSpec:
    return ColumnSpec(name, type_, description, key=True)


_REGION = _c("region", "string", "Sales region; `internal` marks test data.", values=REGIONS)

SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        "accounts",
        "One row per company in the CRM: prospects and customers.",
        "created_at",
        (
            _key("account_id", "Account identifier."),
            _c("name", "string", "Company name (not unique)."),
            _REGION,
            _c("country", "string", "ISO 3166 alpha-2 country code."),
            _c(
                "segment",
                "string",
                "Company size segment; null for a few accounts never classified.",
                values=SEGMENTS,
            ),
            _c("industry", "string", "Industry; null when unknown.", values=INDUSTRIES),
            _c("employee_count", "integer", "Number of employees; null when unknown."),
            _c("created_at", "timestamp", "When the account was created in the CRM."),
            _c("customer_since", "date", "Start of its first subscription; null for prospects."),
            _c(
                "churn_date",
                "date",
                "End of its last subscription when none is active any more; null otherwise.",
            ),
            _c("is_test", "boolean", "Test account created by staff (region `internal`)."),
        ),
    ),
    TableSpec(
        "employees",
        "One row per person ever employed, from the HR system.",
        "hire_date",
        (
            _key("employee_id", "Employee identifier."),
            _c("name", "string", "Full name."),
            _c("department", "string", "Department.", values=DEPARTMENTS),
            _c("role", "string", "Job role.", values=ROLES),
            _c("region", "string", "Home region.", values=REGIONS[:4]),
            _c("hire_date", "date", "First working day."),
            _c("termination_date", "date", "Last working day; null while employed."),
            _c("hire_source", "string", "How the hire was found.", values=HIRE_SOURCES),
            _c(
                "ramped_date",
                "date",
                "When the person reached full productivity; null if not (yet) reached.",
            ),
        ),
    ),
    TableSpec(
        "reps",
        "One row per sales representative (account executive) who carried a quota.",
        "hire_date",
        (
            _key("rep_id", "Rep identifier."),
            _c("employee_id", "integer", "The rep's row in employees."),
            _c("name", "string", "Full name."),
            _c("region", "string", "Territory region.", values=REGIONS[:4]),
            _c("segment", "string", "Segment the rep sells to.", values=SEGMENTS),
            _c("hire_date", "date", "First day as a rep."),
            _c("termination_date", "date", "Last day; null while employed."),
        ),
        joins=("employees",),
    ),
    TableSpec(
        "opportunities",
        "One row per CRM deal.",
        "closed_at",
        (
            _key("opportunity_id", "Deal identifier, in order of creation."),
            _c("account_id", "integer", "The account the deal is with."),
            _c("rep_id", "integer", "The rep who owns the deal."),
            _c(
                "lead_id", "integer", "The lead it came from; null for deals not sourced by a lead."
            ),
            _REGION,
            _c("product", "string", "Product sold.", values=PRODUCTS),
            _c(
                "contact_method",
                "string",
                "How the buyer was first contacted; null when not recorded.",
                values=CONTACT_METHODS,
            ),
            _c(
                "type",
                "string",
                "`new_business` before the account's first win, `expansion` after.",
                values=OPPORTUNITY_TYPES,
            ),
            _c("stage", "string", "Deal stage.", values=OPPORTUNITY_STAGES),
            _c("created_at", "timestamp", "When the deal was opened."),
            _c("closed_at", "timestamp", "When it was won or lost; null while open."),
            _c("quantity", "integer", "Units (seats) sold."),
            _money("list_price", "First-year price at list, before discount."),
            _c(
                "discount_rate",
                "number",
                "1 - amount / list_price.",
                unit="ratio",
            ),
            _money("amount", "First-year recurring value after discount (the booking)."),
            _c("term_years", "integer", "Contract length in years."),
            _money("one_time_fees", "Onboarding and set-up fees in the contract (0 if none)."),
            _money(
                "total_contract_value",
                "Recurring value over the whole term (with yearly uplifts) plus one-time fees.",
            ),
            _c(
                "loss_reason",
                "string",
                "Why a lost deal was lost; null otherwise or when not recorded.",
                values=LOSS_REASONS,
            ),
        ),
        joins=("accounts", "reps", "leads"),
    ),
    TableSpec(
        "leads",
        "One row per inbound or outbound lead, with a timestamp for each funnel stage reached.",
        "created_at",
        (
            _key("lead_id", "Lead identifier, in order of creation."),
            _c("created_at", "timestamp", "When the lead was captured."),
            _c("source", "string", "Channel that generated the lead.", values=LEAD_SOURCES),
            _REGION,
            _c("country", "string", "ISO country code; null when not captured."),
            _c("account_id", "integer", "Account, once the lead became an opportunity."),
            _c("rep_id", "integer", "Owning rep, once the lead is sales-qualified."),
            _c(
                "referrer_account_id",
                "integer",
                "Customer account that referred the lead (source `referral`).",
            ),
            _c("mql_at", "timestamp", "Marketing-qualified; null if never."),
            _c("sql_at", "timestamp", "Sales-qualified; null if never."),
            _c("opportunity_at", "timestamp", "Became an opportunity; null if never."),
            _c("customer_at", "timestamp", "Its opportunity was won; null if never."),
            _c("opportunity_id", "integer", "The opportunity it became; null if none."),
            _c("stage", "string", "Furthest stage reached.", values=LEAD_STAGES),
        ),
        joins=("accounts", "reps", "opportunities"),
    ),
    TableSpec(
        "activities",
        "One row per sales activity logged by a rep: calls, emails, meetings, demos.",
        "occurred_at",
        (
            _key("activity_id", "Activity identifier."),
            _c("rep_id", "integer", "Rep who did it."),
            _c("kind", "string", "Kind of activity.", values=ACTIVITY_KINDS),
            _c("occurred_at", "timestamp", "When it happened."),
            _c("opportunity_id", "integer", "Deal it belongs to; null for prospecting."),
            _c("lead_id", "integer", "Lead prospected; null for deal activities."),
            _c("account_id", "integer", "Account, when known."),
            _c("replied", "boolean", "Emails: the recipient replied. Null for other kinds."),
            _c("duration_minutes", "integer", "Calls, meetings, demos; null for emails."),
        ),
        joins=("reps", "opportunities", "leads", "accounts"),
    ),
    TableSpec(
        "quotas",
        "Monthly quota of each rep for the months the rep was employed.",
        "month",
        (
            _key("rep_id", "The rep."),
            _key("month", "First day of the month.", type_="date"),
            _c("region", "string", "The rep's region.", values=REGIONS[:4]),
            _money("quota", "Amount of won deals expected in the month."),
        ),
        joins=("reps",),
    ),
    TableSpec(
        "forecasts",
        "What each rep committed to close in a month, submitted at the start of the month.",
        "month",
        (
            _key("rep_id", "The rep."),
            _key("month", "First day of the month.", type_="date"),
            _c("region", "string", "The rep's region.", values=REGIONS[:4]),
            _money("forecast", "Committed amount of won deals."),
            _money("best_case", "Upside amount if every likely deal closes."),
        ),
        joins=("reps",),
    ),
    TableSpec(
        "subscriptions",
        "One row per subscription contract: from a won deal, or older than the data window.",
        "start_date",
        (
            _key("subscription_id", "Subscription identifier, in order of start."),
            _c("account_id", "integer", "Customer account."),
            _c(
                "opportunity_id",
                "integer",
                "Won deal that created it; null for subscriptions started before 2024.",
            ),
            _c("product", "string", "Product subscribed.", values=PRODUCTS),
            _c("plan", "string", "Plan tier.", values=PLANS),
            _c("billing_period", "string", "How often it is invoiced.", values=BILLING_PERIODS),
            _c("start_date", "date", "First day of service."),
            _c("end_date", "date", "Day it ended (churn); null while active."),
            _c(
                "status",
                "string",
                "Status at the end of the data window.",
                values=SUBSCRIPTION_STATUSES,
            ),
            _c("seats", "integer", "Seats at the start."),
            _money("monthly_amount", "MRR at the start, after discount."),
            _money("monthly_list_price", "MRR at the start at list price."),
            _c("term_months", "integer", "Contract term in months."),
            _c(
                "first_value_date",
                "date",
                "When the customer first got the agreed value (time to value); null if not yet.",
            ),
            _c("churn_reason", "string", "Why it churned; null if active.", values=CHURN_REASONS),
        ),
        joins=("accounts", "opportunities"),
    ),
    TableSpec(
        "mrr_snapshots",
        "Monthly MRR of each subscription: one row per subscription and month it was active,"
        " plus a zero row in the month it churned. The value is the MRR at the end of the month,"
        " dated with the month's first day.",
        "snapshot_date",
        (
            _key("snapshot_date", "First day of the month.", type_="date"),
            _key("subscription_id", "The subscription (MRR by product: subscriptions.product)."),
            _c("account_id", "integer", "Customer account."),
            _c("seats", "integer", "Seats at the end of the month (0 after churn)."),
            _money("mrr", "Monthly recurring revenue at the end of the month (0 after churn)."),
            _money("mrr_change", "mrr minus the previous month's mrr (the whole mrr when new)."),
            _c("movement", "string", "What changed this month.", values=MOVEMENTS),
        ),
        joins=("subscriptions", "accounts"),
    ),
    TableSpec(
        "invoices",
        "One row per invoice: a billing period of a subscription, plus one-time fees on the first.",
        "invoice_date",
        (
            _key("invoice_id", "Invoice identifier, in order of issue."),
            _c("account_id", "integer", "Billed account."),
            _c(
                "subscription_id",
                "integer",
                "Subscription billed (its product: subscriptions.product).",
            ),
            _c("invoice_date", "date", "Issue date."),
            _c("due_date", "date", "Payment due date."),
            _c("paid_date", "date", "When it was paid; null if unpaid."),
            _c(
                "status",
                "string",
                "Payment status at the end of the data window.",
                values=INVOICE_STATUSES,
            ),
            _c("period_months", "integer", "Months of service billed."),
            _c("quantity", "integer", "Seats billed."),
            _money("subtotal", "Recurring charges at list price."),
            _money("discount", "Discount on the recurring charges."),
            _money("one_time_fees", "Onboarding and set-up fees (first invoice only)."),
            _money("amount", "subtotal - discount + one_time_fees: gross revenue."),
            _money("refund", "Credit notes and returns against the invoice (0 if none)."),
            _money("cogs", "Cost of goods sold to serve it: hosting, support, third parties."),
        ),
        joins=("accounts", "subscriptions"),
    ),
    TableSpec(
        "nps_responses",
        "Answers to 'How likely are you to recommend us?': customers (NPS) and employees (eNPS).",
        "responded_at",
        (
            _key("response_id", "Response identifier."),
            _c("kind", "string", "Who answered.", values=NPS_KINDS),
            _c("responded_at", "timestamp", "When."),
            _c("account_id", "integer", "Customer account; null for employees."),
            _c("employee_id", "integer", "Employee; null for customers."),
            _c("score", "integer", "0-10; promoters 9-10, detractors 0-6."),
        ),
        joins=("accounts", "employees"),
    ),
    TableSpec(
        "support_tickets",
        "One row per customer support ticket.",
        "created_at",
        (
            _key("ticket_id", "Ticket identifier."),
            _c("account_id", "integer", "Customer account."),
            _c("product", "string", "Product concerned.", values=PRODUCTS),
            _c("channel", "string", "How the customer reached support.", values=TICKET_CHANNELS),
            _c("priority", "string", "Priority.", values=TICKET_PRIORITIES),
            _c("category", "string", "Kind of issue.", values=TICKET_CATEGORIES),
            _c("created_at", "timestamp", "When it was opened."),
            _c("first_response_at", "timestamp", "First answer by an agent; null if none yet."),
            _c("resolved_at", "timestamp", "When it was resolved; null while open."),
            _c("status", "string", "Status at the end of the data window.", values=TICKET_STATUSES),
            _c("escalated", "boolean", "Escalated to engineering or management."),
            _c("csat", "integer", "Satisfaction survey 1-5 (5 best); null when not answered."),
            _c(
                "effort",
                "integer",
                "Customer effort score 1-7 (1 easiest); null when not answered.",
            ),
        ),
        joins=("accounts",),
    ),
    TableSpec(
        "marketing_spend",
        "Go-to-market spend per month, region, department and channel.",
        "month",
        (
            _key("month", "First day of the month.", type_="date"),
            ColumnSpec("region", "string", "Region.", key=True, values=REGIONS[:4]),
            ColumnSpec(
                "department", "string", "Department spending.", key=True, values=SPEND_DEPARTMENTS
            ),
            ColumnSpec(
                "channel", "string", "Channel or cost line.", key=True, values=SPEND_CHANNELS
            ),
            _money("spend", "Amount spent."),
            _money(
                "attributed_revenue",
                "Revenue attributed to the channel by marketing attribution;"
                " null where not attributable (brand, sales and success costs).",
            ),
        ),
    ),
    TableSpec(
        "social_posts",
        "One row per company post on social networks, with its engagement.",
        "posted_at",
        (
            _key("post_id", "Post identifier."),
            _c("posted_at", "timestamp", "When it was published."),
            _c("channel", "string", "Network.", values=SOCIAL_CHANNELS),
            _c("format", "string", "Kind of post.", values=POST_FORMATS),
            _c("impressions", "integer", "Times it was shown."),
            _c("interactions", "integer", "Likes, comments and shares."),
            _c("clicks", "integer", "Clicks to the website."),
            _c("leads", "integer", "Leads captured from those clicks."),
        ),
    ),
)

TABLES: tuple[str, ...] = tuple(spec.name for spec in SPECS)
SPEC_BY_NAME: dict[str, TableSpec] = {spec.name: spec for spec in SPECS}


def source_yaml(spec: TableSpec) -> str:
    """The ``definitions/sources/<table>.yaml`` text for a table (SPEC §3 source format)."""
    lines = [
        "# A table of the sample dataset (docs/sample-data.md), as `kpi sample-data` writes it.",
        "# Rendered from kpiengine/sample/tables.py (source_yaml): change both together.",
        f"source: {spec.name}",
        f"description: {_scalar(spec.description)}",
        f"table: {spec.name}",
        f"time: {spec.time}",
        "columns:",
    ]
    for column in spec.columns:
        parts = [f"type: {column.type}"]
        if column.unit:
            parts.append(f"unit: {column.unit}")
        if column.key:
            parts.append("key: true")
        if column.values:
            parts.append(f"values: [{', '.join(column.values)}]")
        parts.append(f"description: {_scalar(column.description)}")
        lines.append(f"  {column.name}:")
        lines.extend(f"    {part}" for part in parts)
    if spec.joins:
        lines.append("joins:")
        for target in spec.joins:
            key = next(c.name for c in SPEC_BY_NAME[target].columns if c.key)
            lines.append(f"  - source: {target}")
            lines.append(f"    on: {key}")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    """A YAML plain scalar when safe, else a double-quoted one."""
    if any(ch in text for ch in ":#`'\"[]{},&*!|>%@") or text != text.strip():
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
