"""Writes of the skills app: the rubric, assessments, development plans and their training items."""

import datetime as dt
import logging
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coaching.skills.defaults import DEFAULT_RUBRIC
from coaching.skills.indicators import STAGE_INDICATORS, target_direction_error
from coaching.skills.models import (
    LEVELS,
    Assessment,
    AssessmentKind,
    Competency,
    CompetencyLevel,
    DevelopmentGoal,
    DevelopmentPlan,
    Rating,
    TrainingItem,
)
from dashboards.analytics.periods import parse_period_or_range
from pipelines.models import Stage
from spm.audit import audit_record
from spm.date_limits import EARLIEST_DATE, LATEST_COMPUTABLE_DATE
from spm.models import Membership, Organization, Role
from spm.tenancy import membership_ids_visible

logger = logging.getLogger(__name__)

COMPETENCY_CHANGED = "skills.competency_changed"
COMPETENCY_DELETED = "skills.competency_deleted"
RUBRIC_DEFAULT_LOADED = "skills.rubric_default_loaded"

COMPETENCY_FIELDS = ("name_de", "name_en", "description_de", "description_en", "order")


def _competency_state(competency: Competency) -> dict:
    state = {field: getattr(competency, field) for field in COMPETENCY_FIELDS}
    for level in competency.levels.all():
        state[f"level_{level.level}_de"] = level.description_de
        state[f"level_{level.level}_en"] = level.description_en
    return state


@transaction.atomic
def competency_save(
    *, organization: Organization, actor: Membership, competency: Competency | None, fields: dict, levels: dict
) -> Competency:
    """Create or update a competency and its five level descriptions; `levels` maps 1..5 to (German, English).

    Names must be unique per language within the organization; a clash raises
    ValidationError naming the value.
    """
    before = _competency_state(competency) if competency is not None else None
    others = Competency.objects.exclude(pk=competency.pk if competency is not None else None)
    for field, label in (("name_de", _("German name")), ("name_en", _("English name"))):
        if others.filter(**{field: fields[field]}).exists():
            raise ValidationError(
                _("%(label)s %(value)s is already used by another competency; choose a different name.")
                % {"label": label, "value": fields[field]}
            )

    if competency is None:
        competency = Competency(organization=organization)
    for field in COMPETENCY_FIELDS:
        setattr(competency, field, fields[field])
    competency.save()
    for level in LEVELS:
        german, english = levels.get(level, ("", ""))
        CompetencyLevel.objects.update_or_create(
            organization=organization,
            competency=competency,
            level=level,
            defaults={"description_de": german, "description_en": english},
        )

    audit_record(
        organization=organization,
        actor=actor.user,
        action=COMPETENCY_CHANGED,
        object_type="competency",
        object_id=competency.pk,
        before=before,
        after=_competency_state(competency),
    )
    logger.info("Competency saved organization_id=%s competency_id=%s", organization.pk, competency.pk)
    return competency


@transaction.atomic
def competency_delete(*, organization: Organization, actor: Membership, competency: Competency) -> None:
    """Delete a competency with its levels and every rating given on it."""
    before = _competency_state(competency)
    competency_id = competency.pk
    competency.delete()
    audit_record(
        organization=organization,
        actor=actor.user,
        action=COMPETENCY_DELETED,
        object_type="competency",
        object_id=competency_id,
        before=before,
    )
    logger.info("Competency deleted organization_id=%s competency_id=%s", organization.pk, competency_id)


@transaction.atomic
def rubric_load_default(*, organization: Organization, actor: Membership) -> int:
    """Add the default competencies that the rubric lacks (matched by either name); return how many were added."""
    existing_de = set(Competency.objects.values_list("name_de", flat=True))
    existing_en = set(Competency.objects.values_list("name_en", flat=True))
    next_order = max(Competency.objects.values_list("order", flat=True), default=0) + 1
    added = []
    for name_de, name_en, description_de, description_en, level_texts in DEFAULT_RUBRIC:
        # An admin may have renamed one language only; either name marks the competency as present.
        if name_de in existing_de or name_en in existing_en:
            continue
        competency = Competency.objects.create(
            organization=organization,
            name_de=name_de,
            name_en=name_en,
            description_de=description_de,
            description_en=description_en,
            order=next_order,
        )
        next_order += 1
        CompetencyLevel.objects.bulk_create(
            CompetencyLevel(
                organization=organization, competency=competency, level=level, description_de=german, description_en=english
            )
            for level, (german, english) in zip(LEVELS, level_texts, strict=True)
        )
        added.append(name_en)

    if added:
        audit_record(
            organization=organization,
            actor=actor.user,
            action=RUBRIC_DEFAULT_LOADED,
            object_type="rubric",
            after={"added": added},
        )
    logger.info("Default rubric loaded organization_id=%s competencies_added=%s", organization.pk, len(added))
    return len(added)


def assessment_kind_for(*, assessor: Membership, member: Membership) -> str:
    """Return the kind of assessment `assessor` may record for `member`, or raise PermissionDenied.

    Members assess themselves; managers and admins assess the other members they may see.
    """
    if assessor.pk == member.pk:
        return AssessmentKind.SELF
    if assessor.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied("Only managers and admins assess other members.")
    visible = membership_ids_visible(assessor)
    if visible is not None and member.pk not in visible:
        raise PermissionDenied("The member is not in the assessor's teams.")
    return AssessmentKind.MANAGER


@transaction.atomic
def assessment_create(
    *,
    organization: Organization,
    assessor: Membership,
    member: Membership,
    assessed_on: dt.date,
    levels: dict[int, int],
    note: str = "",
) -> Assessment:
    """Record an assessment with one level (1..5) per competency id in `levels`; competencies left out stay unrated.

    Raises PermissionDenied when `assessor` may not assess `member`, and
    ValidationError for no rating, an unknown competency or a level outside 1..5.
    """
    kind = assessment_kind_for(assessor=assessor, member=member)
    if not levels:
        raise ValidationError(_("Rate at least one competency."))
    competencies = {competency.pk: competency for competency in Competency.objects.filter(pk__in=levels)}
    for competency_id, level in levels.items():
        if competency_id not in competencies:
            raise ValidationError(_("Competency %(id)s does not exist in the rubric.") % {"id": competency_id})
        if level not in LEVELS:
            raise ValidationError(_("Level %(level)s is invalid; use 1 to 5.") % {"level": level})

    assessment = Assessment.objects.create(
        organization=organization, member=member, assessor=assessor, kind=kind, assessed_on=assessed_on, note=note
    )
    Rating.objects.bulk_create(
        Rating(organization=organization, assessment=assessment, competency=competencies[competency_id], level=level)
        for competency_id, level in levels.items()
    )
    logger.info(
        "Skill assessment recorded organization_id=%s assessment_id=%s member_id=%s kind=%s",
        organization.pk,
        assessment.pk,
        member.pk,
        kind,
    )
    return assessment


def plan_check_editor(*, editor: Membership, member: Membership) -> None:
    """Raise PermissionDenied unless `editor` is a manager or admin who may see `member` and is not `member`."""
    if editor.role not in (Role.MANAGER, Role.ADMIN) or editor.pk == member.pk:
        raise PermissionDenied("Managers and admins set up development plans for the members they lead.")
    visible = membership_ids_visible(editor)
    if visible is not None and member.pk not in visible:
        raise PermissionDenied("The member is not in the editor's teams.")


def _check_goal(
    *,
    organization: Organization,
    member: Membership,
    indicator: str,
    stage: Stage | None,
    baseline_period_label: str,
    period_label: str,
    target_value: Decimal,
):
    """Raise ValidationError for a goal that plan_goal_add rejects, with each message keyed by its GoalForm field.

    This measures the baseline, so a caller need not compare the target with it beforehand.
    """
    if indicator in STAGE_INDICATORS and stage is None:
        raise ValidationError({"stage": _("This indicator needs a stage; choose one.")})
    periods = []
    for field, label in (("baseline_period_label", baseline_period_label), ("period_label", period_label)):
        try:
            periods.append(parse_period_or_range(label.strip(), organization.fiscal_year_start_month))
        except ValueError as error:
            raise ValidationError({field: str(error)}) from None
    baseline_period = periods[0]
    # A baseline outside the computable dates is not measured, and the plan page names that reason.
    if baseline_period.start >= EARLIEST_DATE and baseline_period.last_day <= LATEST_COMPUTABLE_DATE:
        error = target_direction_error(
            organization=organization,
            member=member,
            indicator=indicator,
            stage=stage if indicator in STAGE_INDICATORS else None,
            baseline_period=baseline_period,
            baseline_label=baseline_period_label.strip(),
            target=target_value,
        )
        if error:
            raise ValidationError({"target_value": error})


@transaction.atomic
def plan_create(*, organization: Organization, creator: Membership, member: Membership, title: str) -> DevelopmentPlan:
    plan_check_editor(editor=creator, member=member)
    plan = DevelopmentPlan.objects.create(organization=organization, member=member, created_by=creator, title=title)
    logger.info("Development plan created organization_id=%s plan_id=%s member_id=%s", organization.pk, plan.pk, member.pk)
    return plan


@transaction.atomic
def plan_create_with_goal(
    *, organization: Organization, creator: Membership, member: Membership, title: str, goal: dict
) -> DevelopmentPlan:
    """Create a plan and its first goal in one transaction. `goal` contains plan_goal_add's goal arguments.

    Raises PermissionDenied and ValidationError as plan_create and plan_goal_add
    do, and then saves neither the plan nor the goal.
    """
    plan = plan_create(organization=organization, creator=creator, member=member, title=title)
    plan_goal_add(plan=plan, editor=creator, **goal)
    return plan


@transaction.atomic
def plan_update(*, plan: DevelopmentPlan, editor: Membership, title: str) -> DevelopmentPlan:
    """Rename a plan; raises PermissionDenied unless `editor` may set up plans for the plan's member."""
    plan_check_editor(editor=editor, member=plan.member)
    if plan.title == title:
        # Nothing changes, so nothing is written.
        return plan
    plan.title = title
    plan.save(update_fields=["title"])
    logger.info("Development plan renamed organization_id=%s plan_id=%s", plan.organization_id, plan.pk)
    return plan


@transaction.atomic
def plan_delete(*, plan: DevelopmentPlan, editor: Membership) -> None:
    """Delete a plan with its goals and training items; raises PermissionDenied as plan_update does."""
    plan_check_editor(editor=editor, member=plan.member)
    plan_id, member_id = plan.pk, plan.member_id
    plan.delete()
    logger.info(
        "Development plan deleted organization_id=%s plan_id=%s member_id=%s", plan.organization_id, plan_id, member_id
    )


@transaction.atomic
def plan_goal_add(
    *,
    plan: DevelopmentPlan,
    editor: Membership,
    indicator: str,
    stage: Stage | None,
    baseline_period_label: str,
    period_label: str,
    target_value: Decimal,
) -> DevelopmentGoal:
    """Add a goal; `target_value` is a fraction for conversion and win rate (0.4 for 40 %).

    Raises ValidationError for a missing stage, an invalid period label or a target
    that is not on the better side of the measured baseline (target_direction_error),
    with each message keyed by the GoalForm field it concerns.
    """
    plan_check_editor(editor=editor, member=plan.member)
    _check_goal(
        organization=plan.organization,
        member=plan.member,
        indicator=indicator,
        stage=stage,
        baseline_period_label=baseline_period_label,
        period_label=period_label,
        target_value=target_value,
    )
    goal = DevelopmentGoal.objects.create(
        organization=plan.organization,
        plan=plan,
        indicator=indicator,
        stage=stage if indicator in STAGE_INDICATORS else None,
        baseline_period_label=baseline_period_label.strip(),
        period_label=period_label.strip(),
        target_value=target_value,
    )
    logger.info("Development goal added organization_id=%s plan_id=%s goal_id=%s", plan.organization_id, plan.pk, goal.pk)
    return goal


@transaction.atomic
def plan_goal_update(
    *,
    goal: DevelopmentGoal,
    editor: Membership,
    indicator: str,
    stage: Stage | None,
    baseline_period_label: str,
    period_label: str,
    target_value: Decimal,
) -> DevelopmentGoal:
    """Change every field of a goal; the same rules as plan_goal_add apply, `target_value` is a fraction for ratios.

    Raises PermissionDenied unless `editor` may set up the plan, and
    ValidationError as plan_goal_add does.
    """
    plan = goal.plan
    plan_check_editor(editor=editor, member=plan.member)
    _check_goal(
        organization=plan.organization,
        member=plan.member,
        indicator=indicator,
        stage=stage,
        baseline_period_label=baseline_period_label,
        period_label=period_label,
        target_value=target_value,
    )
    goal.indicator = indicator
    goal.stage = stage if indicator in STAGE_INDICATORS else None
    goal.baseline_period_label = baseline_period_label.strip()
    goal.period_label = period_label.strip()
    goal.target_value = target_value
    goal.save(update_fields=["indicator", "stage", "baseline_period_label", "period_label", "target_value"])
    logger.info("Development goal changed organization_id=%s plan_id=%s goal_id=%s", plan.organization_id, plan.pk, goal.pk)
    return goal


@transaction.atomic
def plan_goal_delete(*, goal: DevelopmentGoal, editor: Membership) -> None:
    """Delete one goal of a plan; raises PermissionDenied unless `editor` may set up the plan."""
    plan_check_editor(editor=editor, member=goal.plan.member)
    goal_id = goal.pk
    goal.delete()
    logger.info(
        "Development goal deleted organization_id=%s plan_id=%s goal_id=%s", goal.organization_id, goal.plan_id, goal_id
    )


@transaction.atomic
def training_item_add(*, plan: DevelopmentPlan, editor: Membership, title: str, due_on: dt.date) -> TrainingItem:
    plan_check_editor(editor=editor, member=plan.member)
    item = TrainingItem.objects.create(organization=plan.organization, plan=plan, title=title, due_on=due_on)
    logger.info("Training item added organization_id=%s plan_id=%s item_id=%s", plan.organization_id, plan.pk, item.pk)
    return item


@transaction.atomic
def training_item_update(*, item: TrainingItem, editor: Membership, title: str, due_on: dt.date) -> TrainingItem:
    """Change a training item's title and due date; its done state stays. Raises PermissionDenied as plan_update does."""
    plan_check_editor(editor=editor, member=item.plan.member)
    item.title = title
    item.due_on = due_on
    item.save(update_fields=["title", "due_on"])
    logger.info("Training item changed organization_id=%s plan_id=%s item_id=%s", item.organization_id, item.plan_id, item.pk)
    return item


@transaction.atomic
def training_item_delete(*, item: TrainingItem, editor: Membership) -> None:
    """Delete a training item; raises PermissionDenied unless `editor` may set up the plan."""
    plan_check_editor(editor=editor, member=item.plan.member)
    item_id = item.pk
    item.delete()
    logger.info("Training item deleted organization_id=%s plan_id=%s item_id=%s", item.organization_id, item.plan_id, item_id)


def training_item_set_done(*, item: TrainingItem, actor: Membership, is_done: bool) -> TrainingItem:
    """Mark a training item done (now, by `actor`) or open again; the caller has checked that `actor` may see the plan."""
    if item.is_done == is_done:
        # Nothing changes; a double click must not move the done time.
        return item
    item.done_at = timezone.now() if is_done else None
    item.done_by = actor if is_done else None
    item.save(update_fields=["done_at", "done_by"])
    logger.info(
        "Training item marked organization_id=%s item_id=%s is_done=%s", item.organization_id, item.pk, is_done
    )
    return item
