"""Coaching signals: where a rep's numbers in a period deviate from their team's median.

Each metric is computed for every member of the rep's team in one set-based
query grouped by owner (a few per metric, never one per rep), with the same
definitions as the KPI and pipeline pages, for a period P = [start, end) in the
organization's time zone:

| metric | value | better | sample |
| --- | --- | --- | --- |
| stage_conversion (per open stage) | reached(next step) ÷ reached(stage), cohort created in P | higher | deals that reached the stage |
| time_in_stage (per open stage) | mean days of the completed stays that ended in P | lower | stays |
| win_rate | won ÷ (won + lost), closed in P | higher | closed deals |
| average_deal_size | won amount ÷ won deals, in the base currency | higher | won deals |
| activity_ratio | done activities in P ÷ deals won in P | lower | won deals |
| stalled_share | stalled ÷ open deals, at the as-of moment | lower | open deals |
| slipped_share | slipped ÷ deals due in P | lower | due deals |
| attainment_pacing | credited won revenue ÷ (quota × elapsed share of P) | higher | none (needs a quota) |

The as-of moment is `now`, or the end of P when P is over. A value that is
undefined (nothing closed, no quota, nobody reached the stage) stays None and
the member is left out of the median; nothing is replaced by 0.

Team: the members with role rep whose current team is the rep's team and
whose active dates overlap P, plus the rep. A rep without a team is compared
with the reps of the same manager, and a rep with neither gets no signals.
The team median is `statistics.median` over the defined values, the rep's
own included.

When a deviation matters (`SignalThresholds`, defaults in brackets):
- severity = |rep − median| ÷ max(rep, median), a share from 0 to 1, reaches
  `min_severity` [0.2]. For 40 % against a median of 50 % it is 0.2.
- the rep's value rests on at least `min_sample` deals or stays [3].
- at least `min_team_values` members have a defined value [3], and at least
  the organization's minimum group size, so a median never stands in for one
  colleague's number.
Signals come concerns first (the rep is worse than the median), then
strengths, each by severity, largest first.
"""

import datetime as dt
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models import Window as WindowExpression
from django.db.models.functions import Lead
from django.utils import timezone

from coaching.signal_labels import (
    ACTIVITY_RATIO,
    ATTAINMENT_PACING,
    AVERAGE_DEAL_SIZE,
    SLIPPED_SHARE,
    STAGE_CONVERSION,
    STALLED_SHARE,
    TIME_IN_STAGE,
    WIN_RATE,
    metric_label,
)
from dashboards import display
from dashboards.analytics.activities import activity_universe, done_in
from dashboards.analytics.base import Window, deal_universe, open_stages, pipeline_list
from dashboards.analytics.funnel import (
    WON_REACH,
    deals_with_highest_open_order,
    funnel_cohort,
    funnel_deals_reached,
)
from dashboards.analytics.sql import datetime_param, rows_from
from dashboards.analytics.stages import stalled_deals, time_in_stage_deals
from dashboards.analytics.waterfall import slipped_condition
from dashboards.analytics.winloss import closed_in
from dashboards.kpis import average_deal_size, ratio, win_rate
from goals.attainment import attainment_list
from goals.models import QuotaLevel, QuotaMetric
from pipelines.models import Deal, DealStageChange, DealStatus, Pipeline, Stage
from spm.db_functions import DaysBetween
from spm.fiscal import Period
from spm.models import Membership, Organization, Role

METRICS = (
    STAGE_CONVERSION,
    TIME_IN_STAGE,
    WIN_RATE,
    AVERAGE_DEAL_SIZE,
    ACTIVITY_RATIO,
    STALLED_SHARE,
    SLIPPED_SHARE,
    ATTAINMENT_PACING,
)


@dataclass(frozen=True)
class SignalThresholds:
    """When a deviation from the team median matters; see the module docstring."""

    min_severity: Decimal = Decimal("0.2")
    min_sample: int = 3
    min_team_values: int = 3


DEFAULT_THRESHOLDS = SignalThresholds()


def team_median_min_values(organization: Organization, thresholds: SignalThresholds = DEFAULT_THRESHOLDS) -> int:
    """Return how many defined values, the rep's own included, a team median needs before anyone sees it.

    It is the threshold's `min_team_values`, raised to the organization's
    minimum group size, so a median never stands in for one colleague's number.
    The coaching signals and the rep scorecard share this rule.
    """
    return max(thresholds.min_team_values, organization.minimum_group_size or 0)


@dataclass(frozen=True)
class Signal:
    """One metric on which a rep deviates from the team median in a period.

    `key` names the stage of per-stage metrics (its id as text) and is empty
    otherwise. `value_format` is one of the formats of dashboards.display.
    `deal_ids` are the rep's deals behind `rep_value` (for stage conversion the
    deals that reached the stage, for win rate the closed deals), in id order.
    `deal_list_params` are the deal-list query parameters that list the same
    deals, or empty where the deal list has no identical filter.
    `label_params` are the names in the label (see coaching.signal_labels),
    from which `metric_label` renders it in another language.
    """

    metric: str
    key: str
    label: str
    value_format: str
    period_label: str
    rep_value: Decimal
    team_median: Decimal
    team_size: int
    sample_size: int | None
    higher_is_better: bool
    severity: Decimal
    deal_ids: tuple[int, ...]
    deal_list_params: tuple[tuple[str, str], ...] = ()
    label_params: tuple[tuple[str, str | None], ...] = ()

    @property
    def code(self) -> str:
        """Stable identifier of the metric and stage, e.g. `stage_conversion:12` or `win_rate`."""
        return f"{self.metric}:{self.key}" if self.key else self.metric

    @property
    def direction(self) -> str:
        """"below" or "above" the team median."""
        return "below" if self.rep_value < self.team_median else "above"

    @property
    def is_concern(self) -> bool:
        """True when the rep is worse than the team median on this metric."""
        return (self.rep_value < self.team_median) == self.higher_is_better

    def as_dict(self) -> dict:
        """Return the signal as JSON-serialisable values; Decimals become strings."""
        return {
            "metric": self.metric,
            "key": self.key,
            "code": self.code,
            "label": self.label,
            "label_params": dict(self.label_params),
            "value_format": self.value_format,
            "period": self.period_label,
            "rep_value": str(self.rep_value),
            "team_median": str(self.team_median),
            "team_size": self.team_size,
            "sample_size": self.sample_size,
            "higher_is_better": self.higher_is_better,
            "is_concern": self.is_concern,
            "severity": str(self.severity),
            "deal_ids": list(self.deal_ids),
            "deal_list_params": dict(self.deal_list_params),
        }


@dataclass(frozen=True)
class MetricComparison:
    """A rep's value and the team median of one metric, whether or not the deviation matters.

    Either value is None when undefined. The median is also None when fewer
    members than the thresholds require have a value, so it never stands in
    for one colleague's number.
    """

    metric: str
    key: str
    label: str
    value_format: str
    rep_value: Decimal | None
    team_median: Decimal | None
    team_size: int
    higher_is_better: bool


@dataclass(frozen=True)
class _Measure:
    """One metric for every team member: defined values, sample sizes and how to find a rep's deals."""

    metric: str
    key: str
    label: str
    value_format: str
    higher_is_better: bool
    values: dict[int, Decimal]
    samples: dict[int, int] | None
    # Narrows a queryset of one rep's deals to the deals behind that rep's value.
    deals: Callable[[QuerySet[Deal]], QuerySet[Deal]]
    # Deal-list query parameters without `owner` and `period`; None when the list has no identical filter.
    deal_list_query: dict[str, str] | None
    # The names in the label, for coaching.signal_labels.metric_label.
    label_params: dict[str, str | None]


# --- public reads ---------------------------------------------------------------------------------


def rep_signals(
    *,
    organization: Organization,
    membership: Membership,
    period: Period,
    now: dt.datetime | None = None,
    thresholds: SignalThresholds = DEFAULT_THRESHOLDS,
) -> list[Signal]:
    """Return the signals of one member in `period`, concerns first, each group by severity.

    `now` (default: the current time) is the as-of moment of stalled deals,
    slipped deals and pacing. Runs in the organization's scope; the caller
    checks that the viewer may see `membership`.
    """
    signals = signals_for_members(
        organization=organization, memberships=[membership], period=period, now=now, thresholds=thresholds
    )
    return signals[membership.pk]


def signals_for_members(
    *,
    organization: Organization,
    memberships: Iterable[Membership],
    period: Period,
    now: dt.datetime | None = None,
    thresholds: SignalThresholds = DEFAULT_THRESHOLDS,
) -> dict[int, list[Signal]]:
    """Return {membership id: signals} for several members, computing each team's metrics once.

    Members of one team share the team's queries, so a manager's digest over
    a whole team costs the queries of one rep plus one deal-id query per signal.
    """
    now = now or timezone.now()
    by_team: dict[frozenset[int], list[Membership]] = {}
    for membership in memberships:
        by_team.setdefault(frozenset(team_member_ids(membership=membership, period=period)), []).append(membership)

    result: dict[int, list[Signal]] = {}
    for member_ids, members in by_team.items():
        if len(member_ids) < 2:
            result.update({member.pk: [] for member in members})
            continue
        measures = team_measures(organization=organization, member_ids=set(member_ids), period=period, now=now)
        for member in members:
            result[member.pk] = _signals_of(
                organization=organization,
                member=member,
                measures=measures,
                period=period,
                thresholds=thresholds,
            )
    return result


def rep_signals_and_comparisons(
    *,
    organization: Organization,
    membership: Membership,
    period: Period,
    now: dt.datetime | None = None,
    thresholds: SignalThresholds = DEFAULT_THRESHOLDS,
) -> tuple[list[Signal], list[MetricComparison]]:
    """Return the member's signals (as `rep_signals`) and its comparison on every metric, from one computation.

    The comparisons come in the order of the metrics, per-stage metrics in
    stage order. A member compared with nobody gets two empty lists.
    """
    now = now or timezone.now()
    member_ids = team_member_ids(membership=membership, period=period)
    if len(member_ids) < 2:
        return [], []
    measures = team_measures(organization=organization, member_ids=member_ids, period=period, now=now)
    signals = _signals_of(
        organization=organization, member=membership, measures=measures, period=period, thresholds=thresholds
    )

    min_team_values = team_median_min_values(organization, thresholds)
    comparisons = [
        MetricComparison(
            metric=measure.metric,
            key=measure.key,
            label=measure.label,
            value_format=measure.value_format,
            rep_value=measure.values.get(membership.pk),
            team_median=statistics.median(measure.values.values()) if len(measure.values) >= min_team_values else None,
            team_size=len(measure.values),
            higher_is_better=measure.higher_is_better,
        )
        for measure in measures
    ]
    return signals, comparisons


def team_member_ids(*, membership: Membership, period: Period) -> set[int]:
    """Return the ids of the members `membership` is compared with, itself included.

    They are the reps of the member's current team, or, without a team, the
    reps of the same manager, in both cases only those active in `period`.
    A member with neither is compared with nobody: returns only its own id.
    """
    if membership.team_id is not None:
        peers = Membership.objects.filter(team_id=membership.team_id)
    elif membership.manager_id is not None:
        peers = Membership.objects.filter(manager_id=membership.manager_id)
    else:
        return {membership.pk}
    active = (Q(active_from__isnull=True) | Q(active_from__lt=period.end)) & (
        Q(active_to__isnull=True) | Q(active_to__gte=period.start)
    )
    return set(peers.filter(active, role=Role.REP).values_list("pk", flat=True)) | {membership.pk}


def team_measures(
    *, organization: Organization, member_ids: set[int], period: Period, now: dt.datetime
) -> list["_Measure"]:
    """Compute every metric of the module docstring for the members in `member_ids`, grouped by owner."""
    window = Window.of(period, organization)
    deals = deal_universe(organization=organization, visible_member_ids=member_ids)
    as_of = min(now, window.end_utc)
    today = timezone.localdate(now, timezone=organization.tzinfo)

    measures: list[_Measure] = []
    pipelines = pipeline_list()
    for pipeline in pipelines:
        stages = open_stages(pipeline)
        # The label names the pipeline only when there are several.
        pipeline_name = pipeline.name if len(pipelines) > 1 else ""
        measures.extend(
            _conversion_measures(deals, window=window, pipeline=pipeline, stages=stages, pipeline_name=pipeline_name)
        )
        measures.extend(_time_in_stage_measures(deals, window=window, stages=stages, pipeline_name=pipeline_name))
    measures.extend(_closed_measures(deals, window=window, organization=organization, member_ids=member_ids))
    measures.extend(_stalled_measures(deals, as_of=as_of, is_running=now < window.end_utc))
    measures.extend(_slipped_measures(deals, window=window, today=today))
    measures.extend(
        _pacing_measures(organization=organization, member_ids=member_ids, window=window, today=today)
    )
    return measures


# --- metrics --------------------------------------------------------------------------------------


def _conversion_measures(
    deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline, stages: list[Stage], pipeline_name: str
) -> list[_Measure]:
    """Stage conversion per open stage: one query over the cohort, grouped by owner and highest stage reached."""
    if not stages:
        return []
    cohort = deals_with_highest_open_order(funnel_cohort(deals, window=window, pipeline=pipeline), pipeline=pipeline)
    reached_orders: dict[int, dict[int, int]] = {}
    for row in cohort.values("owner_id", "highest_open_order").annotate(deal_count=Count("id")).order_by():
        reached_orders.setdefault(row["owner_id"], {})[row["highest_open_order"]] = row["deal_count"]

    measures = []
    for index, stage in enumerate(stages):
        next_stage = stages[index + 1] if index + 1 < len(stages) else None
        next_order = next_stage.order if next_stage is not None else WON_REACH
        values, samples = {}, {}
        for owner_id, counts in reached_orders.items():
            reached = sum(count for order, count in counts.items() if order >= stage.order)
            reached_next = sum(count for order, count in counts.items() if order >= next_order)
            samples[owner_id] = reached
            conversion = ratio(reached_next, reached)
            if conversion is not None:
                values[owner_id] = conversion
        label_params = {
            "pipeline": pipeline_name,
            "stage": stage.name,
            "next_stage": next_stage.name if next_stage is not None else None,
        }
        measures.append(
            _Measure(
                metric=STAGE_CONVERSION,
                key=str(stage.pk),
                label=metric_label(STAGE_CONVERSION, label_params),
                label_params=label_params,
                value_format=display.PERCENT,
                higher_is_better=True,
                values=values,
                samples=samples,
                deals=lambda rep_deals, stage=stage: funnel_deals_reached(
                    rep_deals, window=window, pipeline=pipeline, stage=stage
                ),
                deal_list_query={"analysis": "funnel", "key": str(stage.pk)},
            )
        )
    return measures


def _time_in_stage_measures(
    deals: QuerySet[Deal], *, window: Window, stages: list[Stage], pipeline_name: str
) -> list[_Measure]:
    """Mean days per open stage over completed stays that ended in the window; one query, grouped by owner.

    A stay runs from a move into a stage to the deal's next move (by time,
    ties by id), as on the pipeline page. The stay in the current stage has
    not ended, so it does not count.
    """
    if not stages:
        return []
    next_change = WindowExpression(
        Lead("changed_at"), partition_by=[F("deal_id")], order_by=[F("changed_at").asc(), F("id").asc()]
    )
    stays = (
        DealStageChange.objects.filter(deal__in=deals.values("pk"), changed_at__lt=window.end_utc)
        .annotate(stay_owner_id=F("deal__owner_id"), stay_stage_id=F("to_stage_id"), left_at=next_change)
        .annotate(days=DaysBetween("changed_at", next_change))
        .values("stay_owner_id", "stay_stage_id", "left_at", "days")
    )
    stage_ids = [stage.pk for stage in stages]
    placeholders = ", ".join(["%s"] * len(stage_ids))
    rows = rows_from(
        stays,
        select="stay_owner_id, stay_stage_id, COUNT(*) AS stay_count, AVG(days) AS days_mean",
        where=f"left_at >= %s AND left_at < %s AND stay_stage_id IN ({placeholders})",
        group_by="stay_owner_id, stay_stage_id",
        params=[datetime_param(window.start_utc), datetime_param(window.end_utc), *stage_ids],
    )
    by_stage: dict[int, list[dict]] = {}
    for row in rows:
        by_stage.setdefault(row["stay_stage_id"], []).append(row)

    measures = []
    for stage in stages:
        stage_rows = by_stage.get(stage.pk, [])
        label_params = {"pipeline": pipeline_name, "stage": stage.name}
        measures.append(
            _Measure(
                metric=TIME_IN_STAGE,
                key=str(stage.pk),
                label=metric_label(TIME_IN_STAGE, label_params),
                label_params=label_params,
                value_format=display.DAYS,
                higher_is_better=False,
                values={row["stay_owner_id"]: _decimal(row["days_mean"]) for row in stage_rows},
                samples={row["stay_owner_id"]: row["stay_count"] for row in stage_rows},
                deals=lambda rep_deals, stage=stage: time_in_stage_deals(rep_deals, window=window, stage=stage),
                deal_list_query={"analysis": "time_in_stage", "key": str(stage.pk)},
            )
        )
    return measures


def _closed_measures(
    deals: QuerySet[Deal], *, window: Window, organization: Organization, member_ids: set[int]
) -> list[_Measure]:
    """Win rate, average deal size and activity-to-result ratio; two queries grouped by owner.

    The activity ratio is left out when the team logged no done activity in
    the window, because then the data has no activities rather than the
    reps doing none.
    """
    won, lost = Q(status=DealStatus.WON), Q(status=DealStatus.LOST)
    closed_rows = (
        closed_in(deals, window)
        .values("owner_id")
        .annotate(won_count=Count("id", filter=won), lost_count=Count("id", filter=lost), won_amount=Sum("base_amount", filter=won))
        .order_by()
    )
    won_counts, rates, sizes, closed_counts = {}, {}, {}, {}
    for row in closed_rows:
        owner_id = row["owner_id"]
        won_counts[owner_id] = row["won_count"]
        closed_counts[owner_id] = row["won_count"] + row["lost_count"]
        rates[owner_id] = win_rate(row["won_count"], row["lost_count"])
        size = average_deal_size(row["won_amount"] or Decimal("0"), row["won_count"])
        if size is not None:
            sizes[owner_id] = size

    def won_deals(rep_deals):
        return closed_in(rep_deals, window).filter(won)

    measures = [
        _Measure(
            metric=WIN_RATE,
            key="",
            label=metric_label(WIN_RATE),
            label_params={},
            value_format=display.PERCENT,
            higher_is_better=True,
            values={owner_id: rate for owner_id, rate in rates.items() if rate is not None},
            samples=closed_counts,
            deals=lambda rep_deals: closed_in(rep_deals, window),
            deal_list_query={"metric": "closed"},
        ),
        _Measure(
            metric=AVERAGE_DEAL_SIZE,
            key="",
            label=metric_label(AVERAGE_DEAL_SIZE),
            label_params={},
            value_format=display.MONEY,
            higher_is_better=True,
            values=sizes,
            samples=won_counts,
            deals=won_deals,
            deal_list_query={"metric": "won"},
        ),
    ]

    activities = done_in(activity_universe(organization=organization, visible_member_ids=member_ids), window)
    activity_counts = dict(activities.values("owner_id").annotate(n=Count("id")).order_by().values_list("owner_id", "n"))
    if sum(activity_counts.values()):
        ratios = {}
        for owner_id, won_count in won_counts.items():
            value = ratio(activity_counts.get(owner_id, 0), won_count)
            if value is not None:
                ratios[owner_id] = value
        measures.append(
            _Measure(
                metric=ACTIVITY_RATIO,
                key="",
                label=metric_label(ACTIVITY_RATIO),
                label_params={},
                value_format=display.COUNT,
                higher_is_better=False,
                values=ratios,
                samples=won_counts,
                deals=won_deals,
                deal_list_query={"metric": "won"},
            )
        )
    return measures


def _stalled_measures(deals: QuerySet[Deal], *, as_of: dt.datetime, is_running: bool) -> list[_Measure]:
    """Share of open deals stalled at `as_of`; two queries grouped by owner.

    Left out when no stage has a stall threshold, because then nothing can stall.
    """
    if not Stage.objects.filter(stalled_after_days__isnull=False).exists():
        return []
    # NOTE: for a period that is over, `as_of` is its end but only deals still open today are
    # considered, because a deal's status at a past moment is not stored.
    open_deals = deals.filter(status=DealStatus.OPEN, created_at__lte=as_of)
    open_counts = _counts_by_owner(open_deals)
    stalled_counts = _counts_by_owner(stalled_deals(open_deals, now=as_of))
    values = {owner_id: Decimal(stalled_counts.get(owner_id, 0)) / count for owner_id, count in open_counts.items()}
    return [
        _Measure(
            metric=STALLED_SHARE,
            key="",
            label=metric_label(STALLED_SHARE),
            label_params={},
            value_format=display.PERCENT,
            higher_is_better=False,
            values=values,
            samples=open_counts,
            deals=lambda rep_deals: stalled_deals(rep_deals.filter(status=DealStatus.OPEN, created_at__lte=as_of), now=as_of),
            # The deal list shows the deals stalled now, which matches only while the period runs.
            deal_list_query={"analysis": "stalled"} if is_running else None,
        )
    ]


def _slipped_measures(deals: QuerySet[Deal], *, window: Window, today: dt.date) -> list[_Measure]:
    """Share of the deals due in the window that slipped; one query grouped by owner.

    Slipped: expected to close in the period and not won or lost in it. Either
    the pipeline page counts it from daily snapshots (the expected date was
    moved out), or the expected close date, still in the period, has passed
    while the deal stayed open. Due: expected close date in the period now,
    or slipped.
    """
    period = window.period
    not_closed_in_period = Q(closed_at__isnull=True) | Q(closed_at__gte=window.end_utc)
    passed_while_open = (
        Q(expected_close_on__gte=period.start, expected_close_on__lte=min(period.last_day, today - dt.timedelta(days=1)))
        & not_closed_in_period
    )
    slipped = slipped_condition(window=window, today=today) | passed_while_open
    due = Q(expected_close_on__gte=period.start, expected_close_on__lte=period.last_day) | slipped
    rows = deals.values("owner_id").annotate(slipped_count=Count("id", filter=slipped), due_count=Count("id", filter=due)).order_by()
    values, samples = {}, {}
    for row in rows:
        if row["due_count"]:
            values[row["owner_id"]] = Decimal(row["slipped_count"]) / row["due_count"]
            samples[row["owner_id"]] = row["due_count"]
    return [
        _Measure(
            metric=SLIPPED_SHARE,
            key="",
            label=metric_label(SLIPPED_SHARE),
            label_params={},
            value_format=display.PERCENT,
            higher_is_better=False,
            values=values,
            samples=samples,
            deals=lambda rep_deals: rep_deals.filter(slipped),
            deal_list_query=None,
        )
    ]


def _pacing_measures(*, organization: Organization, member_ids: set[int], window: Window, today: dt.date) -> list[_Measure]:
    """Won-revenue attainment pacing from goals.attainment; undefined for members without a quota."""
    period = window.period
    rows = attainment_list(
        organization=organization,
        period=period,
        metric=QuotaMetric.WON_REVENUE,
        level=QuotaLevel.REP,
        today=today,
        subject_ids=member_ids,
    )
    values = {row.subject_id: row.pacing for row in rows if row.pacing is not None}
    last_credited_day = min(today, period.last_day)
    credited_end = Window.of(Period(period.start, last_credited_day + dt.timedelta(days=1), "custom", ""), organization)
    return [
        _Measure(
            metric=ATTAINMENT_PACING,
            key="",
            label=metric_label(ATTAINMENT_PACING),
            label_params={},
            value_format=display.PERCENT,
            higher_is_better=True,
            values=values,
            samples=None,
            deals=lambda rep_deals: closed_in(rep_deals, credited_end).filter(status=DealStatus.WON),
            deal_list_query={"metric": "won"} if last_credited_day == period.last_day else None,
        )
    ]


# --- signals from measures ------------------------------------------------------------------------


def _signals_of(
    *,
    organization: Organization,
    member: Membership,
    measures: list[_Measure],
    period: Period,
    thresholds: SignalThresholds,
) -> list[Signal]:
    """Turn the measures into the signals that matter for `member`, sorted by concern and severity."""
    min_team_values = team_median_min_values(organization, thresholds)
    rep_deals = Deal.objects.filter(organization=organization, owner=member).order_by()

    signals = []
    for measure in measures:
        rep_value = measure.values.get(member.pk)
        if rep_value is None or len(measure.values) < min_team_values:
            continue
        sample = measure.samples.get(member.pk, 0) if measure.samples is not None else None
        if sample is not None and sample < thresholds.min_sample:
            continue
        median = statistics.median(measure.values.values())
        severity = deviation_severity(rep_value, median)
        if severity < thresholds.min_severity:
            continue

        deal_ids = tuple(measure.deals(rep_deals).order_by("pk").values_list("pk", flat=True))
        params: tuple[tuple[str, str], ...] = ()
        if measure.deal_list_query is not None:
            params = (*measure.deal_list_query.items(), ("period", period.label), ("owner", str(member.pk)))
        signals.append(
            Signal(
                metric=measure.metric,
                key=measure.key,
                label=measure.label,
                label_params=tuple(measure.label_params.items()),
                value_format=measure.value_format,
                period_label=period.label,
                rep_value=rep_value,
                team_median=median,
                team_size=len(measure.values),
                sample_size=sample,
                higher_is_better=measure.higher_is_better,
                severity=severity,
                deal_ids=deal_ids,
                deal_list_params=params,
            )
        )
    order = {metric: index for index, metric in enumerate(METRICS)}
    signals.sort(key=lambda signal: (not signal.is_concern, -signal.severity, order[signal.metric], signal.key))
    return signals


def deviation_severity(value: Decimal, median: Decimal) -> Decimal:
    """Return |value − median| ÷ max(|value|, |median|), from 0 to 1; 0 when both are 0."""
    larger = max(abs(value), abs(median))
    if not larger:
        return Decimal("0")
    return abs(value - median) / larger


def _counts_by_owner(deals: QuerySet[Deal]) -> dict[int, int]:
    return dict(deals.values("owner_id").annotate(n=Count("id")).order_by().values_list("owner_id", "n"))


def _decimal(value) -> Decimal | None:
    """Convert a database float (SQLite) or numeric (PostgreSQL) to Decimal; None stays None."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(repr(value))
