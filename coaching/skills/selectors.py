"""Reads of the skills app: the rubric, a member's assessment history and gaps, plans with measured progress."""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import gettext

from coaching.skills.indicators import RATIO_INDICATORS, IndicatorValue, goal_progress, indicator_label, indicator_value
from coaching.skills.models import Assessment, AssessmentKind, Competency, DevelopmentGoal, DevelopmentPlan, Rating
from dashboards.analytics.periods import parse_period_or_range
from spm.date_limits import EARLIEST_DATE, LATEST_COMPUTABLE_DATE, short_date
from spm.fiscal import Period
from spm.models import Membership, Organization
from spm.tenancy import get_visible_or_404, restrict_to_visible

logger = logging.getLogger(__name__)


def competency_list() -> list[Competency]:
    """Return the rubric in display order with the levels of each competency."""
    return list(Competency.objects.prefetch_related("levels").order_by("order", "id"))


def member_get_visible(*, viewer: Membership, member_id: int) -> Membership:
    """Return the member `viewer` may see, or raise Http404."""
    return get_visible_or_404(Membership.objects.select_related("user"), viewer, owner_field="pk", pk=member_id)


def assessment_list(*, member: Membership) -> list[Assessment]:
    """Return `member`'s assessments, oldest first (ties by id), with their ratings and the assessor."""
    return list(
        Assessment.objects.filter(member=member)
        .select_related("assessor__user")
        .prefetch_related(Prefetch("ratings", queryset=Rating.objects.select_related("competency")))
        .order_by("assessed_on", "id")
    )


@dataclass(frozen=True)
class SkillGap:
    """Latest manager and self rating of one competency; `gap` is self minus manager, None unless both exist."""

    competency: Competency
    manager_level: int | None
    manager_on: dt.date | None
    self_level: int | None
    self_on: dt.date | None

    @property
    def gap(self) -> int | None:
        if self.manager_level is None or self.self_level is None:
            return None
        return self.self_level - self.manager_level


def skill_gaps(*, competencies: list[Competency], assessments: list[Assessment]) -> list[SkillGap]:
    """Compare the latest rating of each kind per competency; `assessments` must be oldest first."""
    latest: dict[tuple[int, str], tuple[int, dt.date]] = {}
    for assessment in assessments:
        for rating in assessment.ratings.all():
            latest[(rating.competency_id, assessment.kind)] = (rating.level, assessment.assessed_on)
    gaps = []
    for competency in competencies:
        manager = latest.get((competency.pk, AssessmentKind.MANAGER), (None, None))
        own = latest.get((competency.pk, AssessmentKind.SELF), (None, None))
        gaps.append(
            SkillGap(
                competency=competency,
                manager_level=manager[0],
                manager_on=manager[1],
                self_level=own[0],
                self_on=own[1],
            )
        )
    return gaps


def plan_list_visible(*, viewer: Membership) -> QuerySet[DevelopmentPlan]:
    """Return the plans of the members `viewer` may see, newest first, with goal, item and done-item counts."""
    plans = DevelopmentPlan.objects.select_related("member__user").annotate(
        goal_count=Count("goals", distinct=True),
        item_count=Count("training_items", distinct=True),
        done_count=Count("training_items", filter=Q(training_items__done_at__isnull=False), distinct=True),
    )
    return restrict_to_visible(plans, viewer, owner_field="member").order_by("-created_at", "-id")


def plan_get_visible(*, viewer: Membership, plan_id: int) -> DevelopmentPlan:
    """Return the plan if `viewer` may see its member, or raise Http404."""
    return get_visible_or_404(
        DevelopmentPlan.objects.select_related("member__user", "created_by__user"), viewer, owner_field="member", pk=plan_id
    )


@dataclass(frozen=True)
class GoalProgress:
    """One goal with its measured values; ratio goals hold fractions, the template formats them."""

    goal: DevelopmentGoal
    label: str
    is_ratio: bool
    baseline: IndicatorValue
    current: IndicatorValue
    target: Decimal
    progress: IndicatorValue
    due_on: dt.date


def goal_progress_list(*, organization: Organization, plan: DevelopmentPlan) -> list[GoalProgress]:
    """Measure every goal of `plan` on the plan member's data: baseline period, then the goal's period so far."""
    rows = []
    goals = DevelopmentGoal.objects.filter(plan=plan).select_related("stage__pipeline").order_by("id")
    for goal in goals:
        start_month = organization.fiscal_year_start_month
        baseline_period = parse_period_or_range(goal.baseline_period_label, start_month)
        period = parse_period_or_range(goal.period_label, start_month)
        values = [
            _measured_value(organization=organization, plan=plan, goal=goal, period=measured, label=label)
            for measured, label in ((baseline_period, goal.baseline_period_label), (period, goal.period_label))
        ]
        baseline, current = values
        rows.append(
            GoalProgress(
                goal=goal,
                label=indicator_label(goal.indicator, goal.stage),
                is_ratio=goal.indicator in RATIO_INDICATORS,
                baseline=baseline,
                current=current,
                target=goal.target_value,
                progress=goal_progress(
                    indicator=goal.indicator,
                    baseline=baseline.value,
                    target=goal.target_value,
                    current=current.value,
                    currency=organization.currency,
                ),
                due_on=period.last_day,
            )
        )
    return rows


def _measured_value(
    *, organization: Organization, plan: DevelopmentPlan, goal: DevelopmentGoal, period: Period, label: str
) -> IndicatorValue:
    """Measure the goal's indicator in `period` (entered as `label`), or name the reason when it cannot be computed.

    The goal form accepts periods from EARLIEST_DATE on, but goals saved before
    that check may name a period such as 0001, whose UTC conversion overflows.
    """
    if period.start < EARLIEST_DATE or period.last_day > LATEST_COMPUTABLE_DATE:
        logger.warning(
            "Development goal not measured, period out of range: organization_id=%s plan_id=%s goal_id=%s period=%s",
            organization.pk,
            plan.pk,
            goal.pk,
            label,
        )
        params = {"period": label, "earliest": short_date(EARLIEST_DATE), "latest": short_date(LATEST_COMPUTABLE_DATE)}
        reason = gettext("The period %(period)s lies outside the supported range from %(earliest)s to %(latest)s.")
        return IndicatorValue(None, reason % params)
    return indicator_value(
        organization=organization, member=plan.member, indicator=goal.indicator, period=period, stage=goal.stage
    )
