"""Personal data: export of one person, pseudonymization of a leaver, activity retention."""

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.db import connection
from django.test import Client
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot
from dashboards.services import kpi_snapshot_recompute
from pipelines.models import Activity, ActivityKind, DealStatus, StageKind
from spm import audit, privacy
from spm.models import AuditLog, Membership, Role, User
from tests.factories import (
    DealFactory,
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    StageFactory,
)

NOW = dt.datetime(2024, 6, 30, 12, tzinfo=dt.timezone.utc)


def utc(year, month, day):
    return dt.datetime(year, month, day, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def stages(org):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        return {
            "open": StageFactory(pipeline=pipeline, name="Qualify", order=1, kind=StageKind.OPEN),
            "won": StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON),
        }


@pytest.fixture
def person_data(org, member, other_rep, stages):
    """The rep owns a won deal named like a formula and one activity; the other rep owns one won deal."""
    with scopes_disabled():
        deals = {
            "rep": DealFactory(
                owner=member,
                stage=stages["won"],
                name="=SUM(A1:A9)",
                status=DealStatus.WON,
                amount=Decimal("300.00"),
                closed_at=utc(2017, 2, 1),
            ),
            "other": DealFactory(
                owner=other_rep,
                stage=stages["won"],
                status=DealStatus.WON,
                amount=Decimal("200.00"),
                closed_at=utc(2017, 2, 1),
            ),
        }
        Activity.objects.create(
            organization=org, source="test", external_id="A1", kind=ActivityKind.CALL, owner=member, occurred_at=utc(2017, 1, 20)
        )
    return deals


@pytest.fixture
def admin_client(admin_member):
    client = Client()
    client.force_login(admin_member.user)
    return client


def test_export_json_contains_the_person_only(admin_client, member, person_data):
    response = admin_client.get(f"/o/acme/data-protection/people/{member.pk}/export/", {"format": "json"})

    assert response.status_code == 200
    export = json.loads(response.content)
    assert export["person"]["email"] == "rep@acme.example"
    assert export["membership"]["role"] == Role.REP
    assert [deal["id"] for deal in export["records"]["pipelines.deal"]] == [person_data["rep"].pk]
    assert [activity["external_id"] for activity in export["records"]["pipelines.activity"]] == ["A1"]
    assert "dashboards.pipelinesnapshot" not in export["records"]


def test_export_is_audited(admin_client, admin_member, member, org, person_data):
    admin_client.get(f"/o/acme/data-protection/people/{member.pk}/export/", {"format": "json"})

    with scope(organization=org):
        entry = AuditLog.objects.get(action=audit.PERSONAL_DATA_EXPORTED)
    assert entry.actor == admin_member.user
    assert entry.object_id == str(member.pk)
    assert entry.after["record_counts"]["pipelines.deal"] == 1


def test_export_csv_escapes_formula_cells(admin_client, member, person_data):
    response = admin_client.get(f"/o/acme/data-protection/people/{member.pk}/export/", {"format": "csv"})

    text = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["section", "record_id", "field", "value"]
    names = [row[3] for row in table if row[0] == "pipelines.deal" and row[2] == "name"]
    assert names == ["'=SUM(A1:A9)"]


def test_export_rejects_unknown_format(admin_client, member):
    response = admin_client.get(f"/o/acme/data-protection/people/{member.pk}/export/", {"format": "xml"})

    assert response.status_code == 400


def test_export_format_error_page(admin_client, member):
    response = admin_client.get(
        f"/o/acme/data-protection/people/{member.pk}/export/", {"format": "xml"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert '<html lang="en">' in page
    assert "<title>Bad request · SPM</title>" in page
    assert '<p>Invalid export format "xml"; use one of: json, csv.</p>' in page
    assert (
        f'<a href="/o/acme/data-protection/people/{member.pk}/">Back to the personal data of {member.user.name}</a>'
        in page
    )


def test_export_format_error_page_in_german(admin_client, member):
    response = admin_client.get(
        f"/o/acme/data-protection/people/{member.pk}/export/", {"format": "xml"}, HTTP_ACCEPT_LANGUAGE="de"
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert '<html lang="de">' in page
    assert "<title>Ungültige Anfrage · SPM</title>" in page


def test_export_format_error_escapes_value(admin_client, member):
    """The page repeats the value from the address, so markup in it must arrive as text."""
    value = "<script>alert(1)</script>"

    response = admin_client.get(
        f"/o/acme/data-protection/people/{member.pk}/export/", {"format": value}, HTTP_ACCEPT_LANGUAGE="en"
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "<script>" not in page
    assert '<p>Invalid export format "&lt;script&gt;alert(1)&lt;/script&gt;"; use one of: json, csv.</p>' in page


def erase(client, membership, **data):
    return client.post(f"/o/acme/data-protection/people/{membership.pk}/erase/", data)


def test_erase_needs_confirmation(admin_client, member):
    response = erase(admin_client, member)

    assert response.status_code == 400
    member.user.refresh_from_db()
    assert member.user.email == "rep@acme.example"


def test_erase_pseudonymizes_and_disables_login(admin_client, member, person_data):
    response = erase(admin_client, member, confirm="on")

    assert response.status_code == 302
    user = User.objects.get(pk=member.user_id)
    assert user.email.endswith("@erased.invalid")
    assert user.name.startswith("Former member ")
    assert user.is_active is False
    assert user.has_usable_password() is False
    assert Client().post("/accounts/login/", {"login": "rep@acme.example", "password": "correct-horse-battery"}).status_code == 200
    with scopes_disabled():
        membership = Membership.objects.get(pk=member.pk)
        assert membership.external_id == user.name
        assert membership.deals.count() == 1


def test_erase_keeps_team_totals_and_renames_snapshots(admin_client, org, member, person_data):
    kpi_snapshot_recompute(organization=org)
    with scopes_disabled():
        before = KpiSnapshot.objects.get(grain=Grain.ORGANIZATION, period_kind="year").won_amount

    erase(admin_client, member, confirm="on")

    user = User.objects.get(pk=member.user_id)
    with scopes_disabled():
        after = KpiSnapshot.objects.get(grain=Grain.ORGANIZATION, period_kind="year").won_amount
        names = set(KpiSnapshot.objects.filter(grain=Grain.REP, subject_id=member.pk).values_list("subject_name", flat=True))
    assert before == Decimal("500.00")
    assert after == Decimal("500.00")
    assert names == {user.name}


def test_erase_is_audited_without_real_name(admin_client, org, member):
    erase(admin_client, member, confirm="on")

    with scope(organization=org):
        entry = AuditLog.objects.get(action=audit.PERSON_PSEUDONYMIZED)
    assert entry.object_id == str(member.pk)
    assert "rep@acme.example" not in json.dumps(entry.after)


@pytest.mark.parametrize(
    "other_count, message",
    [
        (1, "This person also belongs to 1 other organization; its admins must remove the person there first."),
        (2, "This person also belongs to 2 other organizations; their admins must remove the person there first."),
    ],
)
def test_erase_refused_for_member_of_other_organization(admin_client, member, other_count, message):
    with scopes_disabled():
        for number in range(other_count):
            MembershipFactory(organization=OrganizationFactory(slug=f"other-{number}"), user=member.user)

    response = erase(admin_client, member, confirm="on")

    assert response.status_code == 400
    assert message in response.content.decode()
    member.user.refresh_from_db()
    assert member.user.email == "rep@acme.example"


def test_erase_of_oneself_refused(admin_client, admin_member):
    response = erase(admin_client, admin_member, confirm="on")

    assert response.status_code == 400
    admin_member.user.refresh_from_db()
    assert admin_member.user.is_active is True


def make_activity(org, owner, external_id, occurred_at):
    with scopes_disabled():
        return Activity.objects.create(
            organization=org, source="test", external_id=external_id, kind=ActivityKind.CALL, owner=owner, occurred_at=occurred_at
        )


def test_retention_deletes_only_older_activities(org, other_org, member, other_org_admin):
    org.activity_retention_days = 30
    org.save()
    make_activity(org, member, "old", NOW - dt.timedelta(days=31))
    make_activity(org, member, "edge", NOW - dt.timedelta(days=30))
    make_activity(org, member, "new", NOW - dt.timedelta(days=1))
    make_activity(other_org, other_org_admin, "foreign-old", NOW - dt.timedelta(days=400))

    with scope(organization=org):
        deleted = privacy.activity_retention_apply(organization=org, now=NOW)

    with scopes_disabled():
        remaining = sorted(Activity.objects.values_list("external_id", flat=True))
        entry = AuditLog.objects.get(action=audit.ACTIVITY_RETENTION_APPLIED)
    assert deleted == 1
    assert remaining == ["edge", "foreign-old", "new"]
    assert entry.after["deleted"] == 1
    assert entry.after["retention_days"] == 30


def test_retention_none_keeps_everything(org, member):
    make_activity(org, member, "old", NOW - dt.timedelta(days=4000))

    with scope(organization=org):
        deleted = privacy.activity_retention_apply(organization=org, now=NOW)

    with scopes_disabled():
        assert Activity.objects.count() == 1
        assert not AuditLog.objects.filter(action=audit.ACTIVITY_RETENTION_APPLIED).exists()
    assert deleted == 0


def test_retention_task_runs_for_configured_organizations(org, other_org, member, other_org_admin):
    from spm.tasks import activity_retention_apply_all

    org.activity_retention_days = 1
    org.save()
    make_activity(org, member, "old", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    make_activity(other_org, other_org_admin, "kept", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))

    queued = activity_retention_apply_all.delay().get()

    with scopes_disabled():
        assert sorted(Activity.objects.values_list("external_id", flat=True)) == ["kept"]
    assert queued == 1


def test_retention_scheduled_nightly():
    entry = settings.CELERY_BEAT_SCHEDULE["activity-retention"]

    assert entry["task"] == "spm.tasks.activity_retention_apply_all"


def test_settings_form_rejects_out_of_range_retention(admin_client, org):
    response = admin_client.post("/o/acme/data-protection/", {"activity_retention_days": "0"})

    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 1." in response.content.decode()


def test_settings_form_error_in_german(admin_member, org):
    admin_member.user.language = "de"
    admin_member.user.save()
    client = Client()
    client.force_login(admin_member.user)

    response = client.post("/o/acme/data-protection/", {"activity_retention_days": "abc"})

    assert response.status_code == 400
    assert "Bitte eine ganze Zahl eingeben." in response.content.decode()


def test_settings_form_saves_mfa_duty_and_audits(admin_client, admin_member, org):
    # The form rejects the duty for an admin without an authenticator app (tests/test_mfa_activation.py).
    TOTP.activate(admin_member.user, generate_totp_secret())

    response = admin_client.post(
        "/o/acme/data-protection/",
        {"requires_mfa": "on", "activity_retention_days": "365", "audit_retention_days": "3650"},
    )

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.requires_mfa is True
    assert org.activity_retention_days == 365
    assert org.audit_retention_days == 3650
    with scope(organization=org):
        entry = AuditLog.objects.get(action="organization.security_settings_changed")
    assert entry.before == {"requires_mfa": False, "activity_retention_days": None, "audit_retention_days": None}
    assert entry.after == {"requires_mfa": True, "activity_retention_days": 365, "audit_retention_days": 3650}


def _audit_row_at(organization, created_at, action="test.old"):
    entry = audit.audit_record(organization=organization, action=action, object_type="test")
    with audit.audit_privileged(), connection.cursor() as cursor:
        cursor.execute("UPDATE spm_auditlog SET created_at = %s WHERE id = %s", [created_at, entry.pk])
    return entry


def test_audit_retention_deletes_only_older_rows_and_records_itself(org, other_org):
    org.audit_retention_days = 365
    org.save()
    old = _audit_row_at(org, NOW - dt.timedelta(days=366))
    kept = _audit_row_at(org, NOW - dt.timedelta(days=364))
    other = _audit_row_at(other_org, NOW - dt.timedelta(days=1000))

    deleted = privacy.audit_retention_apply(organization=org, now=NOW)

    assert deleted == 1
    with scopes_disabled():
        remaining = set(AuditLog.objects.values_list("pk", flat=True))
        record = AuditLog.objects.get(organization=org, action=audit.AUDIT_RETENTION_APPLIED)
    assert old.pk not in remaining
    assert {kept.pk, other.pk} <= remaining
    assert record.after == {"deleted": 1, "cutoff": "2023-07-01T12:00:00+00:00", "retention_days": 365}


def test_audit_retention_empty_keeps_the_log(org):
    _audit_row_at(org, NOW - dt.timedelta(days=5000))

    assert privacy.audit_retention_apply(organization=org, now=NOW) == 0
    with scopes_disabled():
        assert not AuditLog.objects.filter(action=audit.AUDIT_RETENTION_APPLIED).exists()


def test_audit_retention_below_a_year_rejected_on_the_page(admin_member, org):
    client = Client()
    client.force_login(admin_member.user)

    response = client.post("/o/acme/data-protection/", {"audit_retention_days": "30"})

    assert response.status_code == 400
    assert "365" in response.content.decode()
    org.refresh_from_db()
    assert org.audit_retention_days is None


def test_nightly_retention_queues_audit_retention(org, other_org):
    from spm.tasks import activity_retention_apply_all

    other_org.audit_retention_days = 400
    other_org.save()
    _audit_row_at(other_org, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))

    queued = activity_retention_apply_all.delay().get()

    assert queued == 1
    with scopes_disabled():
        assert not AuditLog.objects.filter(organization=other_org, action="test.old").exists()


def test_export_includes_1on1_notes_and_leaves_out_token_hashes(org, admin_member, manager_member, member):
    from coaching.models import CoachingNote, OneOnOne
    from integrations.api.models import ApiToken

    with scope(organization=org):
        meeting = OneOnOne.objects.create(
            organization=org, rep=member, manager=manager_member, scheduled_at=NOW, period_label="2024-Q2"
        )
        note = CoachingNote.objects.create(organization=org, one_on_one=meeting, author=manager_member, text="Pipeline thin")
        ApiToken.objects.create(organization=org, name="CRM", prefix="spm_1_ab", token_hash="f" * 64, created_by=member.user)

        export = privacy.person_data_export(membership=member, actor=admin_member.user)

    assert [row["id"] for row in export["records"]["coaching.oneonone"]] == [meeting.pk]
    assert [row["text"] for row in export["records"]["coaching.coachingnote"]] == ["Pipeline thin"]
    assert export["records"]["coaching.coachingnote"][0]["id"] == note.pk
    token_row = export["records"]["api.apitoken"][0]
    assert token_row["prefix"] == "spm_1_ab"
    assert "token_hash" not in token_row


def test_erase_deletes_calendar_feeds(admin_client, org, member):
    from integrations.capture.models import CalendarFeed

    with scope(organization=org):
        CalendarFeed.objects.create(organization=org, member=member, url="https://calendar.example/private/abc123.ics")

    response = admin_client.post(f"/o/acme/data-protection/people/{member.pk}/erase/", {"confirm": "on"})

    assert response.status_code == 302
    with scope(organization=org):
        assert not CalendarFeed.objects.filter(member=member).exists()
        entry = AuditLog.objects.get(action=audit.PERSON_PSEUDONYMIZED)
    assert entry.after["calendar_feeds_deleted"] == 1


def test_export_shows_calendar_feed_host_only(admin_client, org, member):
    from integrations.capture.models import CalendarFeed

    with scope(organization=org):
        CalendarFeed.objects.create(
            organization=org, member=member, url="https://user:pw@calendar.example:8443/private-abc123/basic.ics?token=SECRET"
        )

    response = admin_client.get(f"/o/acme/data-protection/people/{member.pk}/export/?format=json")

    content = response.content.decode()
    assert response.status_code == 200
    assert json.loads(content)["records"]["capture.calendarfeed"][0]["url"] == "https://calendar.example/…"
    assert "SECRET" not in content
    assert "abc123" not in content
