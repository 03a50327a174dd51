"""Personal data of one person: export everything stored about them, pseudonymize them, apply retention.

The export finds the person's rows without a hand-written list of tables: every model of the
project apps with a foreign key to `Membership` or `User` contributes the rows that point at
this person, so a model added later (coaching notes, scorecard views) is exported without a
change here. Derived copies listed in `EXPORT_SKIPPED_MODELS` are left out.
"""

import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django_scopes import scopes_disabled

from spm import audit
from spm.models import AuditLog, Membership, Organization, User
from spm.tenancy import last_admin_check

logger = logging.getLogger(__name__)

PROJECT_APPS = (
    "spm",
    "pipelines",
    "goals",
    "coaching",
    "coaching_skills",
    "dashboards",
    "api",
    "webhooks",
    "capture",
    "crm_sync",
)
# Models whose rows about a person are copies of rows exported anyway.
EXPORT_SKIPPED_MODELS = {
    "dashboards.pipelinesnapshot",  # a daily copy of each open deal, which is exported under pipelines.deal
    "spm.auditlog",  # exported separately: rows by the person and rows about them
    "spm.membership",  # exported as the `membership` section (its `manager` FK would list their reports)
}
# Rows that name the person only through a parent row: a 1:1's notes and agenda, an
# assessment's ratings, a development plan's goals and training items. Every model with a
# foreign key to one of these parents contributes the children of the exported parents.
EXPORT_PARENT_MODELS = {"coaching.oneonone", "coaching_skills.assessment", "coaching_skills.developmentplan"}
# Credentials are never exported, even hashed: the export is a file that leaves the product.
EXPORT_SECRET_FIELDS = {"token_hash", "access_token", "password", "secret"}
# Fields that carry a credential inside another value, by model label: a private calendar
# address contains its token in the path or the query, so only its scheme and host are exported.
EXPORT_URL_HOST_ONLY_FIELDS = {"capture.calendarfeed": {"url"}}
PSEUDONYM_DOMAIN = "erased.invalid"


def _plain(value: Any) -> Any:
    """Return `value` as a JSON-serialisable value: datetimes and dates in ISO 8601, Decimals as strings."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID, dt.timedelta)):
        return str(value)
    return value


def _row(instance: models.Model) -> dict[str, Any]:
    host_only = EXPORT_URL_HOST_ONLY_FIELDS.get(instance._meta.label_lower, set())
    row = {}
    for field in instance._meta.concrete_fields:
        if field.attname in EXPORT_SECRET_FIELDS:
            continue
        value = getattr(instance, field.attname)
        row[field.attname] = _url_host(value) if field.attname in host_only else _plain(value)
    return row


def _url_host(url: str) -> str:
    """Return the scheme and host of `url` followed by "/…", leaving out the path, query and any user info."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.scheme else "…"


def _children_export(records: dict[str, list[dict[str, Any]]]) -> None:
    """Add to `records` the child rows of exported rows of EXPORT_PARENT_MODELS (notes, ratings, goals)."""
    parent_ids = {label: [row["id"] for row in records.get(label, [])] for label in EXPORT_PARENT_MODELS}
    for model in apps.get_models():
        label = model._meta.label_lower
        if model._meta.app_label not in PROJECT_APPS or label in EXPORT_SKIPPED_MODELS:
            continue
        condition = Q()
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey) and parent_ids.get(field.related_model._meta.label_lower):
                condition |= Q(**{f"{field.name}__in": parent_ids[field.related_model._meta.label_lower]})
        if not condition:
            continue
        known = {row["id"] for row in records.get(label, [])}
        manager = getattr(model, "all_objects", model._default_manager)
        rows = [_row(instance) for instance in manager.filter(condition).order_by("pk")]
        rows = [row for row in rows if row["id"] not in known]
        if rows:
            records.setdefault(label, []).extend(rows)


def _person_foreign_keys(model: type[models.Model]) -> list[models.ForeignKey]:
    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model in (Membership, User)
    ]


def person_data_export(*, membership: Membership, actor: User | None) -> dict[str, Any]:
    """Collect every row the product stores about the person of `membership` in its organization.

    Returns {"person": …, "membership": …, "records": {model label: [rows]}, "audit": [rows]}.
    Only rows of `membership.organization` are included, and the caller runs inside its
    scope. Writes a `privacy.personal_data_exported` audit row naming the actor.
    """
    user = membership.user
    organization = membership.organization
    export: dict[str, Any] = {
        "exported_at": timezone.now().isoformat(),
        "organization": organization.slug,
        "person": {
            "id": user.pk,
            "email": user.email,
            "name": user.name,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "language": user.language,
            "is_active": user.is_active,
            "date_joined": _plain(user.date_joined),
            "last_login": _plain(user.last_login),
        },
        "membership": _row(membership),
        "records": {},
    }

    for model in apps.get_models():
        label = model._meta.label_lower
        if model._meta.app_label not in PROJECT_APPS or label in EXPORT_SKIPPED_MODELS:
            continue
        foreign_keys = _person_foreign_keys(model)
        if not foreign_keys:
            continue
        condition = Q()
        for field in foreign_keys:
            condition |= Q(**{field.name: membership if field.related_model is Membership else user})
        # all_objects, where a model has it, also finds rows hidden from KPIs (deals deleted in the CRM).
        queryset = getattr(model, "all_objects", model._default_manager).filter(condition)
        if any(field.name == "organization" for field in model._meta.concrete_fields):
            queryset = queryset.filter(organization=organization)
        rows = [_row(instance) for instance in queryset.order_by("pk")]
        if rows:
            export["records"][label] = rows

    _children_export(export["records"])

    audit_rows = AuditLog.objects.filter(
        Q(actor=user)
        | Q(object_type="user", object_id=str(user.pk))
        | Q(object_type="membership", object_id=str(membership.pk)),
        organization=organization,
    ).order_by("created_at", "pk")
    export["audit"] = [_row(row) for row in audit_rows]

    audit.audit_record(
        organization=organization,
        actor=actor,
        action=audit.PERSONAL_DATA_EXPORTED,
        object_type="membership",
        object_id=membership.pk,
        after={"record_counts": {label: len(rows) for label, rows in export["records"].items()}},
    )
    logger.info(
        "Personal data exported organization_id=%s membership_id=%s actor_id=%s",
        organization.pk,
        membership.pk,
        getattr(actor, "pk", None),
    )
    return export


def person_data_rows(export: dict[str, Any]) -> list[list[Any]]:
    """Flatten an export into CSV rows (section, record id, field, value), header first."""
    rows: list[list[Any]] = [["section", "record_id", "field", "value"]]
    for field, value in export["person"].items():
        rows.append(["person", export["person"]["id"], field, value])
    for field, value in export["membership"].items():
        rows.append(["membership", export["membership"]["id"], field, value])
    for label, records in export["records"].items():
        for record in records:
            for field, value in record.items():
                rows.append([label, record["id"], field, value])
    for record in export["audit"]:
        for field, value in record.items():
            rows.append(["audit", record["id"], field, value])
    return rows


def person_pseudonymize(*, membership: Membership, actor: User | None) -> str:
    """Replace the person's identity by a pseudonym and disable their login; keep their numbers.

    The user's e-mail, names and password are replaced, the account is deactivated, and
    its verified addresses, authenticators and pending sessions are removed, and the API
    tokens the user created in the organization are revoked. The membership stays, with its deals, activities and quotas, so team and organization
    totals do not change; its external id and the rep-grain KPI snapshot names take the
    pseudonym, and a recompute is scheduled. Raises ValidationError when the user also
    belongs to another organization, whose admins would lose a member without being asked,
    or is the organization's only active admin. Returns the pseudonym.
    """
    from dashboards.models import Grain, KpiSnapshot
    from pipelines.services import kpi_recompute_schedule

    user = membership.user
    organization = membership.organization
    # Pinned to this user: it only counts their memberships elsewhere and reads no other tenant's data.
    with scopes_disabled():
        other_organizations = Membership.objects.filter(user=user).exclude(organization=organization).count()
    if other_organizations:
        raise ValidationError(
            ngettext(
                "This person also belongs to %(count)d other organization; its admins must remove "
                "the person there first.",
                "This person also belongs to %(count)d other organizations; their admins must remove "
                "the person there first.",
                other_organizations,
            )
            % {"count": other_organizations}
        )
    if user.email.endswith(f"@{PSEUDONYM_DOMAIN}"):
        # Already pseudonymized; a second run would only replace one pseudonym with another.
        return user.name

    token = uuid.uuid4().hex[:8]
    pseudonym = gettext("Former member %(token)s") % {"token": token}
    with transaction.atomic():
        last_admin_check(membership=membership)
        user.email = f"erased-{token}@{PSEUDONYM_DOMAIN}"
        user.name = pseudonym
        user.first_name = ""
        user.last_name = ""
        user.language = ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
        _delete_login_data(user)
        feeds_deleted = _delete_connection_data(membership)
        tokens_revoked = _revoke_api_tokens(user=user, organization=organization, actor=actor)

        membership.external_id = pseudonym
        if membership.active_to is None:
            membership.active_to = timezone.localdate(timezone=organization.tzinfo)
        membership.save(update_fields=["external_id", "active_to"])
        snapshots_renamed = KpiSnapshot.objects.filter(grain=Grain.REP, subject_id=membership.pk).update(
            subject_name=pseudonym
        )

        audit.audit_record(
            organization=organization,
            actor=actor,
            action=audit.PERSON_PSEUDONYMIZED,
            object_type="membership",
            object_id=membership.pk,
            after={
                "user_id": user.pk,
                "snapshots_renamed": snapshots_renamed,
                "calendar_feeds_deleted": feeds_deleted,
                "api_tokens_revoked": tokens_revoked,
            },
        )
        kpi_recompute_schedule(organization_id=organization.pk)

    logger.info(
        "Person pseudonymized organization_id=%s membership_id=%s user_id=%s actor_id=%s",
        organization.pk,
        membership.pk,
        user.pk,
        getattr(actor, "pk", None),
    )
    return pseudonym


def _delete_connection_data(membership: Membership) -> int:
    """Delete the person's calendar feeds, whose URLs often carry a private token; return the count.

    The meetings already captured from them stay, like the person's other activities.
    """
    from integrations.capture.models import CalendarFeed

    deleted, _per_model = CalendarFeed.objects.filter(member=membership).delete()
    return deleted


def _revoke_api_tokens(*, user: User, organization: Organization, actor: User | None) -> int:
    """Revoke the organization's API tokens that `user` created and that are still active; return the count.

    The API authenticates as a token's creator, so the tokens of a person whose
    identity is erased stop working too. The rows stay, revoked, for the audit log.
    """
    from integrations.api.models import ApiToken

    # The token's organization is pinned, so no other tenant's row is touched.
    with scopes_disabled():
        return ApiToken.objects.filter(organization=organization, created_by=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor
        )


def _delete_login_data(user: User) -> None:
    """Delete the allauth e-mail addresses, MFA authenticators and database sessions of `user`."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from django.contrib.sessions.models import Session

    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    # Sessions store the user id only inside their encoded data. The account is inactive,
    # so Django's ModelBackend refuses the session anyway; this removes the data as well.
    user_id = str(user.pk)
    stale = [session.pk for session in Session.objects.iterator() if session.get_decoded().get("_auth_user_id") == user_id]
    Session.objects.filter(pk__in=stale).delete()


def activity_retention_apply(*, organization: Organization, now: dt.datetime | None = None) -> int:
    """Delete the organization's activities older than `activity_retention_days`; return the count.

    An activity is older when `occurred_at` < now − the retention days. `None` days keeps
    everything and returns 0 without writing. One set-based DELETE; the audit row records
    the count and the cutoff.
    """
    from pipelines.models import Activity

    days = organization.activity_retention_days
    # No retention configured: activities are kept forever.
    if days is None:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    with transaction.atomic():
        deleted, _per_model = Activity.objects.filter(organization=organization, occurred_at__lt=cutoff).delete()
        audit.audit_record(
            organization=organization,
            action=audit.ACTIVITY_RETENTION_APPLIED,
            object_type="activity",
            after={"deleted": deleted, "cutoff": cutoff.isoformat(), "retention_days": days},
        )
    logger.info(
        "Activity retention applied organization_id=%s deleted=%s retention_days=%s", organization.pk, deleted, days
    )
    return deleted


def audit_retention_apply(*, organization: Organization, now: dt.datetime | None = None) -> int:
    """Delete the organization's audit rows older than `audit_retention_days`; return the count.

    `None` days keeps the whole log. The deletion itself is recorded as a new audit row,
    so the log always shows when and up to which time it was shortened.
    """
    days = organization.audit_retention_days
    if days is None:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    with transaction.atomic():
        deleted = audit.audit_retention_delete(organization=organization, before=cutoff)
        audit.audit_record(
            organization=organization,
            action=audit.AUDIT_RETENTION_APPLIED,
            object_type="audit",
            after={"deleted": deleted, "cutoff": cutoff.isoformat(), "retention_days": days},
        )
    return deleted
