"""Audit rows as the audit page shows them: labels, values in the reader's locale, names instead of ids.

Audit rows store their values as JSON: ids as numbers, dates, datetimes and decimals as ISO
text, choices as their stored value, and a product's own reason as a code with parameters
(see `spm.audit.audit_reason`). This module turns them into text for the page:

- field labels are the verbose names of the fields of the object's model, else the labels of
  FIELD_LABELS, else the field name;
- values are formatted by the type of that model field (choice label, yes/no, localized
  number, date and time in the organization's time zone), and ids become the names of the
  objects they point to;
- names are read with one query per model for the whole page, inside the organization's
  scope, so an id of another organization keeps showing as `#id`.
"""

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format, number_format
from django.utils.text import capfirst
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from spm import audit
from spm.models import AuditLog, Membership, Organization, User

# The model behind each object type that audit rows name; types without one show their label only.
OBJECT_MODELS = {
    "membership": "spm.Membership",
    "user": "spm.User",
    "organization": "spm.Organization",
    "quota": "goals.Quota",
    "team": "goals.Team",
    "territory": "goals.Territory",
    "ramp_schedule": "goals.RampSchedule",
    "forecast_settings": "goals.ForecastSettings",
    "contest": "goals.Contest",
    "stage": "pipelines.Stage",
    "deal": "pipelines.Deal",
    "account": "pipelines.Account",
    "activity": "pipelines.Activity",
    "import_run": "pipelines.ImportRun",
    "win_model": "pipelines.WinModel",
    "one_on_one": "coaching.OneOnOne",
    "agenda_item": "coaching.AgendaItem",
    "action_item": "coaching.ActionItem",
    "coaching_note": "coaching.CoachingNote",
    "competency": "coaching_skills.Competency",
    "api_token": "api.ApiToken",
    "webhook": "webhooks.WebhookSubscription",
    "mailbox": "capture.Mailbox",
    "crm_connection": "crm_sync.CrmConnection",
}
# Object types without a model row per entry.
OBJECT_TYPE_LABELS = {
    "import": _("Import"),
    "exchange_rate": _("Exchange rates"),
    "rubric": _("Skill rubric"),
    "audit": _("Audit log"),
}
# Object types whose rows store a name as their id: an import's source, an exchange-rate file's name.
# Rows of every other type store a number, or no id at all.
OBJECT_TYPES_WITH_NAME_IDS = ("import", "exchange_rate")
# Labels of values that are not fields of the object's model.
FIELD_LABELS = {
    "reason": _("Reason"),
    "agenda": _("Agenda"),
    "added": _("Added"),
    "period": _("Period"),
    "filters": _("Filters"),
    "format": _("Format"),
    "record_counts": _("Records"),
    "user_id": _("User"),
    "deleted": _("Deleted"),
    "cutoff": _("Cutoff"),
    "retention_days": _("Retention (days)"),
    "version": _("Version"),
    "domain": _("Domain"),
    "password_changed": _("Password changed"),
    "text_changed": _("Text changed"),
    "source": _("Source"),
    "counts": _("Counts"),
    "rejected_rows": _("Rejected rows"),
    "files": _("Files"),
    "dry_run": _("Dry run"),
    "message": _("Message"),
    "snapshots_renamed": _("KPI snapshots renamed"),
    "calendar_feeds_deleted": _("Calendar feeds deleted"),
    "api_tokens_revoked": _("API tokens revoked"),
    "created": _("Created"),
    "updated": _("Updated"),
    "unchanged": _("Unchanged"),
    "deals_recomputed": _("Deals recomputed"),
    "currency": _("Currency"),
    "duration_seconds": _("Duration (seconds)"),
    "valid_from": _("Valid from"),
    "leave_id": _("Leave"),
    "starts_on": _("First day"),
    "ends_on": _("Last day"),
    "order": _("Order"),
    "forecast_category": _("Forecast category"),
    "forecast_category_override": _("Forecast category override"),
}
# Keys that audit rows store but the page does not show: `path` is a folder on the server.
HIDDEN_KEYS = {"path"}
# Names of the entities whose counts an import stores in `counts`.
ENTITY_LABELS = {
    "pipelines": _("Pipelines"),
    "people": _("People"),
    "teams": _("Teams"),
    "territories": _("Territories"),
    "accounts": _("Accounts"),
    "products": _("Products"),
    "deals": _("Deals"),
    "stage_changes": _("Stage changes"),
    "activities": _("Activities"),
}
# Models whose __str__ is a name built from their own row. Other models show `#id`, because
# Django's default `Model object (id)` is no name and some __str__ methods read related rows.
NAMED_BY_STR = {
    "pipelines.Pipeline",
    "pipelines.Stage",
    "pipelines.Account",
    "pipelines.Deal",
    "pipelines.Product",
    "pipelines.WinModel",
    "goals.Team",
    "goals.Territory",
    "goals.RampSchedule",
    "goals.Contest",
    "goals.QuotaTemplate",
    "coaching.ActionItem",
    "coaching.AgendaItem",
    "coaching_skills.Competency",
    "coaching_skills.DevelopmentPlan",
    "coaching_skills.TrainingItem",
    "api.ApiToken",
    "webhooks.WebhookSubscription",
    "capture.Mailbox",
    "capture.AccountDomain",
    "crm_sync.CrmConnection",
}
# Visibility of a coaching note in the words of a reader other than its author. The choice labels
# of NoteVisibility speak as the author ("only I can read it"), which misleads an admin.
NOTE_VISIBILITY_LABELS = {
    "private": pgettext_lazy("coaching note", "private"),
    "shared": pgettext_lazy("coaching note", "shared"),
}
UNDEFINED = "–"
COUNT_NAMES = ("created", "updated", "unchanged", "deleted", "rejected")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_DECIMAL = re.compile(r"^-?\d+\.\d+$")


@dataclass(frozen=True)
class FieldChange:
    """One field of an audit row: its label, the values before and after as text, and whether it changed."""

    name: str
    before: str
    after: str
    changed: bool


@dataclass(frozen=True)
class AuditEntryDisplay:
    """The text of one audit row on the page.

    `kind` is "created" (no values before), "deleted" (no values after) or
    "changed"; the page shows only the one side of the first two.
    """

    entry: AuditLog
    action_label: str
    object_label: str
    kind: str
    changes: list[FieldChange]


def audit_entries_display(entries: Iterable[AuditLog], *, organization: Organization) -> list[AuditEntryDisplay]:
    """Describe `entries` for the audit page in the active language; runs inside the organization's scope.

    Reads the names of the objects the entries name with one query per model.
    """
    entries = list(entries)
    names = _NameIndex(organization)
    for entry in entries:
        model = _object_model(entry.object_type)
        if model is not None and entry.object_id.isdigit():
            names.want(model, int(entry.object_id))
        for values in (entry.before, entry.after):
            if isinstance(values, dict):
                for key, value in values.items():
                    field = _model_field(model, key)
                    if isinstance(field, models.ForeignKey) and _is_id(value):
                        names.want(field.related_model, int(value))
    names.load()

    formatter = _ValueFormatter(organization=organization, names=names)
    return [
        AuditEntryDisplay(
            entry=entry,
            action_label=str(audit.ACTION_LABELS.get(entry.action, entry.action)),
            object_label=_object_label(entry, names),
            kind=_kind(entry.before, entry.after),
            changes=audit_changes(
                entry.before,
                entry.after,
                model=_object_model(entry.object_type),
                formatter=formatter,
                object_type=entry.object_type,
            ),
        )
        for entry in entries
    ]


def audit_changes(
    before, after, *, model: type[models.Model] | None = None, formatter=None, object_type: str = ""
) -> list[FieldChange]:
    """List the fields of an audit row's before/after values, one line per field.

    A row that is not a pair of dicts (a plain value, a list) shows as one unnamed field.
    Without a `formatter` (tests, exports) values are formatted without names or time zone.
    `object_type` is the row's, for values whose meaning depends on it.
    """
    formatter = formatter or _ValueFormatter(organization=None, names=None)
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [FieldChange("", formatter.text(None, "", before), formatter.text(None, "", after), before != after)]
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    keys = list(before) + [key for key in after if key not in before]
    keys = [key for key in keys if key not in HIDDEN_KEYS]
    changes = []
    for key in keys:
        field = _model_field(model, key)
        changes.append(
            FieldChange(
                name=_field_label(field, key),
                before=formatter.text(field, key, before.get(key), object_type=object_type),
                after=formatter.text(field, key, after.get(key), object_type=object_type),
                changed=before.get(key) != after.get(key),
            )
        )
    return changes


def audit_json(value) -> str:
    """Return an audit row's before or after value as JSON for exports; empty for None."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


# --- labels ---------------------------------------------------------------------------------------


def _object_model(object_type: str) -> type[models.Model] | None:
    label = OBJECT_MODELS.get(object_type)
    return apps.get_model(label) if label else None


def _model_field(model: type[models.Model] | None, key: str) -> models.Field | None:
    """Return the field that `key` names on `model`, by name or by column attribute (`team_id`)."""
    if model is None:
        return None
    try:
        return model._meta.get_field(key)
    except FieldDoesNotExist:
        return None


# A competency's level descriptions, stored as `level_<number>_<language>` (coaching.skills.services).
_LEVEL_KEY = re.compile(r"level_([1-9])_(de|en)")
_LANGUAGE_NAMES = {"de": _("German"), "en": _("English")}


def _field_label(field: models.Field | None, key: str) -> str:
    if field is not None and getattr(field, "verbose_name", None):
        return capfirst(str(field.verbose_name))
    if key in FIELD_LABELS:
        return str(FIELD_LABELS[key])
    level = _LEVEL_KEY.fullmatch(key)
    if level is not None:
        return gettext("Level %(level)s (%(language)s)") % {
            "level": level.group(1),
            "language": _LANGUAGE_NAMES[level.group(2)],
        }
    return capfirst(key.replace("_", " "))


def _object_label(entry: AuditLog, names: "_NameIndex") -> str:
    model = _object_model(entry.object_type)
    if model is not None:
        type_label = capfirst(str(model._meta.verbose_name))
    else:
        type_label = str(OBJECT_TYPE_LABELS.get(entry.object_type, entry.object_type))
    if not entry.object_id:
        return type_label
    if model is None and not entry.object_id.isdigit():
        # Types without a model store a name as their id: a file name, or an import's source.
        if entry.object_type == "import":
            return f"{type_label} {_import_source_label(entry.object_id)}"
        return f"{type_label} {entry.object_id}"
    name = names.name(model, int(entry.object_id)) if model is not None and entry.object_id.isdigit() else None
    if name is None:
        return f"{type_label} #{entry.object_id}"
    return f"{type_label} {name}"


def _import_source_label(source: str) -> str:
    """Return the display name of an import source; a source that is no ImportSource value stays as stored."""
    from pipelines.models import ImportSource

    return str(dict(ImportSource.choices).get(source, source))


def _kind(before, after) -> str:
    if before is None and after is not None:
        return "created"
    if after is None and before is not None:
        return "deleted"
    return "changed"


def _is_id(value) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


# --- values ---------------------------------------------------------------------------------------


class _ValueFormatter:
    """Formats stored values in the active language; `organization` gives the time zone and fiscal calendar."""

    def __init__(self, *, organization: Organization | None, names: "_NameIndex | None"):
        self.organization = organization
        self.names = names

    def text(self, field: models.Field | None, key: str, value: Any, *, object_type: str = "") -> str:
        if value is None or value == "":
            return UNDEFINED
        if key == "reason":
            return self._reason(value)
        if key == "period" and isinstance(value, str):
            return self._period(value)
        if key == "counts" and isinstance(value, dict):
            return self._entity_counts(value)
        if key == "record_counts" and isinstance(value, dict):
            return self._record_counts(value)
        if key in ("forecast_category", "forecast_category_override") and isinstance(value, str):
            from goals.models import ForecastCategory

            return str(dict(ForecastCategory.choices).get(value, value))
        if object_type == "rubric" and key == "added" and isinstance(value, list):
            return self._default_competency_names(value)
        if field is not None:
            formatted = self._field_value(field, value)
            if formatted is not None:
                return formatted
        elif key == "source" and isinstance(value, str):
            return _import_source_label(value)
        return self._plain(value)

    def _field_value(self, field: models.Field, value: Any) -> str | None:
        """Format `value` by the type of `field`; None when the value does not fit the field."""
        if isinstance(field, models.ForeignKey):
            if not _is_id(value):
                return None
            name = self.names.name(field.related_model, int(value)) if self.names is not None else None
            return name if name is not None else f"#{value}"
        if field.choices:
            if field.model._meta.label == "coaching.CoachingNote" and field.name == "visibility":
                return capfirst(str(NOTE_VISIBILITY_LABELS.get(value, value)))
            return str(dict(field.flatchoices).get(value, value))
        if isinstance(field, models.BooleanField) and isinstance(value, bool):
            return _yes_no(value)
        if isinstance(field, models.DecimalField):
            try:
                return number_format(Decimal(str(value)), decimal_pos=field.decimal_places, force_grouping=True)
            except InvalidOperation:
                return None
        if isinstance(field, models.DateTimeField) and isinstance(value, str):
            return self._datetime(value)
        if isinstance(field, models.DateField) and isinstance(value, str):
            return self._date(value)
        return None

    def _plain(self, value: Any) -> str:
        """Format a value without a model field by its JSON type and shape."""
        if isinstance(value, bool):
            return _yes_no(value)
        if isinstance(value, int):
            return number_format(value, force_grouping=True)
        if isinstance(value, float):
            return number_format(value, force_grouping=True)
        if isinstance(value, list):
            return ", ".join(self._plain(item) for item in value) or UNDEFINED
        if isinstance(value, dict):
            return self._mapping(value)
        text = str(value)
        if _ISO_DATE.match(text):
            return self._date(text) or text
        if _ISO_DATETIME.match(text):
            return self._datetime(text) or text
        if _DECIMAL.match(text):
            return number_format(Decimal(text), decimal_pos=len(text.split(".")[1]), force_grouping=True)
        return text

    def _mapping(self, value: dict) -> str:
        """Format a dict: an agenda label from a signal in the active language, else `key: value` pairs."""
        if "metric" in value and "label_params" in value:
            from coaching.signal_labels import metric_label

            return metric_label(value["metric"], value["label_params"])
        return "; ".join(f"{_field_label(None, str(key))}: {self._plain(item)}" for key, item in value.items()) or UNDEFINED

    def _entity_counts(self, counts: dict) -> str:
        """Format an import's counts per entity, e.g. `People: 3 created, 1 updated, 0 unchanged, 0 rejected`."""
        parts = []
        for entity, numbers in counts.items():
            label = str(ENTITY_LABELS.get(entity, entity))
            if not isinstance(numbers, dict):
                parts.append(f"{label}: {self._plain(numbers)}")
                continue
            values = {name: number_format(numbers.get(name) or 0, force_grouping=True) for name in COUNT_NAMES}
            text = gettext("%(created)s created, %(updated)s updated, %(unchanged)s unchanged, %(rejected)s rejected") % values
            if numbers.get("deleted"):
                text += ", " + gettext("%(deleted)s deleted") % {"deleted": values["deleted"]}
            parts.append(f"{label}: {text}")
        return "; ".join(parts) or UNDEFINED

    def _record_counts(self, counts: dict) -> str:
        """Format a personal-data export's record counts per model label, largest first, e.g. `Deals: 448; Quotas: 4`.

        The order is set here because PostgreSQL's jsonb does not keep the stored order of keys.
        """
        named = []
        for label, count in counts.items():
            try:
                name = capfirst(str(apps.get_model(label)._meta.verbose_name_plural))
            except (LookupError, ValueError):
                # A model removed since the export keeps its stored label.
                name = label
            named.append((name, count))
        named.sort(key=lambda item: (-item[1] if isinstance(item[1], int) else 0, item[0]))
        return "; ".join(f"{name}: {self._plain(count)}" for name, count in named) or UNDEFINED

    def _default_competency_names(self, names: list) -> str:
        """Return the default rubric's competencies, stored by English name, in the active language."""
        from coaching.skills.defaults import DEFAULT_RUBRIC
        from coaching.skills.models import _in_language

        german_by_english = {name_en: name_de for name_de, name_en, *_texts in DEFAULT_RUBRIC}
        # NOTE: a name that DEFAULT_RUBRIC no longer contains shows as stored, in English.
        return ", ".join(_in_language(german_by_english.get(name, name), name) for name in names) or UNDEFINED

    def _date(self, text: str) -> str | None:
        try:
            return date_format(dt.date.fromisoformat(text), "SHORT_DATE_FORMAT")
        except ValueError:
            return None

    def _datetime(self, text: str) -> str | None:
        moment = parse_datetime(text)
        if moment is None:
            return self._date(text)
        if timezone.is_aware(moment):
            zone = self.organization.tzinfo if self.organization is not None else timezone.get_current_timezone()
            moment = timezone.localtime(moment, zone)
        return date_format(moment, "SHORT_DATETIME_FORMAT")

    def _period(self, label: str) -> str:
        from dashboards.analytics.periods import parse_period_or_range
        from dashboards.templatetags.spm_format import period_name

        start_month = self.organization.fiscal_year_start_month if self.organization is not None else 1
        try:
            return period_name(parse_period_or_range(label, start_month))
        except ValueError:
            return label

    def _reason(self, value: Any) -> str:
        """Return a typed reason as typed, and a product's reason code in the active language."""
        if not isinstance(value, dict):
            return str(value)
        params = {key: param for key, param in value.items() if key != "code"}
        label = audit.REASON_LABELS.get(value.get("code"))
        if label is None:
            return json.dumps(value, ensure_ascii=False)
        try:
            return str(label) % params
        except (KeyError, TypeError, ValueError):
            return str(label)


def _yes_no(value: bool) -> str:
    return gettext("yes") if value else gettext("no")


# --- names ----------------------------------------------------------------------------------------


class _NameIndex:
    """Names of objects by model and id, loaded with one query per model."""

    def __init__(self, organization: Organization):
        self.organization = organization
        self.wanted: dict[type[models.Model], set[int]] = defaultdict(set)
        self.names: dict[type[models.Model], dict[int, str]] = {}

    def want(self, model: type[models.Model], pk: int) -> None:
        self.wanted[model].add(pk)

    def name(self, model: type[models.Model], pk: int) -> str | None:
        return self.names.get(model, {}).get(pk)

    def load(self) -> None:
        for model, ids in self.wanted.items():
            self.names[model] = _names_of(model, ids, self.organization)


def _names_of(model: type[models.Model], ids: set[int], organization: Organization) -> dict[int, str]:
    """Return {id: name} of the objects of `model` with these ids in the organization; others are left out."""
    from coaching.models import CoachingNote, OneOnOne
    from pipelines.models import ImportRun

    if model is User:
        # A user is named only through a membership of this organization.
        members = Membership.objects.filter(user_id__in=ids).select_related("user")
        return {member.user_id: member.display_name for member in members}
    if model is Membership:
        return {member.pk: member.display_name for member in Membership.objects.filter(pk__in=ids).select_related("user")}
    if model is Organization:
        return {organization.pk: organization.name} if organization.pk in ids else {}
    if model is OneOnOne:
        names = {}
        for row in OneOnOne.objects.filter(pk__in=ids).select_related("rep__user"):
            day = date_format(timezone.localtime(row.scheduled_at, organization.tzinfo), "SHORT_DATE_FORMAT")
            names[row.pk] = gettext("%(rep)s on %(date)s") % {"rep": row.rep.display_name, "date": day}
        return names
    if model is CoachingNote:
        names = {}
        for pk, visibility in CoachingNote.objects.filter(pk__in=ids).values_list("pk", "visibility"):
            names[pk] = f"({NOTE_VISIBILITY_LABELS.get(visibility, visibility)}) #{pk}"
        return names
    if model is ImportRun:
        names = {}
        for row in ImportRun.objects.filter(pk__in=ids):
            started = date_format(timezone.localtime(row.created_at, organization.tzinfo), "SHORT_DATETIME_FORMAT")
            names[row.pk] = f"{row.get_source_display()} {started}"
        return names
    if model._meta.label not in NAMED_BY_STR:
        return {}
    return {row.pk: str(row) for row in model._default_manager.filter(pk__in=ids)}
