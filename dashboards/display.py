"""Display settings of every KPI: label, definition, number format and undefined reason.

The dashboard tiles, the rep table, the scorecard and the `kpi_value` template
tag all read this one table, so a KPI has the same name, definition and
"undefined" explanation on every page.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

# Number formats understood by dashboards.templatetags.spm_format.format_value.
COUNT, MONEY, MONEY_PER_DAY, PERCENT, DAYS = "count", "money", "money_per_day", "percent", "days"


@dataclass(frozen=True)
class KpiDisplay:
    key: str
    label: str
    definition: str
    value_format: str
    # Tooltip of the "–" shown when the KPI is undefined. Empty for KPIs that are always defined.
    undefined_reason: str = ""
    # Deal-list metric behind the number, for drill-down links. Empty when no deal list sums to it.
    drilldown_metric: str = ""


KPIS = {
    kpi.key: kpi
    for kpi in (
        KpiDisplay(
            "won_count",
            _("Won deals"),
            _("Deals with status won whose close date falls in the period."),
            COUNT,
            drilldown_metric="won",
        ),
        KpiDisplay(
            "won_amount",
            _("Won amount"),
            _("Sum of the won deals' amounts in the base currency."),
            MONEY,
            drilldown_metric="won",
        ),
        KpiDisplay(
            "lost_count",
            _("Lost deals"),
            _("Deals with status lost whose close date falls in the period."),
            COUNT,
            drilldown_metric="lost",
        ),
        KpiDisplay(
            "lost_amount",
            _("Lost amount"),
            _("Sum of the lost deals' amounts in the base currency."),
            MONEY,
            drilldown_metric="lost",
        ),
        KpiDisplay(
            "win_rate",
            _("Win rate"),
            _("Won deals ÷ (won + lost deals) closed in the period."),
            PERCENT,
            _("No deals closed in this period."),
        ),
        KpiDisplay(
            "value_win_rate",
            _("Value win rate"),
            _("Won amount ÷ (won + lost amount) of the deals closed in the period."),
            PERCENT,
            _("No closed deal with an amount in this period."),
        ),
        KpiDisplay(
            "average_deal_size",
            _("Average deal size"),
            _("Won amount ÷ won deals in the period."),
            MONEY,
            _("No deals won in this period."),
        ),
        KpiDisplay(
            "sales_cycle_days_mean",
            _("Sales cycle"),
            _("Mean days from creation to close over the deals won in the period."),
            DAYS,
            _("No deals won in this period."),
        ),
        KpiDisplay(
            "sales_cycle_days_median",
            _("Sales cycle (median)"),
            _("Median days from creation to close over the deals won in the period."),
            DAYS,
            _("No deals won in this period, or several teams combined: a median cannot be added up."),
        ),
        KpiDisplay(
            "open_count",
            _("Open deals"),
            _("Deals created on or before the period's last day and not closed by then."),
            COUNT,
            drilldown_metric="open",
        ),
        KpiDisplay(
            "open_amount",
            _("Open amount"),
            _("Sum of the open deals' amounts at the period's end, in the base currency."),
            MONEY,
            drilldown_metric="open",
        ),
        KpiDisplay(
            "pipeline_velocity",
            _("Pipeline velocity"),
            _("Open deals × win rate × average deal size ÷ sales cycle days: expected won amount per day."),
            MONEY_PER_DAY,
            _("Needs won deals and a sales cycle longer than zero in this period."),
        ),
    )
}

# Order of the dashboard tiles. The median is shown inside the sales cycle tile.
TILE_KEYS = (
    "won_count",
    "won_amount",
    "lost_count",
    "win_rate",
    "value_win_rate",
    "average_deal_size",
    "sales_cycle_days_mean",
    "open_count",
    "open_amount",
    "pipeline_velocity",
)

# Columns of the rep table and rows of the scorecard.
TABLE_KEYS = (
    "won_count",
    "won_amount",
    "lost_count",
    "win_rate",
    "value_win_rate",
    "average_deal_size",
    "sales_cycle_days_mean",
    "sales_cycle_days_median",
    "open_count",
    "open_amount",
    "pipeline_velocity",
)
