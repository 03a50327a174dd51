"""Leading indicators of development goals, computed for one member and period by the pipeline analytics.

Each value follows the KPI definitions of the dashboards because it calls the
same functions. Stage conversion counts the cohort created in the period
(funnel). Win rate and average deal size count the deals closed in the period.
Activities count the done ones in the period, and time in stage is the mean
of the completed stays in the stage that ended in the period. A value that is not
defined comes back as None with the reason in words.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _

from coaching.skills.models import Indicator
from dashboards.analytics.activities import activity_result_rows, activity_universe, done_in
from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.funnel import funnel_rows
from dashboards.analytics.stages import time_in_stage_rows
from dashboards.analytics.winloss import closed_in
from dashboards.kpis import average_deal_size, win_rate
from dashboards.templatetags.spm_format import format_days, format_money, format_number, format_percent
from pipelines.models import DealStatus, Stage, StageKind
from spm.fiscal import Period
from spm.models import Membership, Organization
from spm.rounding import round_half_up

# Indicators that need a stage, and those whose value is a fraction shown as a percentage.
STAGE_INDICATORS = frozenset({Indicator.STAGE_CONVERSION, Indicator.TIME_IN_STAGE})
RATIO_INDICATORS = frozenset({Indicator.STAGE_CONVERSION, Indicator.WIN_RATE})
# Indicators a goal should lower. For the others a higher value is better.
LOWER_IS_BETTER = frozenset({Indicator.TIME_IN_STAGE, Indicator.ACTIVITIES_PER_WON_DEAL})


@dataclass(frozen=True)
class IndicatorValue:
    value: Decimal | None
    # Why `value` is None, in the active language; empty when it is defined.
    reason: str = ""


def _next_stage_name(stage: Stage) -> str:
    following = Stage.objects.filter(pipeline_id=stage.pipeline_id, kind=StageKind.OPEN, order__gt=stage.order).order_by(
        "order", "id"
    )
    upcoming = following.first()
    return upcoming.name if upcoming is not None else _("Won")


def indicator_label(indicator: str, stage: Stage | None) -> str:
    """Name an indicator with its stage, e.g. "Stage conversion Qualified → Proposal"."""
    if indicator == Indicator.STAGE_CONVERSION and stage is not None:
        return _("Conversion %(stage)s → %(next)s") % {"stage": stage.name, "next": _next_stage_name(stage)}
    if indicator == Indicator.TIME_IN_STAGE and stage is not None:
        return _("Time in stage %(stage)s") % {"stage": stage.name}
    return str(Indicator(indicator).label)


def indicator_value(
    *, organization: Organization, member: Membership, indicator: str, period: Period, stage: Stage | None = None
) -> IndicatorValue:
    """Compute `indicator` over `member`'s own deals and activities in `period`.

    Units: stage conversion and win rate are fractions (0.4 for 40 %), average
    deal size is in the base currency, time in stage in days, the others are
    counts. Raises ValueError for a stage indicator without a stage.
    """
    if indicator in STAGE_INDICATORS and stage is None:
        raise ValueError(f"indicator {indicator!r} needs a stage")
    window = Window.of(period, organization)
    deals = deal_universe(organization=organization, visible_member_ids={member.pk})

    if indicator == Indicator.STAGE_CONVERSION:
        return _stage_conversion(deals, window=window, stage=stage)
    if indicator == Indicator.TIME_IN_STAGE:
        return _time_in_stage(deals, window=window, stage=stage)
    if indicator in (Indicator.WIN_RATE, Indicator.AVERAGE_DEAL_SIZE):
        return _closed_deal_indicator(deals, window=window, indicator=indicator)

    activities = activity_universe(organization=organization, visible_member_ids={member.pk})
    if indicator == Indicator.ACTIVITY_COUNT:
        return IndicatorValue(Decimal(done_in(activities, window).count()))
    if indicator == Indicator.ACTIVITIES_PER_WON_DEAL:
        _rows, total = activity_result_rows(activities, deals, window=window)
        if total.activities_per_won_deal is None:
            return IndicatorValue(None, _("No deal was won in %(period)s.") % {"period": period.label})
        return IndicatorValue(total.activities_per_won_deal)
    raise ValueError(f"unknown indicator {indicator!r}")


def _stage_conversion(deals, *, window: Window, stage: Stage) -> IndicatorValue:
    rows = funnel_rows(deals, window=window, pipeline=stage.pipeline, won_label=_("Won"))
    row = next((row for row in rows if row.stage is not None and row.stage.pk == stage.pk), None)
    if row is None:
        return IndicatorValue(None, _("%(stage)s is not an open stage.") % {"stage": stage.name})
    if row.conversion is None:
        return IndicatorValue(
            None,
            _("No deal created in %(period)s reached %(stage)s.") % {"period": window.period.label, "stage": stage.name},
        )
    return IndicatorValue(row.conversion)


def _time_in_stage(deals, *, window: Window, stage: Stage) -> IndicatorValue:
    rows = time_in_stage_rows(deals, window=window, pipeline=stage.pipeline)
    row = next((row for row in rows if row.stage.pk == stage.pk), None)
    if row is None or row.days_mean is None:
        return IndicatorValue(
            None, _("No stay in %(stage)s ended in %(period)s.") % {"stage": stage.name, "period": window.period.label}
        )
    return IndicatorValue(row.days_mean)


def _closed_deal_indicator(deals, *, window: Window, indicator: str) -> IndicatorValue:
    won, lost = Q(status=DealStatus.WON), Q(status=DealStatus.LOST)
    totals = closed_in(deals, window).aggregate(
        won_count=Count("id", filter=won), lost_count=Count("id", filter=lost), won_amount=Sum("base_amount", filter=won)
    )
    if indicator == Indicator.WIN_RATE:
        value = win_rate(totals["won_count"], totals["lost_count"])
        reason = _("No deal was won or lost in %(period)s.")
    else:
        value = average_deal_size(totals["won_amount"] or Decimal(0), totals["won_count"])
        reason = _("No deal was won in %(period)s.")
    if value is None:
        return IndicatorValue(None, reason % {"period": window.period.label})
    return IndicatorValue(value)


def format_indicator_value(indicator: str, value: Decimal, currency: str) -> str:
    """Format a value in the unit of `indicator`: percent, money, days or a number with one decimal."""
    if indicator in RATIO_INDICATORS:
        return format_percent(value)
    if indicator == Indicator.AVERAGE_DEAL_SIZE:
        return format_money(value, currency)
    if indicator == Indicator.TIME_IN_STAGE:
        return format_days(value)
    return format_number(round_half_up(value, 1))


def target_is_better(*, indicator: str, baseline: Decimal, target: Decimal) -> bool:
    """Return True when `target` lies strictly on the better side of `baseline` (below it for LOWER_IS_BETTER)."""
    if indicator in LOWER_IS_BETTER:
        return target < baseline
    return target > baseline


def target_direction_message(*, indicator: str, baseline: Decimal, target: Decimal, currency: str) -> str:
    """Build the message for a target that is not better than the baseline, naming both values and the direction."""
    params = {
        "target": format_indicator_value(indicator, target, currency),
        "baseline": format_indicator_value(indicator, baseline, currency),
    }
    if indicator in LOWER_IS_BETTER:
        return _("The target %(target)s is not below the baseline %(baseline)s, but this indicator should fall.") % params
    return _("The target %(target)s is not above the baseline %(baseline)s, but this indicator should rise.") % params


def target_direction_error(
    *,
    organization: Organization,
    member: Membership,
    indicator: str,
    stage: Stage | None,
    baseline_period: Period,
    baseline_label: str,
    target: Decimal,
) -> str:
    """Measure the baseline and return why `target` is rejected, or "" when it is better or the baseline is undefined.

    `target` is a fraction for ratio indicators. An undefined baseline is
    accepted because data entered later may define it. If the target then
    turns out not to be better, the plan page shows progress as undefined.
    """
    baseline = indicator_value(
        organization=organization, member=member, indicator=indicator, period=baseline_period, stage=stage
    ).value
    if baseline is None or target_is_better(indicator=indicator, baseline=baseline, target=target):
        return ""
    message = target_direction_message(indicator=indicator, baseline=baseline, target=target, currency=organization.currency)
    if indicator in LOWER_IS_BETTER:
        advice = _("Enter a target below the baseline of %(period)s.")
    else:
        advice = _("Enter a target above the baseline of %(period)s.")
    return message + " " + advice % {"period": baseline_label}


def goal_progress(
    *, indicator: str, baseline: Decimal | None, target: Decimal, current: Decimal | None, currency: str
) -> IndicatorValue:
    """Share of the way from baseline to target: (current − baseline) ÷ (target − baseline).

    Defined only when the target is on the better side of the baseline (below it
    for LOWER_IS_BETTER indicators); otherwise the share would grow while the
    value gets worse. Not clamped: below 0 means the value moved away from the
    target, above 1 means the target was passed.
    """
    if baseline is None:
        return IndicatorValue(None, _("The baseline is not defined."))
    if target == baseline:
        return IndicatorValue(None, _("The target equals the baseline, so there is no way to go."))
    if not target_is_better(indicator=indicator, baseline=baseline, target=target):
        message = target_direction_message(indicator=indicator, baseline=baseline, target=target, currency=currency)
        return IndicatorValue(None, message + " " + _("Progress is not defined."))
    if current is None:
        return IndicatorValue(None, _("The current value is not defined."))
    share = (current - baseline) / (target - baseline)
    # 0 ÷ a negative number is Decimal("-0"), which would be shown as "-0.0 %".
    return IndicatorValue(share if share != 0 else Decimal(0))
