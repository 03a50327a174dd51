"""Audit log: what is recorded, append-only enforcement, the admin page with filters and exports."""

import csv
import datetime as dt
import io
import re

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from spm import audit
from spm.audit_display import audit_changes
from spm.models import AuditLog, AuditLogImmutableError, Role
from tests.factories import (
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    UserFactory,
)

PASSWORD = "correct-horse-battery"


def rows(organization, **filters):
    with scope(organization=organization):
        return list(AuditLog.objects.filter(**filters).order_by("pk"))


def login(client, email, password):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_login_recorded_in_each_organization(org, other_org, member):
    with scopes_disabled():
        MembershipFactory(organization=other_org, user=member.user, role=Role.REP)

    response = login(Client(), "rep@acme.example", PASSWORD)

    assert response.status_code == 302
    acme_rows = rows(org, action=audit.LOGIN)
    globex_rows = rows(other_org, action=audit.LOGIN)
    assert len(acme_rows) == 1
    assert len(globex_rows) == 1
    assert acme_rows[0].actor == member.user
    assert acme_rows[0].object_id == str(member.user.pk)


def test_failed_login_recorded_without_password(org, member):
    response = login(Client(), "rep@acme.example", "wrong-password-123")

    assert response.status_code == 200
    failed = rows(org, action=audit.LOGIN_FAILED)
    assert len(failed) == 1
    assert failed[0].actor is None
    assert failed[0].object_id == str(member.user.pk)
    assert "wrong-password-123" not in str(failed[0].after)


def test_failed_login_unknown_email_writes_nothing(org, member):
    login(Client(), "nobody@acme.example", "wrong-password-123")

    assert rows(org) == []


def test_audit_row_update_rejected_by_model(org):
    entry = audit.audit_record(organization=org, action="test.action")
    entry.action = "changed"

    with pytest.raises(AuditLogImmutableError):
        entry.save()


def test_audit_row_delete_rejected_by_model(org):
    entry = audit.audit_record(organization=org, action="test.action")

    with pytest.raises(AuditLogImmutableError):
        entry.delete()
    with scope(organization=org), pytest.raises(AuditLogImmutableError):
        AuditLog.objects.filter(pk=entry.pk).delete()
    with scope(organization=org), pytest.raises(AuditLogImmutableError):
        AuditLog.objects.filter(pk=entry.pk).update(action="changed")
    assert len(rows(org, action="test.action")) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only")
@pytest.mark.parametrize(
    "statement", ["UPDATE spm_auditlog SET action = 'changed'", "DELETE FROM spm_auditlog"], ids=["update", "delete"]
)
def test_trigger_rejects_raw_sql(org, statement):
    audit.audit_record(organization=org, action="test.action")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert [row.action for row in rows(org)] == ["test.action"]


def test_retention_delete_removes_only_old_rows(org, other_org):
    old = audit.audit_record(organization=org, action="test.old")
    audit.audit_record(organization=other_org, action="test.old")
    cutoff = timezone.now()
    audit.audit_record(organization=org, action="test.new")

    deleted = audit.audit_retention_delete(organization=org, before=cutoff)

    assert deleted == 1
    assert [row.action for row in rows(org)] == ["test.new"]
    assert [row.action for row in rows(other_org)] == ["test.old"]
    assert not rows(org, pk=old.pk)


def test_user_deletion_keeps_rows_without_actor(org, member):
    audit.audit_record(organization=org, action="test.action", actor=member.user)
    with scopes_disabled():
        member.delete()
    member.user.delete()

    [entry] = rows(org, action="test.action")
    assert entry.actor is None


def test_stage_change_in_request_recorded(org, admin_member, django_capture_on_commit_callbacks):
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org), probability=10)
    actor_token = audit.current_actor.set(admin_member.user)
    started_token = audit.request_started_at.set(timezone.now())
    try:
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            stage.probability = 40
            stage.save()
    finally:
        audit.current_actor.reset(actor_token)
        audit.request_started_at.reset(started_token)

    [entry] = rows(org, action=audit.STAGE_CHANGED)
    assert entry.actor == admin_member.user
    assert entry.object_id == str(stage.pk)
    assert entry.before == {"probability": 10}
    assert entry.after == {"probability": 40}


def test_role_change_in_request_recorded_once(org, admin_member, member, django_capture_on_commit_callbacks):
    started_token = audit.request_started_at.set(timezone.now())
    try:
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            member.role = Role.MANAGER
            member.save()
            # A service that records its own row for the same object is not doubled.
            audit.audit_record(
                organization=org, action="membership.role_change", object_type="membership", object_id=member.pk
            )
    finally:
        audit.request_started_at.reset(started_token)

    assert [row.action for row in rows(org, object_type="membership", object_id=str(member.pk))] == [
        "membership.role_change"
    ]


def test_model_change_outside_request_not_recorded(org, member):
    with scope(organization=org):
        member.role = Role.MANAGER
        member.save()

    assert rows(org, object_type="membership") == []


@pytest.fixture
def admin_client(admin_member):
    client = Client()
    client.force_login(admin_member.user)
    return client


@pytest.fixture
def entries(org, admin_member, member):
    """Three rows: a login of the rep on 1 March, a quota change by the admin on 2 March, an import on 3 March."""
    made = [
        audit.audit_record(organization=org, action=audit.LOGIN, actor=member.user, object_type="user", object_id=member.user.pk),
        audit.audit_record(
            organization=org,
            action=audit.QUOTA_CHANGED,
            actor=admin_member.user,
            object_type="quota",
            object_id=7,
            after={"note": "=HYPERLINK(\"http://x\")"},
        ),
        audit.audit_record(organization=org, action=audit.IMPORT_FINISHED, actor=admin_member.user, object_type="import"),
    ]
    # created_at is auto_now_add; the privileged session may rewrite it for the date filter.
    with audit.audit_privileged(), connection.cursor() as cursor:
        for day, entry in zip((1, 2, 3), made):
            cursor.execute(
                "UPDATE spm_auditlog SET created_at = %s WHERE id = %s",
                [dt.datetime(2024, 3, day, 12, tzinfo=dt.timezone.utc), entry.pk],
            )
    return made


def test_audit_page_filters_by_action(admin_client, entries):
    response = admin_client.get("/o/acme/audit/", {"action": audit.QUOTA_CHANGED})

    assert response.status_code == 200
    assert [entry.pk for entry in response.context["page"]] == [entries[1].pk]


def test_audit_page_filters_by_actor_and_dates(admin_client, admin_member, entries):
    response = admin_client.get(
        "/o/acme/audit/", {"actor": admin_member.user.pk, "created_from": "2024-03-03", "created_to": "2024-03-03"}
    )

    assert [entry.pk for entry in response.context["page"]] == [entries[2].pk]


def test_audit_page_filters_by_object(admin_client, entries):
    response = admin_client.get("/o/acme/audit/", {"object_type": "quota", "object_id": "7"})

    assert [entry.pk for entry in response.context["page"]] == [entries[1].pk]


def test_audit_page_rejects_reversed_dates(admin_client, entries):
    response = admin_client.get("/o/acme/audit/", {"created_from": "2024-03-03", "created_to": "2024-03-01"})

    assert response.status_code == 400
    assert "The start date must not be after the end date." in response.content.decode()


def test_audit_csv_export_escapes_formulas_and_is_audited(admin_client, org, entries):
    response = admin_client.get("/o/acme/audit/", {"action": audit.QUOTA_CHANGED, "export": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Time", "Action", "Actor", "Object type", "Object id", "Before", "After"]
    assert len(table) == 2
    assert table[1][1] == audit.QUOTA_CHANGED
    assert table[1][2] == "admin@acme.example"
    assert table[1][6] == '{"note": "=HYPERLINK(\\"http://x\\")"}'
    assert len(rows(org, action=audit.AUDIT_EXPORTED)) == 1


def test_audit_csv_export_escapes_leading_equals(admin_client, org):
    audit.audit_record(organization=org, action="=cmd|' /C calc'!A0")

    response = admin_client.get("/o/acme/audit/", {"export": "csv"})

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "'=cmd|' /C calc'!A0" in text


def test_audit_xlsx_export(admin_client, entries):
    response = admin_client.get("/o/acme/audit/", {"export": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.content[:2] == b"PK"


def test_audit_page_in_german(admin_client, entries):
    response = admin_client.get("/o/acme/audit/", HTTP_ACCEPT_LANGUAGE="de")

    assert response.status_code == 200
    assert 'lang="de"' in response.content.decode()


def test_actor_outside_organization_rejected(org, admin_client, entries):
    with scopes_disabled():
        outsider = UserFactory(email="outsider@example.com")

    response = admin_client.get("/o/acme/audit/", {"actor": outsider.pk})

    assert response.status_code == 400


def test_audit_changes_list_each_field_and_mark_changed_ones():
    changes = audit_changes({"target": "1000.00", "period": "2024-Q1"}, {"target": "1500.00", "period": "2024-Q1", "reason": "ramp"})

    assert [(change.name, change.before, change.after, change.changed) for change in changes] == [
        ("Target", "1,000.00", "1,500.00", True),
        ("Period", "Q1 FY 2024", "Q1 FY 2024", False),
        ("Reason", "–", "ramp", True),
    ]


def test_audit_changes_of_a_plain_value_and_of_nothing():
    assert [(c.name, c.before, c.after, c.changed) for c in audit_changes(None, ["a"])] == [("", "–", "a", True)]
    assert audit_changes(None, None) == []


def test_audit_page_shows_fields_instead_of_raw_dicts(admin_client, org, admin_member):
    audit.audit_record(
        organization=org,
        action=audit.QUOTA_CHANGED,
        actor=admin_member.user,
        object_type="quota",
        object_id=3,
        before={"target": "1000.00"},
        after={"target": "1500.00"},
    )

    response = admin_client.get("/o/acme/audit/")

    html = response.content.decode()
    assert "{&#x27;target&#x27;" not in html
    assert '<span class="text-decoration-line-through">1,000.00</span> → 1,500.00' in html


def test_audit_filter_widgets_have_bootstrap_classes(admin_client, entries):
    content = admin_client.get("/o/acme/audit/").content.decode()

    for name in ("action", "actor"):
        assert re.search(rf'<select name="{name}" class="form-select"', content), name
    for name in ("created_from", "created_to", "object_type", "object_id"):
        tag = re.search(rf'<input [^>]*name="{name}"[^>]*>', content).group(0)
        assert 'class="form-control"' in tag, tag
