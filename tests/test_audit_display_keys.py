"""Every key that audit rows store has a label in the reader's language, and no value shows as raw JSON or a server path."""

import re

import pytest
from django.test import Client
from django.utils import translation
from django_scopes import scope

from spm import audit
from spm.audit_display import (
    FIELD_LABELS,
    HIDDEN_KEYS,
    _model_field,
    _object_model,
    audit_changes,
    audit_entries_display,
)
from spm.models import AuditLog

COUNTS = {"created": 1234, "updated": 2, "unchanged": 0, "deleted": 0, "rejected": 1}
IMPORT_FINISHED_AFTER = {
    "source": "generic",
    "path": "/tmp/spm/media/imports/1/4efe",
    "currency": "USD",
    "counts": {"people": COUNTS, "stage_changes": {**COUNTS, "deleted": 3}},
    "rejected_rows": 1,
    "duration_seconds": 1.5,
}
AGENDA_SIGNAL = {"metric": "average_deal_size", "label_params": {"pipeline": ""}, "title": "Ø Deal-Größe"}

# (action, object type, before, after) as the code writes them, for the actions that store keys other than model fields.
# NOTE: a new key needs a sample here; the test does not find keys in the sources.
SAMPLES = [
    ("exchange_rates.imported", "exchange_rate", None,
     {"created": 1, "updated": 2, "unchanged": 3, "deals_recomputed": 4, "rejected_rows": 0}),
    (audit.IMPORT_FINISHED, "import", None, IMPORT_FINISHED_AFTER),
    ("import.uploaded", "import_run", None, {"source": "generic", "files": ["deals.csv"]}),
    ("import.started", "import_run", None, {"source": "generic"}),
    ("import.failed", "import_run", None, {"source": "generic", "dry_run": False, "message": "Broken"}),
    ("assignment.changed", "membership", {"team_id": 1, "territory_id": None},
     {"team_id": 2, "territory_id": None, "valid_from": "2017-10-01"}),
    ("leave.added", "membership", None, {"leave_id": 5, "starts_on": "2017-10-01", "ends_on": "2017-10-02"}),
    ("leave.deleted", "membership", {"leave_id": 5, "starts_on": "2017-10-01", "ends_on": "2017-10-02"}, None),
    ("coaching.one_on_one_created", "one_on_one", None,
     {"rep": 1, "manager": 2, "scheduled_at": "2017-10-01T09:00:00+00:00", "period": "2017-Q4", "status": "planned",
      "agenda": [AGENDA_SIGNAL, "Pricing"]}),
    ("coaching.agenda_changed", "one_on_one", {"order": [3, 4]}, {"order": [4, 3]}),
    ("coaching.agenda_changed", "one_on_one", None, {"added": [AGENDA_SIGNAL]}),
    ("privacy.personal_data_exported", "membership", None, {"record_counts": {"pipelines.deal": 2}}),
    ("privacy.person_pseudonymized", "membership", None,
     {"user_id": 1, "snapshots_renamed": 2, "calendar_feeds_deleted": 1, "api_tokens_revoked": 1}),
    ("audit.exported", "audit", None, {"format": "csv", "filters": {"action": "auth.login"}}),
    ("retention.activities_deleted", "activity", None,
     {"deleted": 3, "cutoff": "2017-10-01T00:00:00+00:00", "retention_days": 365}),
    ("win_model.train_requested", "win_model", None, {"version": 2}),
    ("skills.rubric_default_loaded", "rubric", None, {"added": ["Discovery"]}),
    ("capture.domain_added", "account", None, {"domain": "acme.example"}),
    ("stage.stall_threshold_changed", "stage", {"stalled_after_days": 10}, {"stalled_after_days": 20}),
    ("ramp_schedule.created", "ramp_schedule", None, {"name": "Ramp", "month_percentages": "25/50/75"}),
    ("forecast.stage_category_changed", "stage", {"forecast_category": "pipeline"}, {"forecast_category": "commit"}),
    ("forecast.deal_category_changed", "deal", {"forecast_category_override": None},
     {"forecast_category_override": "commit"}),
]  # fmt: skip


@pytest.fixture
def admin_client(admin_member):
    client = Client()
    client.force_login(admin_member.user)
    return client


def _row_html(client, entry: AuditLog, language: str) -> str:
    html = client.get("/o/acme/audit/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    match = re.search(rf'<tr data-audit-entry="{entry.pk}">(.*?)</tr>', html, re.DOTALL)
    assert match is not None, f"no row for audit entry {entry.pk}"
    return re.sub(r"\s+", " ", match[1])


def _entry(org, action, object_type, object_id, before=None, after=None) -> AuditLog:
    return audit.audit_record(
        organization=org, action=action, object_type=object_type, object_id=object_id, before=before, after=after
    )


@pytest.mark.parametrize(("action", "object_type", "before", "after"), SAMPLES)
def test_stored_keys_have_german_labels(org, action, object_type, before, after):
    entry = _entry(org, action, object_type, "", before, after)

    with translation.override("de"), scope(organization=org):
        (row,) = audit_entries_display([entry], organization=org)

    model = _object_model(object_type)
    for key in {**(before or {}), **(after or {})}:
        assert _model_field(model, key) is not None or key in FIELD_LABELS or key in HIDDEN_KEYS, key
    for change in row.changes:
        for value in (change.before, change.after):
            assert not value.startswith(("{", "[")), f"{change.name}: {value}"
            assert "/tmp/" not in value


def test_import_finished_row_in_german(org, admin_client):
    entry = _entry(org, audit.IMPORT_FINISHED, "import", "generic", after=IMPORT_FINISHED_AFTER)

    row = _row_html(admin_client, entry, "de")

    assert "Import Andere CSV- oder Excel-Datei" in row
    assert "Quelle:</dt> <dd class=\"d-inline mb-0\">Andere CSV- oder Excel-Datei</dd>" in row
    assert "Währung:</dt> <dd class=\"d-inline mb-0\">USD</dd>" in row
    assert (
        "Anzahlen:</dt> <dd class=\"d-inline mb-0\">"
        "Personen: 1.234 angelegt, 2 aktualisiert, 0 unverändert, 1 abgelehnt; "
        "Phasenwechsel: 1.234 angelegt, 2 aktualisiert, 0 unverändert, 1 abgelehnt, 3 gelöscht</dd>"
    ) in row
    assert "Dauer (Sekunden):</dt> <dd class=\"d-inline mb-0\">1,5</dd>" in row
    assert "/tmp/" not in row
    assert "Path" not in row
    assert "#generic" not in row


def test_import_finished_row_in_english(org_in_english, admin_client):
    entry = _entry(org_in_english, audit.IMPORT_FINISHED, "import", "generic", after=IMPORT_FINISHED_AFTER)

    row = _row_html(admin_client, entry, "en")

    assert "Import Other CSV or Excel file" in row
    assert (
        "Counts:</dt> <dd class=\"d-inline mb-0\">"
        "People: 1,234 created, 2 updated, 0 unchanged, 1 rejected; "
        "Stage changes: 1,234 created, 2 updated, 0 unchanged, 1 rejected, 3 deleted</dd>"
    ) in row
    assert "/tmp/" not in row


def test_exchange_rates_row_in_german(org, admin_client):
    after = {"created": 1200, "updated": 2, "unchanged": 3, "deals_recomputed": 4, "rejected_rows": 0}
    entry = _entry(org, "exchange_rates.imported", "exchange_rate", "rates.csv", after=after)

    row = _row_html(admin_client, entry, "de")

    assert "Wechselkurse rates.csv" in row
    assert "#rates.csv" not in row
    assert "Erstellt:</dt> <dd class=\"d-inline mb-0\">1.200</dd>" in row
    assert "Aktualisiert:</dt> <dd class=\"d-inline mb-0\">2</dd>" in row
    assert "Unverändert:</dt> <dd class=\"d-inline mb-0\">3</dd>" in row
    assert "Neu berechnete Deals:</dt> <dd class=\"d-inline mb-0\">4</dd>" in row


def test_agenda_signal_label_in_reader_language():
    after = {"agenda": [AGENDA_SIGNAL, "Pricing", "Ø Deal-Größe"]}

    with translation.override("en"):
        (english,) = audit_changes(None, after)
    with translation.override("de"):
        (german,) = audit_changes(None, after)

    # The third entry is an older row's label text, shown as stored.
    assert english.after == "Average deal size, Pricing, Ø Deal-Größe"
    assert german.after == "Ø Deal-Größe, Pricing, Ø Deal-Größe"


def test_generated_agenda_item_stored_with_label_params():
    from coaching.models import AgendaItem, AgendaItemKind
    from coaching.services import _agenda_audit_entry

    generated = AgendaItem(kind=AgendaItemKind.SIGNAL, title="", signal={"metric": "win_rate", "label_params": {"pipeline": "B2B"}})
    typed = AgendaItem(kind=AgendaItemKind.TOPIC, title="Pricing")

    with translation.override("de"):
        stored = _agenda_audit_entry(generated)

    assert stored == {"metric": "win_rate", "label_params": {"pipeline": "B2B"}, "title": "B2B: Win Rate"}
    assert _agenda_audit_entry(typed) == "Pricing"
