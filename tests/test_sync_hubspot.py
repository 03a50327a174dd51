"""CRM sync from HubSpot against the fake HubSpot server on loopback (tests/fake_crm.py).

The portal: pipeline "Sales Pipeline" (Appointment scheduled 20 %, Qualified to buy 40 %,
Contract sent 90 %, Closed won, Closed lost) and "Renewals", which is not synced. The
owners are 101 Hanna Huber and 102 Jonas Keller. The organization's time zone is Europe/Berlin and
its currency EUR. The deals are Alpha (won after two moves), Beta (open in Contract sent) and
Gamma (lost) from `hubspot_demo_deals`, plus Renewal in "Renewals".
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django_scopes import scope, scopes_disabled

from integrations.sync.http import CrmAuthError
from integrations.sync.models import CrmConnection, SyncStatus
from integrations.sync.services import crm_connection_create
from pipelines.models import (
    Activity,
    Deal,
    DealStageChange,
    DealStatus,
    Stage,
    StageKind,
)
from pipelines.services import crm_import
from spm.models import AuditLog, Membership
from tests.fake_crm import (
    fixture_connection,  # noqa: F401 (pytest fixture, requested by name)
    fixture_server,  # noqa: F401 (pytest fixture, requested by name)
    hubspot_demo_deals,
    sync,
    utc,
)


@pytest.fixture
def fake():
    fake = hubspot_demo_deals()
    fake.add_deal(
        "4",
        name="Renewal",
        owner_id="102",
        pipeline="renewals",
        stage="renewalopen",
        created_at=utc(2025, 1, 2, 9),
        amount="900",
    )
    fake.add_activity(
        "calls", "501", deal_id="2", modified_at=utc(2025, 1, 21, 9),
        hs_timestamp="2025-01-21T09:00:00.000Z", hubspot_owner_id="102", hs_call_title="Pricing call",
        hs_call_duration="900000",
    )  # fmt: skip
    fake.add_activity(
        "meetings", "601", deal_id="4", modified_at=utc(2025, 1, 22, 9),
        hs_timestamp="2025-01-22T09:00:00.000Z", hubspot_owner_id="101", hs_meeting_title="Renewal review",
        hs_meeting_start_time="2025-01-22T09:00:00.000Z", hs_meeting_end_time="2025-01-22T10:00:00.000Z",
    )  # fmt: skip
    return fake


def deal(org, external_id) -> Deal:
    with scope(organization=org):
        return Deal.all_objects.select_related("stage", "owner__user", "pipeline").get(
            source="hubspot", external_id=external_id
        )


def stage_history(org, external_id) -> list[tuple[str, dt.datetime]]:
    with scope(organization=org):
        changes = DealStageChange.all_objects.filter(deal__source="hubspot", deal__external_id=external_id).select_related(
            "to_stage"
        )
        return [(change.to_stage.name, change.changed_at) for change in changes.order_by("changed_at", "id")]


def test_first_run_backfills_deals_with_history(org, connection):
    run = sync(connection)

    assert run.status == SyncStatus.SUCCEEDED
    assert run.is_backfill is True
    assert run.deal_counts == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0, "deleted": 0}
    assert run.count("stage_changes", "created") == 7
    alpha = deal(org, "1")
    assert alpha.name == "Alpha"
    assert alpha.status == DealStatus.WON
    assert alpha.closed_at == utc(2025, 2, 3, 10)
    assert alpha.created_at == utc(2025, 1, 6, 9)
    assert alpha.amount == Decimal("1000.00")
    assert alpha.base_amount == Decimal("1000.00")
    assert alpha.currency == "EUR"
    assert alpha.pipeline.name == "Sales Pipeline"
    assert alpha.owner.user.email == "hanna.huber@acme.example"
    assert alpha.owner.external_id == "hubspot:101"
    assert stage_history(org, "1") == [
        ("Appointment scheduled", utc(2025, 1, 6, 9)),
        ("Qualified to buy", utc(2025, 1, 10, 9)),
        ("Closed won", utc(2025, 2, 3, 10)),
    ]
    beta = deal(org, "2")
    assert (beta.status, beta.stage.name, beta.closed_at) == (DealStatus.OPEN, "Contract sent", None)
    gamma = deal(org, "3")
    assert (gamma.status, gamma.closed_at, gamma.amount) == (DealStatus.LOST, utc(2025, 2, 5, 9), Decimal("400.50"))
    with scope(organization=org):
        assert not Deal.all_objects.filter(external_id="4").exists()
        stages = {
            stage.name: (stage.kind, stage.probability, stage.order)
            for stage in Stage.objects.filter(pipeline__name="Sales Pipeline")
        }
    assert stages == {
        "Appointment scheduled": (StageKind.OPEN, 20, 1),
        "Qualified to buy": (StageKind.OPEN, 40, 2),
        "Contract sent": (StageKind.OPEN, 90, 3),
        "Closed won": (StageKind.WON, 100, 4),
        "Closed lost": (StageKind.LOST, 0, 5),
    }


def test_first_run_imports_activities_and_stores_cursor(org, connection):
    run = sync(connection)

    assert run.count("activities", "created") == 2
    with scope(organization=org):
        call = Activity.objects.select_related("deal", "owner__user").get(source="hubspot", external_id="calls:501")
        meeting = Activity.objects.select_related("deal").get(source="hubspot", external_id="meetings:601")
    assert (call.kind, call.subject, call.duration) == ("call", "Pricing call", dt.timedelta(minutes=15))
    assert call.deal.external_id == "2"
    assert call.owner.user.email == "jonas.keller@acme.example"
    assert call.occurred_at == utc(2025, 1, 21, 9)
    assert call.is_captured is True
    # The meeting belongs to the Renewals deal, which is not synced: it is kept without a deal.
    assert (meeting.kind, meeting.deal, meeting.duration) == ("meeting", None, dt.timedelta(hours=1))
    assert connection.cursor["deals"] == "2025-02-05T09:00:00+00:00"
    assert connection.cursor["activities.calls"] == "2025-01-21T09:00:00+00:00"
    assert run.cursor_after == connection.cursor
    assert connection.status == SyncStatus.SUCCEEDED
    assert connection.last_error == ""


def test_incremental_run_reads_only_changes(org, connection, fake):
    sync(connection)
    fake.move_deal("2", "closedwon", utc(2025, 2, 10, 9))
    fake.add_deal(
        "5",
        name="Delta",
        owner_id="102",
        pipeline="default",
        stage="appointmentscheduled",
        created_at=utc(2025, 2, 11, 9),
        amount="700",
    )

    run = sync(connection)

    assert run.is_backfill is False
    # Gamma was modified exactly at the cursor and is read again, unchanged.
    assert run.deal_counts == {"created": 1, "updated": 1, "unchanged": 1, "rejected": 0, "deleted": 0}
    searches = fake.requests_to("/crm/v3/objects/deals/search")
    assert searches[-1].body["filterGroups"][0]["filters"][0] == {
        "propertyName": "hs_lastmodifieddate",
        "operator": "GTE",
        "value": str(int(utc(2025, 2, 5, 8, 59).timestamp() * 1000)),
    }
    reads = fake.requests_to("/crm/v3/objects/deals/batch/read")
    assert reads[-1].body["propertiesWithHistory"] == ["dealstage"]
    assert sorted(item["id"] for item in reads[-1].body["inputs"]) == ["2", "3", "5"]
    beta = deal(org, "2")
    assert (beta.status, beta.closed_at) == (DealStatus.WON, utc(2025, 2, 10, 9))
    assert deal(org, "5").stage.name == "Appointment scheduled"
    assert connection.cursor["deals"] == "2025-02-11T09:00:00+00:00"


def test_close_date_in_organization_time_zone(org, other_org, connection, fake, tmp_path):
    # HubSpot stores a close date picked as 1 March in a Berlin account as local midnight, 2025-02-28T23:00Z.
    fake.add_deal(
        "6",
        name="Epsilon",
        owner_id="102",
        pipeline="default",
        stage="appointmentscheduled",
        created_at=utc(2025, 2, 11, 9),
        amount="700",
        close_date=dt.datetime(2025, 3, 1, tzinfo=ZoneInfo("Europe/Berlin")),
    )
    # The deals export writes the same close date as the account shows it.
    export = tmp_path / "export"
    export.mkdir()
    (export / "hubspot-crm-exports-deals.csv").write_text(
        "Record ID,Deal Name,Deal Stage,Pipeline,Amount,Deal owner,Create Date,Close Date\n"
        "6,Epsilon,Appointment scheduled,Sales Pipeline,700,Jonas Keller,2025-02-11 10:00,2025-03-01 00:00\n"
    )

    sync(connection)
    with scope(organization=other_org):
        crm_import(organization=other_org, source="hubspot", path=export, today=dt.date(2025, 4, 1))
        imported = Deal.objects.get(external_id="6")

    assert deal(org, "6").expected_close_on == dt.date(2025, 3, 1)
    assert imported.expected_close_on == dt.date(2025, 3, 1)


def test_deal_moved_backwards_reopens_it(org, connection, fake):
    sync(connection)
    fake.move_deal("1", "contractsent", utc(2025, 2, 12, 9))

    run = sync(connection)

    assert run.count("deals", "updated") == 1
    alpha = deal(org, "1")
    assert (alpha.status, alpha.stage.name, alpha.closed_at) == (DealStatus.OPEN, "Contract sent", None)
    assert stage_history(org, "1")[-2:] == [("Closed won", utc(2025, 2, 3, 10)), ("Contract sent", utc(2025, 2, 12, 9))]


def test_deal_deleted_in_crm_is_marked_deleted(org, connection, fake):
    sync(connection)
    fake.archive_deal("3", utc(2025, 2, 14, 9))

    run = sync(connection)

    assert run.deal_counts["deleted"] == 1
    assert run.deal_counts["updated"] == 0
    gamma = deal(org, "3")
    assert gamma.deleted_at == utc(2025, 2, 14, 9)
    # The row and its history stay.
    assert gamma.status == DealStatus.LOST
    assert len(stage_history(org, "3")) == 2

    again = sync(connection)

    assert again.deal_counts["deleted"] == 0
    assert deal(org, "3").deleted_at == utc(2025, 2, 14, 9)


def test_second_run_without_changes_changes_nothing(org, connection):
    sync(connection)

    run = sync(connection)

    assert run.deal_counts == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 0, "deleted": 0}
    assert run.count("stage_changes", "created") == 0
    assert run.count("activities", "created") == 0
    assert run.count("activities", "updated") == 0
    with scope(organization=org):
        assert Deal.objects.count() == 3
        assert DealStageChange.objects.count() == 7
        assert Activity.objects.count() == 2


def test_pagination_reads_every_page(org, connection, fake):
    fake.max_page_size = 2
    fake.add_deal(
        "6",
        name="Epsilon",
        owner_id="101",
        pipeline="default",
        stage="contractsent",
        created_at=utc(2025, 1, 3, 9),
        amount="10",
    )

    run = sync(connection)

    assert run.deal_counts["created"] == 4
    listed = fake.requests_to("/crm/v3/objects/deals")
    pages = [request for request in listed if request.query.get("archived") == ["false"]]
    assert [request.query.get("after", ["0"])[0] for request in pages] == ["0", "2", "4"]
    assert [request.query["propertiesWithHistory"] for request in pages] == [["dealstage"]] * 3

    fake.move_deal("1", "contractsent", utc(2025, 3, 1, 9))
    fake.move_deal("2", "closedlost", utc(2025, 3, 2, 9))
    fake.move_deal("6", "closedwon", utc(2025, 3, 3, 9))
    run = sync(connection)

    searches = fake.requests_to("/crm/v3/objects/deals/search")
    # Gamma, modified at the cursor, and the three moved deals: two pages of two.
    assert [request.body.get("after") for request in searches[-2:]] == [None, "2"]
    assert run.deal_counts == {"created": 0, "updated": 3, "unchanged": 1, "rejected": 0, "deleted": 0}


def test_rate_limit_waits_for_retry_after(org, connection, fake):
    fake.throttled["/crm/v3/pipelines/deals"] = ["3"]
    fake.throttled["/crm/v3/objects/calls/search"] = ["1", "2"]
    waits = []

    run = sync(connection, waits)

    assert run.status == SyncStatus.SUCCEEDED
    assert waits == [3.0, 1.0, 2.0]
    assert len(fake.requests_to("/crm/v3/pipelines/deals")) == 2
    assert run.deal_counts["created"] == 3


def test_persistent_rate_limit_fails_run(org, connection, fake):
    fake.throttled["/crm/v3/owners"] = ["1"] * 10

    run = sync(connection)

    assert run.status == SyncStatus.FAILED
    assert "HubSpot answered HTTP 429 for /crm/v3/owners 5 times" in run.message
    assert connection.cursor == {}
    with scope(organization=org):
        assert Deal.objects.count() == 0


def test_bad_token_fails_with_clear_error(org, connection, fake):
    fake.token = "another-token"

    run = sync(connection)

    assert run.status == SyncStatus.FAILED
    assert run.message == (
        "HubSpot rejected the access token (HTTP 401). Enter a valid token with read access to deals, owners, "
        "pipelines and activities."
    )
    assert connection.status == SyncStatus.FAILED
    assert connection.last_error == run.message
    assert fake.requests[0].headers["authorization"] == "Bearer test-token"


def test_connection_create_rejects_bad_token(org, admin_member, server, fake):
    fake.token = "right"
    with scope(organization=org), pytest.raises(CrmAuthError):
        crm_connection_create(
            organization=org,
            provider="hubspot",
            access_token="wrong",
            base_url=server.base_url,
            actor=admin_member.user,
        )
    with scope(organization=org):
        assert CrmConnection.objects.count() == 0


def test_connection_create_fetches_pipelines_and_audits(org, admin_member, server):
    with scope(organization=org):
        connection = crm_connection_create(
            organization=org,
            provider="hubspot",
            access_token="test-token",
            base_url=server.base_url,
            actor=admin_member.user,
        )
        entry = AuditLog.objects.get(action="crm_connection.created")
    assert connection.available_pipelines == [
        {"id": "default", "label": "Sales Pipeline"},
        {"id": "renewals", "label": "Renewals"},
    ]
    assert entry.after["token"] == "••••••••oken"
    assert "test-token" not in str(entry.after)
    assert entry.actor == admin_member.user


def test_owner_matched_by_email_to_existing_member(org, connection, admin_member):
    with scopes_disabled():
        admin_member.user.email = "hanna.huber@acme.example"
        admin_member.user.save(update_fields=["email"])

    sync(connection)

    assert deal(org, "1").owner_id == admin_member.pk
    with scope(organization=org):
        assert Membership.objects.filter(user__email="hanna.huber@acme.example").count() == 1


NAME_KEPT_MSGID = (
    "existing accounts keep their name because an account can belong to several organizations; "
    "change it with a people upload on the people page"
)


def test_owner_name_not_applied_is_reported(org, connection, admin_member, admin_client):
    with scopes_disabled():
        admin_member.user.email = "hanna.huber@acme.example"
        admin_member.user.name = "Hanna Huber-Lang"
        admin_member.user.save(update_fields=["email", "name"])

    run = sync(connection)

    assert run.warnings == [
        {
            "entity": "people",
            "external_id": "hubspot:101",
            "field": "name",
            "value": "Hanna Huber",
            "reason": {"msgid": NAME_KEPT_MSGID, "params": {}},
        }
    ]
    assert run.errors == []
    assert run.counts["people"]["rejected"] == 0
    page = admin_client.get(f"/o/acme/integrations/{connection.pk}/runs/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert f"<tr><td>people</td><td>hubspot:101</td><td>name: {NAME_KEPT_MSGID}</td></tr>" in page.content.decode()
    with scopes_disabled():
        admin_member.user.refresh_from_db()
    assert admin_member.user.name == "Hanna Huber-Lang"


def test_search_restarts_at_result_limit(org, connection, fake, monkeypatch):
    sync(connection)
    monkeypatch.setattr("integrations.sync.providers.hubspot.SEARCH_RESULT_LIMIT", 2)
    fake.max_page_size = 1
    fake.move_deal("1", "contractsent", utc(2025, 3, 1, 9))
    fake.move_deal("2", "closedlost", utc(2025, 3, 2, 9))
    fake.move_deal("3", "contractsent", utc(2025, 3, 3, 9))

    run = sync(connection)

    searches = fake.requests_to("/crm/v3/objects/deals/search")[-4:]
    lower_bounds = [request.body["filterGroups"][0]["filters"][0]["value"] for request in searches]
    afters = [request.body.get("after") for request in searches]
    # Two pages reach the limit; the search starts again from the second deal's change.
    assert afters == [None, "1", None, "1"]
    assert lower_bounds[2] == str(int(utc(2025, 3, 2, 9).timestamp() * 1000))
    assert run.deal_counts == {"created": 0, "updated": 3, "unchanged": 0, "rejected": 0, "deleted": 0}
