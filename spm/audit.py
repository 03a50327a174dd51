"""Writes to the append-only audit log, the signal receivers that feed it, and its privileged deletes.

What is recorded, and by whom:
- logins and failed logins: receivers of Django's `user_logged_in` and `user_login_failed`
  (allauth authenticates through Django, so both fire for its login form too). A login
  is recorded in every organization the user belongs to, because each admin reviews
  their own organization's log. A failed login for an unknown e-mail is only logged.
- changes of roles, quotas and stages made in a web request: `post_save`/`post_delete`
  receivers on the models of `_audited_models()` record the changed fields before and
  after (a new object as a creation), once the transaction commits. They skip an object for which the request already
  wrote an audit row with the same object type and id, so a service that records its own
  row is not doubled. They see `save()` and `delete()` but not `QuerySet.update()`,
  `bulk_create()` or `bulk_update()`, and nothing outside a request: services, tasks
  and commands that write those call `audit_record` themselves.
- imports (`pipelines.services.crm_import`) and exports of personal data
  (`spm.privacy`, the audit export) call `audit_record` directly.

The actor of a model change is the user of the current request, set by
`spm.middleware.AuditActorMiddleware`; outside a request (tasks, commands) it is None.
"""

import contextvars
import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import connection, models, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from django_scopes import scopes_disabled

from spm.models import AuditLog, Membership, Organization, User

logger = logging.getLogger(__name__)

# The user whose request is running; the middleware sets and resets it.
current_actor: contextvars.ContextVar[User | None] = contextvars.ContextVar("spm_audit_actor", default=None)
# When the current request started; model-change receivers record only while it is set.
request_started_at: contextvars.ContextVar = contextvars.ContextVar("spm_audit_request_started_at", default=None)

LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
MEMBERSHIP_CREATED = "membership.created"
ROLE_CHANGED = "membership.role_changed"
MEMBERSHIP_CHANGED = "membership.changed"
QUOTA_CREATED = "quota.created"
QUOTA_CHANGED = "quota.changed"
QUOTA_DELETED = "quota.deleted"
STAGE_CREATED = "stage.created"
STAGE_CHANGED = "stage.changed"
STAGE_DELETED = "stage.deleted"
IMPORT_FINISHED = "import.finished"
PERSONAL_DATA_EXPORTED = "privacy.personal_data_exported"
PERSON_PSEUDONYMIZED = "privacy.person_pseudonymized"
AUDIT_EXPORTED = "audit.exported"
ACTIVITY_RETENTION_APPLIED = "retention.activities_deleted"
AUDIT_RETENTION_APPLIED = "retention.audit_deleted"

# Reasons that the product gives for its own changes (uploads, templates). They are stored in
# `after["reason"]` as {"code": ..., parameters} and shown in the reader's language by
# REASON_LABELS, while a reason a person typed is stored and shown as typed.
REASON_PEOPLE_UPLOAD = "people_upload"
REASON_QUOTA_UPLOAD = "quota_upload"
REASON_QUOTA_TEMPLATE = "quota_template"
REASON_LABELS = {
    REASON_PEOPLE_UPLOAD: _("People upload"),
    REASON_QUOTA_UPLOAD: _("Upload %(file)s"),
    REASON_QUOTA_TEMPLATE: _("Template %(name)s"),
}


def audit_reason(code: str, **params: str) -> dict[str, str]:
    """Return a language-neutral reason for `after["reason"]`: a code of REASON_LABELS and its parameters."""
    return {"code": code, **params}


# Labels of the actions on the audit page. Every action that code writes needs one;
# tests/test_audit_display.py checks that. Actions without a label show their raw name.
ACTION_LABELS = {
    LOGIN: _("Login"),
    LOGIN_FAILED: _("Failed login"),
    MEMBERSHIP_CREATED: _("Member added"),
    ROLE_CHANGED: _("Role changed"),
    MEMBERSHIP_CHANGED: _("Membership changed"),
    QUOTA_CREATED: _("Quota created"),
    QUOTA_CHANGED: _("Quota changed"),
    QUOTA_DELETED: _("Quota deleted"),
    STAGE_CREATED: _("Stage created"),
    STAGE_CHANGED: _("Stage changed"),
    STAGE_DELETED: _("Stage deleted"),
    # Names that older versions of the demo setup wrote.
    "membership.create": _("Member added"),
    "membership.role_change": _("Role changed"),
    "deal.stage_moved": _("Deal moved to another stage"),
    "exchange_rates.imported": _("Exchange rates imported"),
    IMPORT_FINISHED: _("Import finished"),
    PERSONAL_DATA_EXPORTED: _("Personal data exported"),
    PERSON_PSEUDONYMIZED: _("Person pseudonymized"),
    AUDIT_EXPORTED: _("Audit log exported"),
    ACTIVITY_RETENTION_APPLIED: _("Old activities deleted"),
    AUDIT_RETENTION_APPLIED: _("Old audit log entries deleted"),
    "organization.security_settings_changed": _("Security and retention settings changed"),
    "organization.settings_changed": _("Organization settings changed"),
    "team.created": _("Team created"),
    "team.changed": _("Team changed"),
    "territory.created": _("Territory created"),
    "territory.changed": _("Territory changed"),
    "assignment.changed": _("Team or territory assignment changed"),
    "leave.added": _("Leave added"),
    "leave.deleted": _("Leave deleted"),
    "ramp_schedule.created": _("Ramp schedule created"),
    "stage.stall_threshold_changed": _("Stall threshold changed"),
    "import.uploaded": _("Import uploaded"),
    "import.started": _("Import started"),
    "import.failed": _("Import failed"),
    "contest.deleted": _("Contest deleted"),
    "forecast.settings_changed": _("Forecast settings changed"),
    "forecast.stage_category_changed": _("Forecast category of a stage changed"),
    "forecast.deal_category_changed": _("Forecast category of a deal changed"),
    "coaching.one_on_one_created": _("1:1 scheduled"),
    "coaching.one_on_one_changed": _("1:1 changed"),
    "coaching.agenda_changed": _("1:1 agenda changed"),
    "coaching.note_added": _("Coaching note added"),
    "coaching.note_changed": _("Coaching note changed"),
    "coaching.note_deleted": _("Coaching note deleted"),
    "coaching.action_item_added": _("Action item added"),
    "coaching.action_item_changed": _("Action item changed"),
    "skills.competency_changed": _("Competency changed"),
    "skills.competency_deleted": _("Competency deleted"),
    "skills.rubric_default_loaded": _("Default skill rubric loaded"),
    "win_model.train_requested": _("Win probability model training requested"),
    "api_token.created": _("API token created"),
    "api_token.revoked": _("API token revoked"),
    "webhook.created": _("Webhook created"),
    "webhook.changed": _("Webhook changed"),
    "webhook.deleted": _("Webhook deleted"),
    "webhook.enabled": _("Webhook enabled"),
    "webhook.disabled": _("Webhook disabled"),
    "webhook.disabled_automatically": _("Webhook disabled after repeated failures"),
    "webhook.secret_rotated": _("Webhook secret rotated"),
    "capture.mailbox_saved": _("E-mail capture mailbox saved"),
    "capture.domain_added": _("Account domain added"),
    "capture.domain_deleted": _("Account domain deleted"),
    "crm_connection.created": _("CRM connection created"),
    "crm_connection.changed": _("CRM connection changed"),
    "crm_connection.deleted": _("CRM connection deleted"),
}


def audit_record(
    *,
    organization: Organization | int,
    action: str,
    actor: User | None = None,
    object_type: str = "",
    object_id: Any = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLog:
    """Append one audit row; `before` and `after` must be JSON-serialisable.

    `actor=None` falls back to the user of the current request, if any.
    """
    if actor is None:
        actor = current_actor.get()
    organization_id = organization if isinstance(organization, int) else organization.pk
    # Audit rows are written from signal receivers that may run outside any scope
    # (logins); the row names its organization explicitly, so no scope is needed.
    with scopes_disabled():
        return AuditLog.objects.create(
            organization_id=organization_id,
            actor=actor if actor is not None and actor.pk else None,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
        )


@contextmanager
def audit_privileged() -> Iterator[None]:
    """Open a transaction in which the PostgreSQL trigger admits UPDATE and DELETE on audit rows.

    Only retention deletes and deleting a whole organization use it. On SQLite there is
    no trigger and this is a plain transaction.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL spm.audit_privileged = 'on'")
        yield


def audit_retention_delete(*, organization: Organization, before) -> int:
    """Delete the organization's audit rows created before the datetime `before`; return the count.

    The only delete of audit rows besides removing a whole organization. It bypasses the
    model API, which rejects deletes, with one set-based DELETE in the privileged session.
    """
    with audit_privileged(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {AuditLog._meta.db_table} WHERE organization_id = %s AND created_at < %s",
            [organization.pk, before],
        )
        deleted = cursor.rowcount
    logger.info("Audit rows deleted by retention organization_id=%s rows=%s", organization.pk, deleted)
    return deleted


# --- logins ----------------------------------------------------------------------------------


def _organization_ids_of(user: User) -> list[int]:
    with scopes_disabled():
        return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))


@receiver(user_logged_in, dispatch_uid="spm_audit_login")
def _audit_login(sender, request, user, **kwargs) -> None:
    for organization_id in _organization_ids_of(user):
        audit_record(organization=organization_id, actor=user, action=LOGIN, object_type="user", object_id=user.pk)


@receiver(user_login_failed, dispatch_uid="spm_audit_login_failed")
def _audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django masks the password in `credentials`; only the e-mail is used.
    email = str(credentials.get("email") or credentials.get("username") or "").strip().lower()
    user = User.objects.filter(email=email).first() if email else None
    if user is None:
        logger.info("Failed login for an unknown e-mail address")
        return
    for organization_id in _organization_ids_of(user):
        audit_record(organization=organization_id, actor=None, action=LOGIN_FAILED, object_type="user", object_id=user.pk)


# --- model changes ---------------------------------------------------------------------------


def _audited_models() -> dict[type[models.Model], dict]:
    """Return model → (fields compared, actions on create, change and delete, object type)."""
    from goals.models import Quota
    from pipelines.models import Stage

    return {
        Membership: {
            "fields": ("role", "team_id", "territory_id", "manager_id", "active_from", "active_to"),
            "created": MEMBERSHIP_CREATED,
            "changed": MEMBERSHIP_CHANGED,
            "deleted": MEMBERSHIP_CHANGED,
            "object_type": "membership",
        },
        Quota: {
            "fields": None,
            "created": QUOTA_CREATED,
            "changed": QUOTA_CHANGED,
            "deleted": QUOTA_DELETED,
            "object_type": "quota",
        },
        Stage: {
            "fields": None,
            "created": STAGE_CREATED,
            "changed": STAGE_CHANGED,
            "deleted": STAGE_DELETED,
            "object_type": "stage",
        },
    }


def _field_values(instance: models.Model, field_names) -> dict:
    if field_names is None:
        field_names = [field.attname for field in instance._meta.concrete_fields if field.attname != "id"]
    values = {}
    for name in field_names:
        value = getattr(instance, name)
        values[name] = value if isinstance(value, (int, str, bool, type(None))) else str(value)
    return values


def _on_pre_save(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    config = _audited_models()[sender]
    with scopes_disabled():
        previous = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_before = _field_values(previous, config["fields"]) if previous is not None else None


def _on_post_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw or request_started_at.get() is None:
        return
    config = _audited_models()[sender]
    before = getattr(instance, "_audit_before", None)
    after = _field_values(instance, config["fields"])
    if not created and before == after:
        return
    changed_before = None if before is None else {key: value for key, value in before.items() if after.get(key) != value}
    changed_after = after if before is None else {key: value for key, value in after.items() if before.get(key) != value}
    if created:
        action = config["created"]
    elif sender is Membership and before and before.get("role") != after.get("role"):
        action = ROLE_CHANGED
    else:
        action = config["changed"]
    _record_after_commit(
        organization_id=instance.organization_id,
        action=action,
        object_type=config["object_type"],
        object_id=instance.pk,
        before=changed_before,
        after=changed_after,
    )


def _on_post_delete(sender, instance, **kwargs) -> None:
    if request_started_at.get() is None:
        return
    config = _audited_models()[sender]
    _record_after_commit(
        organization_id=instance.organization_id,
        action=config["deleted"],
        object_type=config["object_type"],
        object_id=instance.pk,
        before=_field_values(instance, config["fields"]),
        after=None,
    )


def _record_after_commit(*, organization_id: int, action: str, object_type: str, object_id, before, after) -> None:
    """Write a model-change row after commit, unless this request already audited the object."""
    actor = current_actor.get()
    started_at = request_started_at.get()

    def record() -> None:
        with scopes_disabled():
            if not Organization.objects.filter(pk=organization_id).exists():
                # The whole organization was deleted, and its audit rows with it.
                return
            already_recorded = AuditLog.objects.filter(
                organization_id=organization_id,
                object_type=object_type,
                object_id=str(object_id),
                created_at__gte=started_at,
            ).exists()
        if already_recorded:
            return
        audit_record(
            organization=organization_id,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )

    transaction.on_commit(record)


def audit_receivers_connect() -> None:
    """Connect the model-change receivers; called once from `SpmConfig.ready()`."""
    for model in _audited_models():
        uid = f"spm_audit_{model._meta.label_lower}"
        pre_save.connect(_on_pre_save, sender=model, dispatch_uid=f"{uid}_pre_save")
        post_save.connect(_on_post_save, sender=model, dispatch_uid=f"{uid}_post_save")
        post_delete.connect(_on_post_delete, sender=model, dispatch_uid=f"{uid}_post_delete")


# --- reads for the audit page ----------------------------------------------------------------


def audit_log_filtered(
    *,
    action: str = "",
    actor_id: int | None = None,
    created_from: dt.date | None = None,
    created_to: dt.date | None = None,
    object_type: str = "",
    object_id: str = "",
    time_zone: dt.tzinfo | None = None,
):
    """Return the current organization's audit rows matching every given filter, newest first.

    `created_from` and `created_to` are local dates in `time_zone` (the organization's),
    and both days are included. Empty filters match everything. Runs inside the scope.
    """
    rows = AuditLog.objects.select_related("actor").order_by("-created_at", "-pk")
    if action:
        rows = rows.filter(action=action)
    if actor_id is not None:
        rows = rows.filter(actor_id=actor_id)
    if created_from is not None:
        rows = rows.filter(created_at__gte=_local_midnight(created_from, time_zone))
    if created_to is not None:
        rows = rows.filter(created_at__lt=_local_midnight(created_to + dt.timedelta(days=1), time_zone))
    if object_type:
        rows = rows.filter(object_type=object_type)
    if object_id:
        rows = rows.filter(object_id=object_id)
    return rows


def _local_midnight(day: dt.date, time_zone: dt.tzinfo | None) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=time_zone or dt.timezone.utc)


def audit_actions_present() -> list[str]:
    """Return the distinct actions of the current organization's audit rows, sorted."""
    return sorted(AuditLog.objects.values_list("action", flat=True).distinct())
