"""CRM connections (HubSpot, Pipedrive) with their sync cursor, and the history of sync runs."""

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Organization


class CrmProvider(models.TextChoices):
    HUBSPOT = "hubspot", _("HubSpot")
    PIPEDRIVE = "pipedrive", _("Pipedrive")


# Production API hosts. A connection may name another base URL (a proxy, or a test server).
DEFAULT_BASE_URLS = {
    CrmProvider.HUBSPOT: "https://api.hubapi.com",
    CrmProvider.PIPEDRIVE: "https://api.pipedrive.com",
}


# Names of the cursor's streams on the integrations page.
CURSOR_LABELS = {
    "deals": _("Deals"),
    "activities": _("Activities"),
    "activities.calls": _("Calls"),
    "activities.meetings": _("Meetings"),
    "activities.emails": _("E-mails"),
    "activities.tasks": _("Tasks"),
    "activities.notes": _("Notes"),
}


class SyncStatus(models.TextChoices):
    NEVER = "never", _("Not run yet")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class CrmConnection(models.Model):
    """One organization's link to its HubSpot portal or Pipedrive company.

    The access token is stored as entered, in plain text in this table, because every
    scheduled run sends it to the CRM; pages show it masked (`token_masked`). `cursor`
    stores per stream the CRM's modification time up to which changes were imported.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    provider = models.CharField(_("CRM"), max_length=16, choices=CrmProvider.choices)
    base_url = models.URLField(
        _("API address"), max_length=300, help_text=_("The CRM's API host; leave the default unless you use a proxy.")
    )
    access_token = models.CharField(_("access token"), max_length=500)
    pipeline_ids = models.JSONField(_("synced pipelines"), default=list, blank=True)
    # The CRM's pipelines as last fetched: [{"id": ..., "label": ...}], for the pipeline picker.
    available_pipelines = models.JSONField(_("pipelines in the CRM"), default=list, blank=True)
    is_enabled = models.BooleanField(
        _("scheduled sync on"), default=True, help_text=_("Runs every 15 minutes while ticked.")
    )
    cursor = models.JSONField(_("cursor"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=SyncStatus.choices, default=SyncStatus.NEVER)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last successful run"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("CRM connection")
        verbose_name_plural = _("CRM connections")
        ordering = ["provider"]
        constraints = [
            # Deals are keyed by (organization, source, external id), so a second portal of the
            # same CRM would overwrite the first one's deals.
            models.UniqueConstraint(fields=["organization", "provider"], name="crm_sync_connection_unique_provider"),
        ]

    def __str__(self):
        return self.get_provider_display()

    @property
    def token_masked(self) -> str:
        """Return the token as bullets ending in its last four characters; short tokens show no characters."""
        if len(self.access_token) <= 8:
            return "•" * 8
        return "•" * 8 + self.access_token[-4:]

    @property
    def is_backfilled(self) -> bool:
        return bool(self.cursor.get("deals"))

    @property
    def is_busy(self) -> bool:
        return self.status in (SyncStatus.QUEUED, SyncStatus.RUNNING)

    @property
    def cursor_moments(self) -> list[tuple[str, dt.datetime]]:
        """Return (stream name, changes imported up to) for each stream of the cursor, deals first."""
        return cursor_moments(self.cursor)

    @property
    def pipeline_labels(self) -> list[str]:
        labels = {str(entry["id"]): entry["label"] for entry in self.available_pipelines}
        return [labels.get(str(pipeline_id), str(pipeline_id)) for pipeline_id in self.pipeline_ids]


def cursor_moments(cursor: dict) -> list[tuple[str, dt.datetime]]:
    order = list(CURSOR_LABELS)
    keys = sorted(cursor, key=lambda key: (order.index(key) if key in order else len(order), key))
    return [(str(CURSOR_LABELS.get(key, key)), dt.datetime.fromisoformat(cursor[key])) for key in keys if cursor[key]]


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Schedule")
    MANUAL = "manual", _("Sync now")


class CrmSyncRun(models.Model):
    """One run of a connection's sync: what it fetched, what the import core did with it, and errors.

    `counts` maps an entity (deals, stage_changes, activities, people) to created, updated,
    unchanged, rejected and deleted. `errors` lists rejected records as
    {"entity", "external_id", "field", "reason"}, the reason as `Message.as_json()` (runs stored
    before that hold {"entity", "external_id", "message"} with translated text); read them
    through `rejected_records`. `warnings` lists, in the same form, values of written records
    that the import did not apply (an existing account's name); read them through
    `warning_records`. `message` is the error that stopped the run.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    connection = models.ForeignKey(
        CrmConnection, on_delete=models.CASCADE, related_name="runs", verbose_name=_("connection")
    )
    trigger = models.CharField(_("started by"), max_length=16, choices=SyncTrigger.choices)
    status = models.CharField(_("status"), max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    is_backfill = models.BooleanField(_("first run (full history)"), default=False)
    requested_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("requested by")
    )
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    cursor_before = models.JSONField(_("cursor before"), default=dict, blank=True)
    cursor_after = models.JSONField(_("cursor after"), default=dict, blank=True)
    request_count = models.PositiveIntegerField(_("API requests"), default=0)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    errors = models.JSONField(_("rejected records"), default=list, blank=True)
    warnings = models.JSONField(_("values not applied"), default=list, blank=True)
    message = models.TextField(_("error"), blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The integrations page lists a connection's runs newest first.
            models.Index(fields=["organization", "connection", "-created_at"], name="crm_sync_run_recent"),
        ]

    def __str__(self):
        return f"{self.connection} {self.created_at:%Y-%m-%d %H:%M}" if self.created_at else str(self.connection)

    @property
    def cursor_after_moments(self) -> list[tuple[str, dt.datetime]]:
        return cursor_moments(self.cursor_after)

    @property
    def cursor_before_moments(self) -> list[tuple[str, dt.datetime]]:
        return cursor_moments(self.cursor_before)

    @property
    def entity_rows(self) -> list[tuple[str, dict[str, int]]]:
        """Return (entity name, counts) for the entities a run reports, in page order."""
        labels = {
            "deals": _("Deals"),
            "stage_changes": _("Stage changes"),
            "activities": _("Activities"),
            "people": _("People"),
            "pipelines": _("Pipelines"),
        }
        return [(str(label), self.counts[key]) for key, label in labels.items() if key in self.counts]

    @property
    def rejected_records(self) -> list[dict[str, str]]:
        """Return the rejected records as {"entity", "external_id", "message"}, the message in the active language."""
        return _records_shown(self.errors)

    @property
    def warning_records(self) -> list[dict[str, str]]:
        """Return the values not applied as {"entity", "external_id", "message"}, the message in the active language."""
        return _records_shown(self.warnings)

    @property
    def stage_changes_created(self) -> int:
        return self.count("stage_changes", "created")

    @property
    def activities_written(self) -> int:
        return self.count("activities", "created") + self.count("activities", "updated")

    def count(self, entity: str, kind: str) -> int:
        return int(self.counts.get(entity, {}).get(kind, 0))

    @property
    def deal_counts(self) -> dict[str, int]:
        deals = self.counts.get("deals", {})
        return {kind: int(deals.get(kind, 0)) for kind in ("created", "updated", "unchanged", "rejected", "deleted")}

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def _records_shown(entries: list[dict]) -> list[dict[str, str]]:
    from pipelines.importers.base import Message

    records = []
    for error in entries:
        if "reason" in error:
            reason = str(Message.from_json(error["reason"]))
            message = f"{error['field']}: {reason}" if error.get("field") else reason
        else:
            message = error.get("message", "")
        records.append({"entity": error.get("entity", ""), "external_id": error.get("external_id", ""), "message": message})
    return records
