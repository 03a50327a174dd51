"""Audit page values in the reader's language: default competencies, forecast categories, export counts, notes."""

import datetime as dt
import html

import pytest
from django_scopes import scope

from coaching import services as coaching_services
from coaching.skills import services as skills_services
from spm import audit
from spm.fiscal import parse_period
from spm.models import AuditLog
from tests.test_audit_display_keys import _row_html, admin_client  # noqa: F401 (fixture)

DEFAULT_NAMES_DE = "Bedarfsanalyse, Qualifizierung, Präsentation, Verhandlung, Abschluss, Einwandbehandlung"
DEFAULT_NAMES_EN = "Discovery, Qualification, Presentation, Negotiation, Closing, Objection handling"
RECORD_COUNTS = {"pipelines.deal": 448, "goals.quota": 4, "coaching_skills.developmentplan": 2}


def _value(label: str, value: str) -> str:
    return f'{label}:</dt> <dd class="d-inline mb-0">{value}</dd>'


def _load_default_rubric(org, admin_member) -> AuditLog:
    with scope(organization=org):
        skills_services.rubric_load_default(organization=org, actor=admin_member)
        return AuditLog.objects.get(action="skills.rubric_default_loaded")


def test_default_rubric_row_in_german(org, admin_member, admin_client):
    entry = _load_default_rubric(org, admin_member)

    row = _row_html(admin_client, entry, "de")

    assert _value("Hinzugefügt", DEFAULT_NAMES_DE) in row


def test_default_rubric_row_in_english(org_in_english, admin_member, admin_client):
    entry = _load_default_rubric(org_in_english, admin_member)

    row = _row_html(admin_client, entry, "en")

    assert _value("Added", DEFAULT_NAMES_EN) in row


def test_unknown_competency_name_shown_as_stored(org, admin_client):
    entry = audit.audit_record(
        organization=org, action="skills.rubric_default_loaded", object_type="rubric", after={"added": ["Storytelling"]}
    )

    row = _row_html(admin_client, entry, "de")

    assert _value("Hinzugefügt", "Storytelling") in row


def test_deal_category_override_shows_label(org, admin_client):
    # The shape that goals.forecasts.categories.deal_category_set writes.
    entry = audit.audit_record(
        organization=org,
        action="forecast.deal_category_changed",
        object_type="deal",
        object_id=123,
        before={"forecast_category_override": None},
        after={"forecast_category_override": "commit"},
    )

    german = _row_html(admin_client, entry, "de")

    assert 'Forecast-Kategorie (manuell gesetzt):</dt> <dd class="d-inline mb-0">' in german
    assert '<span class="text-decoration-line-through">–</span> → Commit</dd>' in german
    assert "commit" not in german


def test_stage_category_shows_label(org_in_english, admin_client):
    entry = audit.audit_record(
        organization=org_in_english,
        action="forecast.stage_category_changed",
        object_type="stage",
        object_id=45,
        before={"forecast_category": "pipeline"},
        after={"forecast_category": "best_case"},
    )

    english = _row_html(admin_client, entry, "en")

    assert 'Forecast category:</dt> <dd class="d-inline mb-0">' in english
    assert '<span class="text-decoration-line-through">Pipeline</span> → Best case</dd>' in english


def test_export_record_counts_in_german(org, admin_client):
    entry = audit.audit_record(
        organization=org,
        action=audit.PERSONAL_DATA_EXPORTED,
        object_type="membership",
        object_id=999,
        after={"record_counts": {**RECORD_COUNTS, "gone.model": 1}},
    )

    row = _row_html(admin_client, entry, "de")

    assert _value("Datensätze", "Deals: 448; Quotas: 4; Entwicklungspläne: 2; gone.model: 1") in row


def test_export_record_counts_in_english(org_in_english, admin_client):
    entry = audit.audit_record(
        organization=org_in_english,
        action=audit.PERSONAL_DATA_EXPORTED,
        object_type="membership",
        object_id=999,
        after={"record_counts": RECORD_COUNTS},
    )

    row = _row_html(admin_client, entry, "en")

    assert _value("Records", "Deals: 448; Quotas: 4; Development plans: 2") in row


@pytest.fixture
def notes(org, manager_member, member):
    """A private and a shared note, in that order, with their audit rows."""
    with scope(organization=org):
        one_on_one = coaching_services.one_on_one_create(
            organization=org,
            manager=manager_member,
            rep=member,
            scheduled_at=dt.datetime(2017, 10, 2, 9, 0, tzinfo=dt.UTC),
            period=parse_period("2017-Q4", 1),
            now=dt.datetime(2017, 10, 1, 12, 0, tzinfo=dt.UTC),
        )
        private = coaching_services.note_add(one_on_one=one_on_one, author=manager_member, text="Tired", visibility="private")
        shared = coaching_services.note_add(one_on_one=one_on_one, author=manager_member, text="Good demo", visibility="shared")
        entries = [
            AuditLog.objects.get(action="coaching.note_added", object_id=str(note.pk)) for note in (private, shared)
        ]
    return [(private, entries[0]), (shared, entries[1])]


def test_note_rows_labelled_neutrally_in_german(admin_client, notes):
    (private, private_entry), (shared, shared_entry) = notes

    private_row = _row_html(admin_client, private_entry, "de")
    shared_row = _row_html(admin_client, shared_entry, "de")

    assert f"<td>Coaching-Notiz (privat) #{private.pk}</td>" in private_row
    assert _value("Sichtbarkeit", "Privat") in private_row
    assert "nur ich" not in private_row
    assert f"<td>Coaching-Notiz (geteilt) #{shared.pk}</td>" in shared_row
    assert _value("Sichtbarkeit", "Geteilt") in shared_row
    assert "Gegenüber" not in shared_row


def test_note_rows_labelled_neutrally_in_english(org_in_english, admin_client, notes):
    (private, private_entry), _shared = notes

    row = _row_html(admin_client, private_entry, "en")

    assert f"<td>Coaching note (private) #{private.pk}</td>" in row
    assert _value("Visibility", "Private") in row
    assert "only I" not in row


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "Invalid object id 'abc'; enter a number, or set the object type to import or exchange_rate."),
        (
            "de",
            "Ungültige Objekt-ID 'abc'; geben Sie eine Zahl ein oder setzen Sie den Objekttyp auf import oder exchange_rate.",
        ),
    ],
)
def test_filter_rejects_object_id_not_number(org, admin_client, language, message):
    audit.audit_record(organization=org, action=audit.QUOTA_CHANGED, object_type="quota", object_id=7)

    response = admin_client.get("/o/acme/audit/", {"object_id": "abc"}, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert "data-audit-entry" not in response.content.decode()


@pytest.mark.parametrize("object_id", ["quota", "7a", "٣"])
def test_filter_rejects_object_id_for_numbered_type(admin_client, object_id):
    response = admin_client.get("/o/acme/audit/", {"object_type": "quota", "object_id": object_id})

    assert response.status_code == 400
    assert f"Invalid object id {object_id!r}" in html.unescape(response.content.decode())


def test_filter_accepts_import_source_id(org, admin_client):
    entry = audit.audit_record(organization=org, action=audit.IMPORT_FINISHED, object_type="import", object_id="generic")

    response = admin_client.get("/o/acme/audit/", {"object_type": "import", "object_id": "generic"})

    assert response.status_code == 200
    assert [row.pk for row in response.context["page"]] == [entry.pk]


@pytest.mark.parametrize(
    ("language", "label_de", "label_en"),
    [("de", "Stufe 1 (Deutsch)", "Stufe 1 (Englisch)"), ("en", "Level 1 (German)", "Level 1 (English)")],
)
def test_competency_level_keys_labelled(org, admin_client, language, label_de, label_en):
    entry = audit.audit_record(
        organization=org,
        action="skills.competency_deleted",
        object_type="competency",
        before={"level_1_de": "Fragt nach", "level_1_en": "Asks"},
    )

    row = _row_html(admin_client, entry, language)

    assert _value(label_de, "Fragt nach") in row
    assert _value(label_en, "Asks") in row
