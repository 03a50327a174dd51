"""The attainment part of a rep's scorecard: attainment and pacing, indicators, trend, gap to goal.

Leading indicators (activities, meetings, new pipeline, cohort win
conversion) compare the rep with the median of the reps in the rep's current
team. Lagging ones (won revenue, average deal size, win rate) come from the
KPI snapshot rows the dashboard reads.
"""

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from dashboards.kpis import KpiRow, ratio
from dashboards.models import Grain
from dashboards.scorecards import kpi_row_combine
from dashboards.selectors import kpi_row_series, kpi_rows
from goals import charts
from goals.attainment import Attainment, attainment_list, credited_values, custom_period
from goals.models import QuotaLevel, QuotaMetric
from pipelines.models import Deal, DealStatus
from spm.fiscal import Period, period_containing
from spm.models import Membership, Organization, Role

# How many periods of the scorecard's kind the trend chart and the gap-to-goal rates look back, this one included.
TREND_PERIODS = 4
LEADING_METRICS = (QuotaMetric.ACTIVITIES, QuotaMetric.MEETINGS, QuotaMetric.PIPELINE_CREATED)


@dataclass(frozen=True)
class Indicator:
    """One leading indicator: the rep's value beside the team median; format is "count", "money" or "percent"."""

    label: str
    value: Decimal | None
    team_value: Decimal | None
    value_format: str


@dataclass(frozen=True)
class GapToGoal:
    """What it takes to reach the won-revenue quota by the period's end, or how it ended.

    `deals_needed` = ceil(remaining ÷ (win rate × average deal size)), the
    qualified deals to work at the rep's own rates. `activities_needed` =
    ceil(remaining ÷ average deal size × activities per won deal). Each is
    None with `reason` saying why when an input is undefined.

    Once the period is over (`is_ended`, its last day before the scorecard's
    day) nothing can be worked any more: both counts are None, `remaining` is
    the amount by which the quota was missed and `exceeded_by` the amount
    credited beyond it.
    """

    remaining: Decimal | None
    win_rate: Decimal | None
    average_deal_size: Decimal | None
    activities_per_won_deal: Decimal | None
    deals_needed: int | None
    activities_needed: int | None
    reason: str
    window_label: str
    is_ended: bool = False
    # Credited minus quota when positive, else 0; None without a quota.
    exceeded_by: Decimal | None = None


@dataclass
class RepScorecard:
    subject: Membership
    period: Period
    today: dt.date
    # Won revenue first, then every other metric with a quota.
    attainments: list
    leading: list
    lagging: KpiRow | None
    trend_chart: dict
    gap: GapToGoal
    badges: list = field(default_factory=list)
    contests: list = field(default_factory=list)

    @property
    def revenue(self) -> Attainment:
        return self.attainments[0]


def trend_periods(period: Period, fiscal_year_start_month: int, count: int = TREND_PERIODS) -> list[Period]:
    """Return `count` consecutive periods of `period`'s kind ending with it, oldest first."""
    periods = [period]
    while len(periods) < count:
        periods.insert(0, period_containing(periods[0].start - dt.timedelta(days=1), period.kind, fiscal_year_start_month))
    return periods


def team_rep_ids(membership: Membership) -> set[int]:
    """Return the ids of the reps in `membership`'s current team, the member included; empty without a team."""
    if membership.team_id is None:
        return set()
    ids = set(Membership.objects.filter(team_id=membership.team_id, role=Role.REP).values_list("pk", flat=True))
    return ids | {membership.pk}


def cohort_win_conversion(*, organization: Organization, period: Period, owner_ids: set[int]) -> dict[int, tuple[int, int]]:
    """Return {owner id: (deals created in `period`, of those won now)}; one query."""
    start_utc, end_utc = period.utc_bounds(organization.tzinfo)
    rows = (
        Deal.objects.filter(owner_id__in=owner_ids, created_at__gte=start_utc, created_at__lt=end_utc)
        .order_by()
        .values("owner_id")
        .annotate(created=Count("id"), won=Count("id", filter=Q(status=DealStatus.WON)))
        .values_list("owner_id", "created", "won")
    )
    return {owner_id: (created, won) for owner_id, created, won in rows}


def _median(values: list[Decimal]) -> Decimal | None:
    return statistics.median(values) if values else None


def leading_indicators(
    *, organization: Organization, period: Period, subject: Membership, by_metric: dict[str, list[Attainment]]
) -> list[Indicator]:
    """Return the rep's activities, meetings, new pipeline and cohort win conversion beside the team median.

    The team median counts a team rep without activity as 0. The conversion's
    team value is the team's pooled ratio (Σ won ÷ Σ created), not a median.
    """
    team_ids = team_rep_ids(subject)
    labels = {
        QuotaMetric.ACTIVITIES: _("Activities done"),
        QuotaMetric.MEETINGS: _("Meetings held"),
        QuotaMetric.PIPELINE_CREATED: _("New pipeline created"),
    }
    indicators = []
    for metric in LEADING_METRICS:
        values = {row.subject_id: row.credited for row in by_metric[metric]}
        team_values = [values.get(rep_id, Decimal(0)) for rep_id in team_ids]
        indicators.append(
            Indicator(
                label=labels[metric],
                value=values.get(subject.pk, Decimal(0)),
                team_value=_median(team_values),
                value_format="money" if metric == QuotaMetric.PIPELINE_CREATED else "count",
            )
        )

    cohorts = cohort_win_conversion(organization=organization, period=period, owner_ids=team_ids | {subject.pk})
    own_created, own_won = cohorts.get(subject.pk, (0, 0))
    team_created = sum(cohorts.get(rep_id, (0, 0))[0] for rep_id in team_ids)
    team_won = sum(cohorts.get(rep_id, (0, 0))[1] for rep_id in team_ids)
    indicators.append(
        Indicator(
            label=_("Deals created in the period and won"),
            value=ratio(own_won, own_created),
            team_value=ratio(team_won, team_created) if team_ids else None,
            value_format="percent",
        )
    )
    return indicators


def gap_to_goal(
    *, organization: Organization, subject: Membership, revenue: Attainment, periods: list[Period], today: dt.date
) -> GapToGoal:
    """Compute the gap-to-goal plan from the rep's rates over `periods` (the trend window, ending with the shown period).

    For a period that ended before `today` only the result counts: the amount
    missed or exceeded, and no deals or activities still needed.
    """
    window = custom_period(periods[0].start, periods[-1].last_day)
    series = kpi_row_series(organization=organization, periods=periods, grain=Grain.REP, subject_id=subject.pk)
    rows = [row for _period, row in series if row is not None]
    combined = kpi_row_combine(rows, grain=Grain.REP, subject=subject.display_name) if rows else None
    win_rate = combined.win_rate if combined else None
    deal_size = combined.average_deal_size if combined else None
    won_count = combined.won_count if combined else 0
    activities = credited_values(organization=organization, period=window, metric=QuotaMetric.ACTIVITIES, level=QuotaLevel.REP)
    activity_count = activities.get(subject.pk, Decimal(0))
    per_won_deal = ratio(activity_count, won_count) if activity_count else None

    remaining = revenue.remaining
    is_ended = periods[-1].last_day < today
    exceeded_by = None if revenue.quota is None else max(revenue.credited - revenue.quota, Decimal(0))
    deals_needed = activities_needed = None
    reason = ""
    if remaining is None:
        reason = _("No won-revenue quota is set for this period.")
    elif is_ended:
        # The template states the result from `remaining` and `exceeded_by`.
        pass
    elif remaining == 0:
        reason = _("The quota is reached; nothing remains.")
    elif win_rate is None:
        reason = _("No deals were closed in the last %(count)s periods, so there is no win rate.") % {"count": len(periods)}
    elif not win_rate or deal_size is None:
        reason = _("No deals were won in the last %(count)s periods, so there is no average deal size.") % {
            "count": len(periods)
        }
    else:
        deals_needed = math.ceil(remaining / (win_rate * deal_size))
        if per_won_deal is None:
            reason = _("No activities were recorded in the last %(count)s periods, so no activity count can be derived.") % {
                "count": len(periods)
            }
        else:
            activities_needed = math.ceil(remaining / deal_size * per_won_deal)
    return GapToGoal(
        remaining=remaining,
        win_rate=win_rate,
        average_deal_size=deal_size,
        activities_per_won_deal=per_won_deal,
        deals_needed=deals_needed,
        activities_needed=activities_needed,
        reason=reason,
        is_ended=is_ended,
        exceeded_by=exceeded_by,
        # Shown on the scorecard, so the dates follow the active language's short date format.
        window_label=f"{date_format(window.start, 'SHORT_DATE_FORMAT')} – {date_format(window.last_day, 'SHORT_DATE_FORMAT')}",
    )


def rep_scorecard_build(
    *, organization: Organization, subject: Membership, period: Period, today: dt.date
) -> RepScorecard:
    """Read everything the attainment part of `subject`'s scorecard shows for `period` as of `today`."""
    by_metric = {
        metric: attainment_list(organization=organization, period=period, metric=metric, level=QuotaLevel.REP, today=today)
        for metric in QuotaMetric.values
    }
    own = {metric: next((row for row in rows if row.subject_id == subject.pk), None) for metric, rows in by_metric.items()}
    revenue = own[QuotaMetric.WON_REVENUE] or Attainment(
        level=QuotaLevel.REP,
        subject_id=subject.pk,
        subject=subject.display_name,
        metric=QuotaMetric.WON_REVENUE,
        quota=None,
        credited=Decimal(0),
        elapsed_share=Decimal(0),
        open_pipeline=Decimal(0),
    )
    attainments = [revenue] + [
        row for metric, row in own.items() if metric != QuotaMetric.WON_REVENUE and row is not None and row.has_quota
    ]

    lagging_rows = kpi_rows(organization=organization, period=period, grain=Grain.REP, subject_ids={subject.pk})
    periods = trend_periods(period, organization.fiscal_year_start_month)
    trend = [
        attainment_list(
            organization=organization,
            period=trend_period,
            metric=QuotaMetric.WON_REVENUE,
            level=QuotaLevel.REP,
            today=today,
            subject_ids={subject.pk},
        )
        for trend_period in periods[:-1]
    ]
    trend_rows = [rows[0] if rows else None for rows in trend] + [revenue]
    return RepScorecard(
        subject=subject,
        period=period,
        today=today,
        attainments=attainments,
        leading=leading_indicators(organization=organization, period=period, subject=subject, by_metric=by_metric),
        lagging=lagging_rows[0] if lagging_rows else None,
        trend_chart=charts.attainment_trend_chart(list(zip(periods, trend_rows, strict=True))),
        gap=gap_to_goal(organization=organization, subject=subject, revenue=revenue, periods=periods, today=today),
    )
