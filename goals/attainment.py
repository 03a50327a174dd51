"""Quota attainment: credited values per subject and period, and the maths on top of them.

Credit rules, for a period P (local dates in the organization's time zone):
- won_revenue / won_deals: deals won in P by the filters of dashboards.selectors,
  so a rep's won amount here equals the dashboard's; Σ base_amount or a count.
- pipeline_created: Σ base_amount of deals whose `created_at` lies in P.
- activities: done activities whose `occurred_at` lies in P; meetings: those of
  kind meeting.
- Open pipeline (for coverage): deals open now whose expected close date lies in P.

As of a day inside P, only closes, creations and activities up to and
including that local day are credited, so a past as-of day ignores later ones.

A rep is credited through the deal's or activity's owner. A team or territory
is credited through the owner's goals.Assignment valid on the credit date
(close date, creation date, activity date, expected close date). An owner
without any assignment counts for the current Membership.team/territory, the
same rule the quota roll-up in goals.quotas uses. A parent team or territory
also collects its children's credit. Team and territory attainment is
Σ credited ÷ Σ quota over the subject, never a mean of the members' ratios.

Every read here is one grouped query per metric and level, whatever the
number of subjects.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from dashboards.selectors import METRIC_WON, deal_filter_for_metric
from goals.models import Assignment, QuotaLevel, QuotaMetric, Team, Territory
from goals.quotas import quota_targets_for_period
from pipelines.models import Activity, ActivityKind, Deal, DealStatus
from spm.fiscal import Period, local_midnight
from spm.models import Membership, Organization, Role

ZERO = Decimal("0")
# Metrics counted in whole units; the others are money in the base currency.
COUNT_METRICS = frozenset({QuotaMetric.WON_DEALS, QuotaMetric.ACTIVITIES, QuotaMetric.MEETINGS})
# Metrics that open deals can still raise, so pipeline coverage is defined for them.
COVERAGE_METRICS = frozenset({QuotaMetric.WON_REVENUE, QuotaMetric.WON_DEALS})


def organization_today(organization: Organization) -> dt.date:
    """Return today's date in the organization's time zone."""
    return timezone.localtime(timezone.now(), organization.tzinfo).date()


def custom_period(first_day: dt.date, last_day: dt.date) -> Period:
    """Return a Period over the inclusive days `[first_day, last_day]`, e.g. a contest's."""
    return Period(
        start=first_day,
        end=last_day + dt.timedelta(days=1),
        kind="custom",
        label=f"{first_day.isoformat()}..{last_day.isoformat()}",
    )


# --- pure maths -----------------------------------------------------------------------------------


def elapsed_share(period: Period, today: dt.date) -> Decimal:
    """Return the share of `period`'s days that have begun by `today`, from 0 to 1.

    Today counts as elapsed, because its closed deals are already credited: on
    the first day of a 90-day quarter the share is 1/90. A period that has not
    started is 0, and one that has ended is 1.
    """
    if today < period.start:
        return ZERO
    if today >= period.last_day:
        return Decimal(1)
    days_in_period = (period.end - period.start).days
    return Decimal((today - period.start).days + 1) / Decimal(days_in_period)


def attainment_ratio(credited: Decimal, quota: Decimal | None) -> Decimal | None:
    """credited ÷ quota; None without a quota or with a quota of 0."""
    if not quota:
        return None
    return credited / quota


def projected_value(credited: Decimal, share: Decimal) -> Decimal | None:
    """Linear projection to the period's end: credited ÷ elapsed share; None before the period starts."""
    if not share:
        return None
    return credited / share


def coverage_ratio(open_pipeline: Decimal, quota: Decimal | None, credited: Decimal) -> tuple[Decimal | None, bool]:
    """Return (open pipeline ÷ (quota − credited), is_covered).

    When nothing remains (credited ≥ quota) the ratio is None and is_covered
    True. Without a quota both are (None, False).
    """
    if quota is None:
        return None, False
    remaining = quota - credited
    if remaining <= 0:
        return None, True
    return open_pipeline / remaining, False


@dataclass(frozen=True)
class Attainment:
    """One subject's attainment of one metric in one period, as of a day.

    `pacing` compares credited with the pro-rata target `quota × elapsed_share`:
    1 means exactly on pace. Under the linear projection used here it equals
    `projected_attainment`; both are kept because pacing is read "so far" and
    projection "at the end". `coverage` is None when undefined or covered; read
    `is_covered` to tell them apart.
    """

    level: str
    subject_id: int
    subject: str
    metric: str
    quota: Decimal | None
    credited: Decimal
    elapsed_share: Decimal
    open_pipeline: Decimal | None
    warning_ratio: Decimal | None = None

    @property
    def metric_label(self) -> str:
        return QuotaMetric(self.metric).label

    @property
    def has_quota(self) -> bool:
        return self.quota is not None

    @property
    def attainment(self) -> Decimal | None:
        return attainment_ratio(self.credited, self.quota)

    @property
    def pace_target(self) -> Decimal | None:
        if self.quota is None:
            return None
        return self.quota * self.elapsed_share

    @property
    def pacing(self) -> Decimal | None:
        return attainment_ratio(self.credited, self.pace_target)

    @property
    def projected(self) -> Decimal | None:
        return projected_value(self.credited, self.elapsed_share)

    @property
    def projected_attainment(self) -> Decimal | None:
        projected = self.projected
        if projected is None:
            return None
        return attainment_ratio(projected, self.quota)

    @property
    def remaining(self) -> Decimal | None:
        """Quota still to reach, never negative; None without a quota."""
        if self.quota is None:
            return None
        return max(self.quota - self.credited, ZERO)

    @property
    def coverage(self) -> Decimal | None:
        if self.open_pipeline is None:
            return None
        return coverage_ratio(self.open_pipeline, self.quota, self.credited)[0]

    @property
    def is_covered(self) -> bool:
        if self.open_pipeline is None:
            return False
        return coverage_ratio(self.open_pipeline, self.quota, self.credited)[1]

    @property
    def is_warning(self) -> bool:
        """True for a rep whose projected attainment is below the organization's threshold."""
        projected = self.projected_attainment
        if self.level != QuotaLevel.REP or self.warning_ratio is None or projected is None:
            return False
        return projected < self.warning_ratio


# --- set-based reads ------------------------------------------------------------------------------


def _credit_subject(level: str):
    """Return the expression of the subject id credited for each row of a queryset annotated with `credit_on`.

    The rule is the one of goals.selectors. The assignment covering the credit
    date decides. An owner with assignments but none covering that date
    credits no team or territory, and an owner without any assignment credits
    their current team or territory.
    """
    if level == QuotaLevel.REP:
        return F("owner_id")
    field = "team_id" if level == QuotaLevel.TEAM else "territory_id"
    owned = Assignment.objects.filter(membership_id=OuterRef("owner_id"))
    covering = owned.filter(valid_from__lte=OuterRef("credit_on")).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=OuterRef("credit_on"))
    )
    return Case(
        When(Exists(owned), then=Subquery(covering.order_by("-valid_from").values(field)[:1])),
        default=F(f"owner__{field}"),
        output_field=BigIntegerField(),
    )


def _grouped(queryset: QuerySet, *, level: str, credit_on, aggregate) -> dict[int, Decimal]:
    """Aggregate `queryset` per credited subject; teams and territories also collect their descendants'."""
    rows = (
        queryset.order_by()
        .annotate(credit_on=credit_on)
        .annotate(credited_subject=_credit_subject(level))
        .values("credited_subject")
        .annotate(value=aggregate)
        .values_list("credited_subject", "value")
    )
    values = {subject_id: Decimal(value or 0) for subject_id, value in rows if subject_id is not None}
    if level == QuotaLevel.REP or not values:
        return values
    return _rolled_up(values, Team if level == QuotaLevel.TEAM else Territory)


def _rolled_up(values: dict[int, Decimal], model) -> dict[int, Decimal]:
    """Add each team's or territory's value to every ancestor, as quota roll-ups add child targets."""
    parents = dict(model.objects.values_list("id", "parent_id"))
    totals: dict[int, Decimal] = {}
    for subject_id, value in values.items():
        node, seen = subject_id, set()
        # `seen` stops at a cycle in bad parent data instead of looping forever.
        while node is not None and node not in seen:
            seen.add(node)
            totals[node] = totals.get(node, ZERO) + value
            node = parents.get(node)
    return totals


def _local_date(field: str, organization: Organization):
    return TruncDate(field, tzinfo=organization.tzinfo, output_field=DateField())


def credited_values(
    *, organization: Organization, period: Period, metric: str, level: str, as_of: dt.date | None = None
) -> dict[int, Decimal]:
    """Return {subject id: credited value} of `metric` in `period` at `level`; one query.

    Money metrics are Σ base_amount in the base currency (deals without an
    amount add nothing), count metrics a count. Subjects with nothing credited
    are absent. With `as_of`, only what happened up to and including that
    local day counts, so a report as of a past day inside `period` ignores
    later closes; None counts the whole period. Raises ValueError for an
    unknown metric or level.
    """
    _check_level(level)
    start_utc, end_utc = period.utc_bounds(organization.tzinfo)
    if as_of is not None:
        end_utc = min(end_utc, local_midnight(as_of + dt.timedelta(days=1), organization.tzinfo))
    if metric in (QuotaMetric.WON_REVENUE, QuotaMetric.WON_DEALS):
        deals = Deal.objects.filter(organization=organization).filter(
            deal_filter_for_metric(metric=METRIC_WON, start_utc=start_utc, end_utc=end_utc)
        )
        aggregate = Sum("base_amount") if metric == QuotaMetric.WON_REVENUE else Count("id")
        return _grouped(deals, level=level, credit_on=_local_date("closed_at", organization), aggregate=aggregate)
    if metric == QuotaMetric.PIPELINE_CREATED:
        deals = Deal.objects.filter(organization=organization, created_at__gte=start_utc, created_at__lt=end_utc)
        return _grouped(
            deals, level=level, credit_on=_local_date("created_at", organization), aggregate=Sum("base_amount")
        )
    if metric in (QuotaMetric.ACTIVITIES, QuotaMetric.MEETINGS):
        activities = Activity.objects.filter(
            organization=organization, is_done=True, occurred_at__gte=start_utc, occurred_at__lt=end_utc
        )
        if metric == QuotaMetric.MEETINGS:
            activities = activities.filter(kind=ActivityKind.MEETING)
        return _grouped(
            activities, level=level, credit_on=_local_date("occurred_at", organization), aggregate=Count("id")
        )
    raise ValueError(
        _("Invalid quota metric %(metric)r; use one of: %(choices)s.")
        % {"metric": metric, "choices": ", ".join(QuotaMetric.values)}
    )


def open_pipeline_values(*, organization: Organization, period: Period, metric: str, level: str) -> dict[int, Decimal]:
    """Return {subject id: open pipeline} of deals open now whose expected close date lies in `period`.

    For won_revenue it is Σ base_amount, for won_deals the number of deals.
    Each deal is credited as it would be if it closed on its expected date.
    Other metrics have no pipeline: returns {}.
    """
    _check_level(level)
    if metric not in COVERAGE_METRICS:
        return {}
    deals = Deal.objects.filter(
        organization=organization,
        status=DealStatus.OPEN,
        expected_close_on__gte=period.start,
        expected_close_on__lt=period.end,
    )
    aggregate = Sum("base_amount") if metric == QuotaMetric.WON_REVENUE else Count("id")
    return _grouped(deals, level=level, credit_on=F("expected_close_on"), aggregate=aggregate)


def subject_names(*, level: str, subject_ids=None) -> dict[int, str]:
    """Return {id: display name} of the reps, teams or territories of the current scope.

    For reps it names every member with role rep, plus the members in
    `subject_ids` whatever their role (a manager with a quota of their own).
    """
    _check_level(level)
    if level == QuotaLevel.TEAM:
        return dict(Team.objects.values_list("id", "name"))
    if level == QuotaLevel.TERRITORY:
        return dict(Territory.objects.values_list("id", "name"))
    members = Membership.objects.select_related("user").filter(Q(role=Role.REP) | Q(pk__in=subject_ids or ()))
    return {member.pk: member.display_name for member in members}


def rep_ids_active(*, period: Period) -> set[int]:
    """Return the ids of members with role rep whose active dates overlap `period`."""
    active = (Q(active_from__isnull=True) | Q(active_from__lt=period.end)) & (
        Q(active_to__isnull=True) | Q(active_to__gte=period.start)
    )
    return set(Membership.objects.filter(active, role=Role.REP).values_list("pk", flat=True))


def quota_targets(*, organization: Organization, period: Period, metric: str, level: str) -> dict[int, Decimal]:
    """Return {subject id: effective quota} from goals.quotas (prorated, ramped, rolled up)."""
    return quota_targets_for_period(organization=organization, period=period, metric=metric, level=level)


def attainment_list(
    *,
    organization: Organization,
    period: Period,
    metric: str,
    level: str,
    today: dt.date,
    subject_ids: set[int] | None = None,
) -> list[Attainment]:
    """Return the attainment of every subject of `level` in `period` as of `today`, by name.

    Credit counts up to and including `today`, the day the elapsed share is
    computed for, so pacing compares like with like for a past `today` too.
    The open pipeline is always today's, because past open states are not
    recorded.

    The subjects are every team or territory, or for reps every rep active in
    the period plus every member with a quota or a credit. `subject_ids`
    narrows the list. Subjects without a quota have `quota` None. Queries:
    quotas, credits, open pipeline (for won metrics) and names.
    """
    quotas = quota_targets(organization=organization, period=period, metric=metric, level=level)
    credited = credited_values(organization=organization, period=period, metric=metric, level=level, as_of=today)
    pipeline = open_pipeline_values(organization=organization, period=period, metric=metric, level=level)

    ids = set(quotas) | set(credited)
    if level == QuotaLevel.REP:
        ids |= rep_ids_active(period=period)
    names = subject_names(level=level, subject_ids=ids)
    if level != QuotaLevel.REP:
        ids |= set(names)
    ids &= set(names)
    if subject_ids is not None:
        ids &= set(subject_ids)

    share = elapsed_share(period, today)
    warning_ratio = Decimal(organization.attainment_warning_percent) / 100
    rows = [
        Attainment(
            level=level,
            subject_id=subject_id,
            subject=names[subject_id],
            metric=metric,
            quota=quotas.get(subject_id),
            credited=credited.get(subject_id, ZERO),
            elapsed_share=share,
            open_pipeline=pipeline.get(subject_id, ZERO) if metric in COVERAGE_METRICS else None,
            warning_ratio=warning_ratio,
        )
        for subject_id in ids
    ]
    rows.sort(key=lambda row: (row.subject.casefold(), row.subject_id))
    return rows


def attainment_get(
    *, organization: Organization, period: Period, metric: str, level: str, subject_id: int, today: dt.date
) -> Attainment | None:
    """Return one subject's attainment, or None when the subject does not exist at that level."""
    rows = attainment_list(
        organization=organization, period=period, metric=metric, level=level, today=today, subject_ids={subject_id}
    )
    return rows[0] if rows else None


def _check_level(level: str) -> None:
    if level not in QuotaLevel.values:
        raise ValueError(
            _("Invalid level %(level)r; use one of: %(choices)s.")
            % {"level": level, "choices": ", ".join(QuotaLevel.values)}
        )

