"""The write behind the stage settings page: stall thresholds of stages, audit-logged."""

import logging

from django.db import transaction

from pipelines.models import Stage
from spm.models import AuditLog, Membership

logger = logging.getLogger(__name__)


def stage_thresholds_update(*, membership: Membership, thresholds: dict[int, int | None]) -> int:
    """Set `stalled_after_days` of the stages in `thresholds` (stage id → days or None); return how many changed.

    Runs in the current organization's scope, so ids of other organizations
    match nothing. Writes one `stage.stall_threshold_changed` audit entry with
    before and after per changed stage, in one transaction.
    """
    changed = 0
    with transaction.atomic():
        stages = Stage.objects.select_for_update().filter(pk__in=thresholds)
        for stage in stages:
            new_value = thresholds[stage.pk]
            if stage.stalled_after_days == new_value:
                continue
            before = {"stalled_after_days": stage.stalled_after_days}
            stage.stalled_after_days = new_value
            stage.save(update_fields=["stalled_after_days"])
            AuditLog.objects.create(
                organization_id=stage.organization_id,
                actor=membership.user,
                action="stage.stall_threshold_changed",
                object_type="stage",
                object_id=str(stage.pk),
                before=before,
                after={"stalled_after_days": new_value},
            )
            changed += 1
    logger.info(
        "Stage stall thresholds updated organization_id=%s membership_id=%s stages_changed=%s",
        membership.organization_id,
        membership.pk,
        changed,
    )
    return changed
