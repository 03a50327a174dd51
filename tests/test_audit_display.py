"""The audit page and export in the reader's language: labels, localized values, names, creation actions, JSON."""

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django_scopes import scope, scopes_disabled

from goals import services as goals_services
from goals.imports import people_import, quota_import
from goals.models import Team
from spm import audit
from spm.audit_display import audit_changes
from spm.models import AuditLog, Membership, Role, User
from tests.factories import PipelineFactory, StageFactory

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Folders whose code writes no audit rows of the product.
NOT_SCANNED = {"tests", "bench", "demo", "locale", "static", "staticfiles", "templates", "docs"}
AUDIT_WRITERS = ("audit_record(", "audit_write(", "AuditLog.objects.create(", "_audit(")


@pytest.fixture
def admin_client(admin_member):
    client = Client()
    client.force_login(admin_member.user)
    return client


def _page(client, language="de", **query) -> str:
    return client.get("/o/acme/audit/", query, HTTP_ACCEPT_LANGUAGE=language).content.decode()


def _row_html(html: str, entry: AuditLog) -> str:
    match = re.search(rf'<tr data-audit-entry="{entry.pk}">(.*?)</tr>', html, re.DOTALL)
    assert match is not None, f"no row for audit entry {entry.pk}"
    return re.sub(r"\s+", " ", match[1])


def _quota_create(org, admin_member, member, **extra):
    with scope(organization=org):
        quota, outcome = goals_services.quota_update(
            organization=org,
            actor=admin_member.user,
            level="rep",
            subject_id=member.pk,
            period_kind="quarter",
            period_start=dt.date(2017, 10, 1),
            metric="won_revenue",
            target=Decimal(85000),
            **extra,
        )
    return quota, outcome


def test_quota_creation_logged_as_created(org, admin_member, member):
    quota, outcome = _quota_create(org, admin_member, member)

    with scope(organization=org):
        entry = AuditLog.objects.get(object_type="quota", object_id=str(quota.pk))
    assert outcome == "created"
    assert entry.action == audit.QUOTA_CREATED
    assert entry.before is None


def test_quota_change_logged_as_changed(org, admin_member, member):
    _quota_create(org, admin_member, member)
    with scope(organization=org):
        goals_services.quota_update(
            organization=org,
            actor=admin_member.user,
            level="rep",
            subject_id=member.pk,
            period_kind="quarter",
            period_start=dt.date(2017, 10, 1),
            metric="won_revenue",
            target=Decimal(90000),
        )
        actions = list(AuditLog.objects.filter(object_type="quota").order_by("pk").values_list("action", flat=True))

    assert actions == [audit.QUOTA_CREATED, audit.QUOTA_CHANGED]


def test_quota_page_in_german(org, admin_client, admin_member, member):
    quota, _outcome = _quota_create(org, admin_member, member, reason=audit.audit_reason(audit.REASON_QUOTA_UPLOAD, file="q.csv"))
    with scope(organization=org):
        entry = AuditLog.objects.get(object_type="quota")

    row = _row_html(_page(admin_client), entry)

    assert f"Quota #{quota.pk}" in row
    assert "Ebene:</dt> <dd class=\"d-inline mb-0\">Vertriebsmitarbeiter/in</dd>" in row
    assert f"Vertriebsmitarbeiter/in:</dt> <dd class=\"d-inline mb-0\">{member.display_name}</dd>" in row
    assert "Zeitraumart:</dt> <dd class=\"d-inline mb-0\">Quartal</dd>" in row
    assert "Beginn des Zeitraums:</dt> <dd class=\"d-inline mb-0\">01.10.2017</dd>" in row
    assert "Kennzahl:</dt> <dd class=\"d-inline mb-0\">Gewonnener Umsatz</dd>" in row
    assert "Zielwert:</dt> <dd class=\"d-inline mb-0\">85.000,00</dd>" in row
    assert ":</dt> <dd class=\"d-inline mb-0\">ja</dd>" in row
    assert "Grund:</dt> <dd class=\"d-inline mb-0\">Upload q.csv</dd>" in row
    for raw in ("membership_id", "85000.00", "True", "2017-10-01", "won_revenue", "–"):
        assert raw not in row


def test_membership_change_names_team_and_role(org, admin_client, member):
    with scopes_disabled():
        south = Team.objects.create(organization=org, name="South")
    audit.audit_record(
        organization=org,
        action=audit.MEMBERSHIP_CHANGED,
        object_type="membership",
        object_id=member.pk,
        before={"role": "rep", "team_id": member.team_id, "active_from": None},
        after={"role": "manager", "team_id": south.pk, "active_from": "2017-04-01"},
    )
    with scope(organization=org):
        entry = AuditLog.objects.get(action=audit.MEMBERSHIP_CHANGED)
        with translation.override("de"):
            rep_label, manager_label = str(Role.REP.label), str(Role.MANAGER.label)

    row = _row_html(_page(admin_client), entry)

    assert f"Mitgliedschaft {member.display_name}" in row
    assert f'<span class="text-decoration-line-through">{rep_label}</span> → {manager_label}' in row
    assert '<span class="text-decoration-line-through">North</span> → South' in row
    assert '<span class="text-decoration-line-through">–</span> → 01.04.2017' in row
    assert "team_id" not in row


def test_login_names_the_user(org, admin_client, member):
    entry = audit.audit_record(organization=org, action=audit.LOGIN, actor=member.user, object_type="user", object_id=member.user.pk)

    row = _row_html(_page(admin_client), entry)

    assert f"Benutzer/in {member.display_name}" in row
    assert "#" not in row


def test_foreign_id_stays_an_id(org, other_org, admin_client, other_org_admin):
    entry = audit.audit_record(
        organization=org, action=audit.LOGIN, object_type="user", object_id=other_org_admin.user.pk
    )

    row = _row_html(_page(admin_client), entry)

    assert f"Benutzer/in #{other_org_admin.user.pk}" in row
    assert other_org_admin.display_name not in row


def test_one_on_one_period_shown_by_name(org, admin_client):
    entry = audit.audit_record(
        organization=org, action="coaching.one_on_one_changed", object_type="one_on_one", object_id=999,
        before={"period": "2017-Q3"}, after={"period": "2017-Q4"},
    )  # fmt: skip

    row = _row_html(_page(admin_client), entry)

    assert '<span class="text-decoration-line-through">Q3 GJ 2017</span> → Q4 GJ 2017' in row


def test_page_names_objects_with_fixed_queries(org, admin_client, admin_member, member, other_rep):
    def add_entries():
        for membership in (member, other_rep):
            audit.audit_record(organization=org, action=audit.LOGIN, object_type="user", object_id=membership.user.pk)
            audit.audit_record(
                organization=org, action=audit.MEMBERSHIP_CHANGED, object_type="membership", object_id=membership.pk,
                before={"manager_id": None}, after={"manager_id": admin_member.pk},
            )  # fmt: skip

    add_entries()
    with CaptureQueriesContext(connection) as few:
        _page(admin_client)
    add_entries()
    add_entries()
    with CaptureQueriesContext(connection) as more:
        html = _page(admin_client)

    # 12 entries written here and the admin's login.
    assert html.count("data-audit-entry=") == 13
    assert len(more.captured_queries) == len(few.captured_queries)


def test_csv_export_writes_json(admin_client, org):
    audit.audit_record(
        organization=org, action="team.created", object_type="team", object_id=5,
        before=None, after={"name": "+49 Team", "parent_id": None},
    )  # fmt: skip

    response = admin_client.get("/o/acme/audit/", {"action": "team.created", "export": "csv"})

    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert table[1][5] == ""
    assert json.loads(table[1][6]) == {"name": "+49 Team", "parent_id": None}
    assert table[1][6] == '{"name": "+49 Team", "parent_id": null}'


def test_people_upload_logs_creation_neutrally(org, admin_member):
    data = b"name,email,role\nEva Roth,eva.roth@acme.example,rep\n"

    with translation.override("de"), scope(organization=org):
        people_import(organization=org, actor=admin_member.user, data=data, file_name="people.csv", today=dt.date(2025, 4, 1))
        created = Membership.objects.get(user__email="eva.roth@acme.example")
        entry = AuditLog.objects.get(object_type="membership", object_id=str(created.pk))

    assert entry.action == audit.MEMBERSHIP_CREATED
    assert entry.after["reason"] == {"code": audit.REASON_PEOPLE_UPLOAD}


def test_quota_upload_reason_neutral(org, admin_member, member):
    data = f"level,name,period,metric,target\nrep,{member.user.email},2025-Q1,won_revenue,1000\n".encode()

    with translation.override("de"), scope(organization=org):
        quota_import(organization=org, actor=admin_member.user, data=data, file_name="q.csv")
        entry = AuditLog.objects.get(object_type="quota")

    assert entry.action == audit.QUOTA_CREATED
    assert entry.after["reason"] == {"code": audit.REASON_QUOTA_UPLOAD, "file": "q.csv"}


def test_reason_shown_in_reader_language(org, admin_client, admin_member, member):
    _quota_create(org, admin_member, member, reason=audit.audit_reason(audit.REASON_QUOTA_TEMPLATE, name="Ramp"))
    with scope(organization=org):
        entry = AuditLog.objects.get(object_type="quota")

    assert "Reason:</dt> <dd class=\"d-inline mb-0\">Template Ramp</dd>" in _row_html(_page(admin_client, "en"), entry)
    assert "Grund:</dt> <dd class=\"d-inline mb-0\">Vorlage Ramp</dd>" in _row_html(_page(admin_client, "de"), entry)


def test_created_in_request_logged_as_created(org, admin_member, member, django_capture_on_commit_callbacks):
    actor_token = audit.current_actor.set(admin_member.user)
    started_token = audit.request_started_at.set(timezone.now())
    try:
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            stage = StageFactory(pipeline=PipelineFactory(organization=org))
            user = User.objects.create_user(email="new@acme.example", password=None)
            membership = Membership.objects.create(organization=org, user=user, role=Role.REP)
    finally:
        audit.current_actor.reset(actor_token)
        audit.request_started_at.reset(started_token)

    with scope(organization=org):
        assert AuditLog.objects.get(object_type="stage", object_id=str(stage.pk)).action == audit.STAGE_CREATED
        assert AuditLog.objects.get(object_type="membership", object_id=str(membership.pk)).action == audit.MEMBERSHIP_CREATED


def test_changes_without_model_localized():
    with translation.override("de"):
        changes = audit_changes(
            {"deleted": 1234, "cutoff": "2017-10-01T00:00:00+00:00", "dry_run": True},
            {"deleted": 1234, "cutoff": "2017-10-01T00:00:00+00:00", "dry_run": False},
        )

    assert [(change.before, change.after, change.changed) for change in changes] == [
        ("1.234", "1.234", False),
        ("01.10.2017 02:00", "01.10.2017 02:00", False),
        ("ja", "nein", True),
    ]


def _written_actions() -> set[str]:
    """Return every `app.action` literal in the source files that write audit rows."""
    actions = set()
    for path in PROJECT_ROOT.rglob("*.py"):
        relative = path.relative_to(PROJECT_ROOT)
        if relative.parts[0] in NOT_SCANNED or relative.parts[0].startswith(".") or "migrations" in relative.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if not any(writer in text for writer in AUDIT_WRITERS):
            continue
        actions.update(re.findall(r'"([a-z_]+\.[a-z_]+)"', text))
    model_labels = {model._meta.label_lower for model in apps.get_models()}
    # Model labels (privacy export sections) and the pseudonym domain are no actions.
    return {action for action in actions if action not in model_labels and not action.endswith(".invalid")}


def test_every_written_action_has_label():
    actions = _written_actions()

    assert {audit.QUOTA_CREATED, "coaching.agenda_changed", "exchange_rates.imported"} <= actions
    assert sorted(actions - set(audit.ACTION_LABELS)) == []
