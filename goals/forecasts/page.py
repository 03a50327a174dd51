"""Everything the forecast page shows for one person (or the organization) and period, read in one place."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dashboards.selectors import kpi_period_last_closed
from goals.forecasts import accuracy, charts, pipeline, rollup
from goals.forecasts.categories import forecast_period_kind
from goals.models import ForecastSubmission
from pipelines.models import Deal, DealStatus
from spm.fiscal import Period, local_midnight, period_containing
from spm.models import Membership, Organization
from spm.tenancy import membership_ids_visible

# The deal table lists at most this many deals; the totals always cover all of them.
DEAL_ROWS_SHOWN = 200


@dataclass
class ForecastPage:
    organization: Organization
    period: Period
    subject: Membership | None
    rollup: rollup.RollupLine
    lines: list[rollup.RollupLine]
    editable_ids: set[int]
    submittable_periods: list[Period]
    deals: list[pipeline.ForecastDeal]
    deal_count: int
    deals_without_close_date: int
    weighted_stage: Decimal
    weighted_model: Decimal | None
    model_scored_count: int
    history: list
    accuracy_period: Period | None
    accuracy_lines: list[accuracy.AccuracyLine] = field(default_factory=list)
    chart: dict | None = None

    @property
    def is_submittable(self) -> bool:
        return self.period in self.submittable_periods


def forecast_period_default(organization: Organization, today: dt.date) -> Period:
    """Return the period the forecast page shows without `?period=`.

    That is the current period, because forecasts are submitted for it, as long as it has a deal
    or a submission. An empty current period (data whose last deal lies years back, like the
    demo's) gives way to the latest period with a won or lost deal, as on the dashboard.
    """
    kind = forecast_period_kind(organization)
    current = period_containing(today, kind, organization.fiscal_year_start_month)
    if _period_has_forecast_data(organization, current):
        return current
    return kpi_period_last_closed(organization=organization, kind=kind) or current


def _period_has_forecast_data(organization: Organization, period: Period) -> bool:
    """Return whether `period` has an open deal expected to close in it, a deal closed in it, or a submission."""
    deals = Deal.objects.filter(organization=organization, deleted_at__isnull=True)
    expected = deals.filter(
        status=DealStatus.OPEN, expected_close_on__gte=period.start, expected_close_on__lt=period.end
    )
    closed = deals.filter(closed_at__gte=local_midnight(period.start, organization.tzinfo)).filter(
        closed_at__lt=local_midnight(period.end, organization.tzinfo)
    )
    submissions = ForecastSubmission.objects.filter(
        organization=organization, period_kind=period.kind, period_start=period.start
    )
    return expected.exists() or closed.exists() or submissions.exists()


def forecast_period_choices(organization: Organization, today: dt.date, page_period: Period | None = None) -> list[Period]:
    """Return the periods of the picker, newest first.

    They are the next, the current, four before, any with forecasts and `page_period`, the period
    on the page, which may be the default's latest period with data or an older one from the URL.
    """
    kind = forecast_period_kind(organization)
    start_month = organization.fiscal_year_start_month
    current = period_containing(today, kind, start_month)
    choices = [period_containing(current.end, kind, start_month), current]
    period = current
    for _index in range(4):
        period = period_containing(period.start - dt.timedelta(days=1), kind, start_month)
        choices.append(period)
    choices += accuracy.periods_with_forecasts(organization=organization, kind=kind, today=today, limit=100)
    if page_period is not None and page_period.kind == kind:
        choices.append(page_period)
    return sorted(set(choices), key=lambda period: period.start, reverse=True)


def forecast_page_build(
    *, organization: Organization, viewer: Membership, subject: Membership | None, period: Period, today: dt.date
) -> ForecastPage:
    """Read the forecast page of `subject` (None: the organization) for `period`, as `viewer` may see it.

    The caller has checked that `viewer` may see `subject`. The roll-up, its deals and
    its history cover only members that spm.tenancy lets `viewer` see, and `viewer`
    can adjust the lines of the roll-up.
    """
    visible = membership_ids_visible(viewer)
    tree = rollup.forecast_tree()
    if visible is not None:
        tree = tree.restricted_to(visible)
    subject_id = subject.pk if subject is not None else None
    scope_ids = tree.subtree(subject_id) if subject_id is not None else None
    if subject is not None and subject_id not in tree.members:
        # An admin who leads nobody still sees their own deals.
        scope_ids = {subject_id}
        tree.members[subject_id] = subject

    deals = pipeline.period_open_deals(period=period, owner_ids=scope_ids)
    totals = pipeline.category_totals_by_owner(organization=organization, period=period, deals=deals)
    latest = rollup.submissions_in_force(period=period)
    root = rollup.forecast_rollup(tree=tree, root_id=subject_id, totals_by_owner=totals, latest=latest)
    scores = pipeline.model_probabilities(organization=organization, deal_ids=[line.deal.pk for line in deals])
    weighted_model, scored = (None, 0)
    if scores:
        weighted_model, scored = pipeline.weighted_pipeline_model(deals, scores)

    line_ids = [line.member_id for line in root.children]
    editable_ids = {member_id for member_id in [subject_id, *line_ids] if member_id is not None}
    history_ids = set(editable_ids)

    kind = period.kind
    past = accuracy.periods_with_forecasts(organization=organization, kind=kind, today=today)
    if period.end <= today:
        accuracy_period = period
    else:
        accuracy_period = past[-1] if past else None
    accuracy_lines = []
    if accuracy_period is not None:
        accuracy_lines = accuracy.forecast_accuracy_lines(
            organization=organization, tree=tree, period=accuracy_period, subject_ids=[subject_id, *line_ids]
        )
    chart = None
    if past:
        series = accuracy.forecast_vs_actual_series(organization=organization, tree=tree, subject_id=subject_id, periods=past)
        chart = charts.forecast_vs_actual_chart(series, currency=organization.currency)

    return ForecastPage(
        organization=organization,
        period=period,
        subject=subject,
        rollup=root,
        lines=root.children,
        editable_ids=editable_ids,
        submittable_periods=rollup.submittable_periods(
            today=today, kind=forecast_period_kind(organization), start_month=organization.fiscal_year_start_month
        ),
        deals=deals[:DEAL_ROWS_SHOWN],
        deal_count=len(deals),
        deals_without_close_date=pipeline.open_deals_without_close_date(owner_ids=scope_ids),
        weighted_stage=pipeline.weighted_pipeline(deals),
        weighted_model=weighted_model,
        model_scored_count=scored,
        history=rollup.submission_history(period=period, subject_ids=history_ids),
        accuracy_period=accuracy_period,
        accuracy_lines=accuracy_lines,
        chart=chart,
    )
