"""Forecast categories of stages and deals, and the changes admins and deal owners make to them.

A won deal is always "closed" and a lost deal always "omitted". An open deal takes
its own override if one is set, else its stage's category: the admin's choice for
that stage, else the default rule by the stage's win probability (at least 80 %
commit, at least 50 % best case, below that pipeline).
"""

import logging

from babel.lists import format_list
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from dashboards.templatetags.spm_format import current_locale
from goals.models import (
    DealForecastCategory,
    ForecastCategory,
    ForecastPeriodKind,
    ForecastSettings,
    StageForecastCategory,
)
from pipelines.models import Deal, DealStatus, Stage, StageKind
from spm.audit import audit_record
from spm.models import Membership, Organization, User

logger = logging.getLogger(__name__)

COMMIT_FROM_PERCENT = 80
BEST_CASE_FROM_PERCENT = 50
# Categories an open stage or an open deal may take; "closed" is reserved for won deals.
OPEN_CATEGORIES = (
    ForecastCategory.PIPELINE,
    ForecastCategory.BEST_CASE,
    ForecastCategory.COMMIT,
    ForecastCategory.OMITTED,
)

STAGE_CATEGORY_CHANGED = "forecast.stage_category_changed"
DEAL_CATEGORY_CHANGED = "forecast.deal_category_changed"
SETTINGS_CHANGED = "forecast.settings_changed"


def category_default_for_stage(*, kind: str, probability: int) -> str:
    """Return the category of a stage that the admin has not mapped."""
    if kind == StageKind.WON:
        return ForecastCategory.CLOSED
    if kind == StageKind.LOST:
        return ForecastCategory.OMITTED
    if probability >= COMMIT_FROM_PERCENT:
        return ForecastCategory.COMMIT
    if probability >= BEST_CASE_FROM_PERCENT:
        return ForecastCategory.BEST_CASE
    return ForecastCategory.PIPELINE


def stage_categories() -> dict[int, str]:
    """Return stage id → forecast category for every stage of the current organization."""
    mapped = dict(StageForecastCategory.objects.values_list("stage_id", "category"))
    categories = {}
    for stage_id, kind, probability in Stage.objects.values_list("id", "kind", "probability"):
        if kind == StageKind.OPEN and stage_id in mapped:
            categories[stage_id] = mapped[stage_id]
        else:
            categories[stage_id] = category_default_for_stage(kind=kind, probability=probability)
    return categories


def stage_category_rows() -> list[dict]:
    """Return the settings page's rows: each stage with its category and whether the admin chose it."""
    mapped = dict(StageForecastCategory.objects.values_list("stage_id", "category"))
    rows = []
    for stage in Stage.objects.select_related("pipeline").order_by("pipeline__name", "order"):
        default = category_default_for_stage(kind=stage.kind, probability=stage.probability)
        is_open = stage.kind == StageKind.OPEN
        category = mapped.get(stage.pk, default) if is_open else default
        rows.append(
            {"stage": stage, "category": category, "default": default, "is_open": is_open, "is_mapped": stage.pk in mapped}
        )
    return rows


def forecast_settings_get(organization: Organization) -> ForecastSettings:
    """Return the organization's settings row, or unsaved defaults (quarterly) when it has none."""
    return ForecastSettings.objects.filter(organization=organization).first() or ForecastSettings(
        organization=organization
    )


def forecast_period_kind(organization: Organization) -> str:
    return forecast_settings_get(organization).period_kind


@transaction.atomic
def forecast_settings_update(
    *, organization: Organization, actor: User | None, period_kind: str, categories: dict[int, str]
) -> list[str]:
    """Set the forecast period kind and the categories of open stages; return what changed.

    `categories` maps stage id → category; a stage not named keeps its category.
    Choosing the default category removes the mapping, so the stage follows a later
    change of its probability. Every change is written to the audit log. Raises
    ValidationError for an unknown period kind, stage or category, or a won or lost stage.
    """
    if period_kind not in ForecastPeriodKind.values:
        kinds = format_list([str(label) for label in ForecastPeriodKind.labels], style="or", locale=current_locale())
        raise ValidationError(_("Unknown forecast period %(value)r; choose %(kinds)s.") % {"value": period_kind, "kinds": kinds})
    stages = {stage.pk: stage for stage in Stage.objects.filter(pk__in=list(categories))}
    for stage_id, category in categories.items():
        stage = stages.get(stage_id)
        if stage is None:
            raise ValidationError(_("No stage with id %(id)s in this organization; reload the page.") % {"id": stage_id})
        if stage.kind != StageKind.OPEN:
            raise ValidationError(
                _("Stage %(stage)s is a won or lost stage; its category is fixed.") % {"stage": stage.name}
            )
        if category not in OPEN_CATEGORIES:
            raise ValidationError(
                _("Invalid category %(value)r for stage %(stage)s; use pipeline, best case, commit or omitted.")
                % {"value": category, "stage": stage.name}
            )

    changed = []
    settings = forecast_settings_get(organization)
    before_kind = settings.period_kind
    if before_kind != period_kind:
        settings.period_kind = period_kind
        settings.save()
        audit_record(
            organization=organization,
            actor=actor,
            action=SETTINGS_CHANGED,
            object_type="forecast_settings",
            object_id=settings.pk,
            before={"period_kind": before_kind},
            after={"period_kind": period_kind},
        )
        changed.append("period_kind")

    mapped = {row.stage_id: row for row in StageForecastCategory.objects.filter(stage_id__in=list(categories))}
    for stage_id, category in categories.items():
        stage = stages[stage_id]
        default = category_default_for_stage(kind=stage.kind, probability=stage.probability)
        row = mapped.get(stage_id)
        before = row.category if row is not None else default
        if before == category:
            # The stage already falls in this category.
            continue
        if category == default:
            row.delete()
        elif row is None:
            StageForecastCategory.objects.create(organization=organization, stage=stage, category=category)
        else:
            row.category = category
            row.save(update_fields=["category"])
        audit_record(
            organization=organization,
            actor=actor,
            action=STAGE_CATEGORY_CHANGED,
            object_type="stage",
            object_id=stage.pk,
            before={"forecast_category": before},
            after={"forecast_category": category},
        )
        changed.append(f"stage:{stage.pk}")
    logger.info("Forecast settings updated organization_id=%s changes=%s", organization.pk, len(changed))
    return changed


def deal_category(*, deal: Deal, stage_category: str, override: str | None) -> str:
    """Return a deal's category: fixed for won and lost deals, else its override or its stage's category."""
    if deal.status == DealStatus.WON:
        return ForecastCategory.CLOSED
    if deal.status == DealStatus.LOST:
        return ForecastCategory.OMITTED
    return override or stage_category


@transaction.atomic
def deal_category_set(*, organization: Organization, deal: Deal, actor: Membership, category: str) -> bool:
    """Override an open deal's forecast category, or clear the override with `category=""`; return whether it changed.

    The caller has checked that `actor` may see the deal (its owner, or a manager or
    admin above the owner). The change is audited with the category before and after.
    Raises ValidationError for a closed deal or an unknown category.
    """
    if deal.status != DealStatus.OPEN:
        raise ValidationError(_("Deal %(deal)s is closed; only open deals can change category.") % {"deal": deal})
    if category and category not in OPEN_CATEGORIES:
        raise ValidationError(
            _("Invalid category %(value)r; use pipeline, best case, commit or omitted.") % {"value": category}
        )

    row = DealForecastCategory.objects.select_for_update().filter(deal=deal).first()
    before = row.category if row is not None else None
    after = category or None
    if before == after:
        # The deal already has this override (or none).
        return False
    if after is None:
        row.delete()
    elif row is None:
        DealForecastCategory.objects.create(organization=organization, deal=deal, category=after, set_by=actor)
    else:
        row.category = after
        row.set_by = actor
        row.save(update_fields=["category", "set_by", "set_at"])

    audit_record(
        organization=organization,
        actor=actor.user,
        action=DEAL_CATEGORY_CHANGED,
        object_type="deal",
        object_id=deal.pk,
        before={"forecast_category_override": before},
        after={"forecast_category_override": after},
    )
    logger.info("Deal forecast category changed organization_id=%s deal_id=%s", organization.pk, deal.pk)
    return True
