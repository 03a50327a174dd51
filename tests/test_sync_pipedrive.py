"""CRM sync from Pipedrive against the fake Pipedrive server on loopback (tests/fake_crm.py).

The company: pipeline 1 "Neugeschäft" (11 Qualifiziert 20 %, 12 Angebot 50 %, 13
Verhandlung 80 %) and pipeline 2 "Partner", which is not synced. The users are 7 Petra
Pohl and 8 Otto Ostertag. Pipedrive has no won or lost stages, so the sync adds "Won" and "Lost"
to the pipeline and a status change is a move into one of them.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope

from integrations.sync.models import SyncStatus
from pipelines.models import (
    Activity,
    Deal,
    DealStageChange,
    DealStatus,
    Stage,
    StageKind,
)
from spm.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory
from tests.fake_crm import (
    fixture_connection,  # noqa: F401 (pytest fixture, requested by name)
    fixture_server,  # noqa: F401 (pytest fixture, requested by name)
    pipedrive_demo,
    sync,
    utc,
)


@pytest.fixture
def fake():
    fake = pipedrive_demo()
    fake.add_deal(
        100,
        title="Solar Müller",
        owner_id=7,
        pipeline_id=1,
        stage_id=11,
        value=5000,
        currency="EUR",
        add_time=utc(2025, 3, 3, 8),
    )
    fake.move_deal(100, 12, utc(2025, 3, 10, 8))
    fake.set_status(100, "won", utc(2025, 3, 20, 10))
    fake.add_deal(
        101,
        title="Wärmepumpe Schulz",
        owner_id=8,
        pipeline_id=1,
        stage_id=11,
        value=1200.5,
        currency="EUR",
        add_time=utc(2025, 3, 4, 8),
    )
    fake.move_deal(101, 13, utc(2025, 3, 12, 8))
    fake.add_deal(
        102,
        title="Dach Weber",
        owner_id=7,
        pipeline_id=1,
        stage_id=12,
        value=800,
        currency="EUR",
        add_time=utc(2025, 3, 5, 8),
    )
    fake.set_status(102, "lost", utc(2025, 3, 15, 8))
    fake.add_deal(
        103,
        title="Partner Nord",
        owner_id=8,
        pipeline_id=2,
        stage_id=21,
        value=300,
        currency="EUR",
        add_time=utc(2025, 3, 1, 8),
    )
    fake.add_activity(
        900, type_name="call", subject="Rückruf", owner_id=8, deal_id=101, due=utc(2025, 3, 11, 14), duration="00:30",
        done=True, update_time=utc(2025, 3, 11, 15),
    )  # fmt: skip
    return fake


def deal(org, external_id) -> Deal:
    with scope(organization=org):
        return Deal.all_objects.select_related("stage", "owner__user").get(source="pipedrive", external_id=external_id)


def stage_history(org, external_id) -> list[tuple[str, dt.datetime]]:
    with scope(organization=org):
        changes = DealStageChange.all_objects.filter(deal__source="pipedrive", deal__external_id=external_id)
        return [
            (change.to_stage.name, change.changed_at)
            for change in changes.select_related("to_stage").order_by("changed_at", "id")
        ]


def test_first_run_backfills_deals_and_history(org, connection, fake):
    run = sync(connection)

    assert run.status == SyncStatus.SUCCEEDED
    assert run.deal_counts == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0, "deleted": 0}
    assert stage_history(org, "100") == [
        ("Qualifiziert", utc(2025, 3, 3, 8)),
        ("Angebot", utc(2025, 3, 10, 8)),
        ("Won", utc(2025, 3, 20, 10)),
    ]
    assert stage_history(org, "102") == [("Angebot", utc(2025, 3, 5, 8)), ("Lost", utc(2025, 3, 15, 8))]
    solar = deal(org, "100")
    assert (solar.status, solar.closed_at, solar.amount) == (DealStatus.WON, utc(2025, 3, 20, 10), Decimal("5000.00"))
    assert solar.owner.user.email == "petra.pohl@acme.example"
    assert solar.owner.external_id == "pipedrive:7"
    heat_pump = deal(org, "101")
    assert (heat_pump.status, heat_pump.stage.name, heat_pump.amount) == (
        DealStatus.OPEN,
        "Verhandlung",
        Decimal("1200.50"),
    )
    assert deal(org, "102").status == DealStatus.LOST
    with scope(organization=org):
        assert not Deal.all_objects.filter(external_id="103").exists()
        stages = {
            stage.name: (stage.kind, stage.probability, stage.order)
            for stage in Stage.objects.filter(pipeline__name="Neugeschäft")
        }
        call = Activity.objects.select_related("deal").get(source="pipedrive", external_id="900")
    assert stages == {
        "Qualifiziert": (StageKind.OPEN, 20, 1),
        "Angebot": (StageKind.OPEN, 50, 2),
        "Verhandlung": (StageKind.OPEN, 80, 3),
        "Won": (StageKind.WON, 100, 4),
        "Lost": (StageKind.LOST, 0, 5),
    }
    assert (call.kind, call.subject, call.occurred_at, call.duration) == (
        "call",
        "Rückruf",
        utc(2025, 3, 11, 14),
        dt.timedelta(minutes=30),
    )
    assert call.deal.external_id == "101"
    # The token travels as the api_token query parameter on every request.
    assert all(request.query["api_token"] == ["test-token"] for request in fake.requests)
    first_deals_request = fake.requests_to("/api/v2/deals")[0]
    assert "updated_since" not in first_deals_request.query
    assert first_deals_request.query["status"] == ["open,won,lost,deleted"]


def test_incremental_run_uses_updated_since(org, connection, fake):
    sync(connection)
    fake.set_status(101, "won", utc(2025, 3, 25, 9))

    run = sync(connection)

    assert fake.requests_to("/api/v2/deals")[-1].query["updated_since"] == ["2025-03-20T09:59:00Z"]
    # Solar Müller was changed at the cursor and is read again, unchanged.
    assert run.deal_counts == {"created": 0, "updated": 1, "unchanged": 1, "rejected": 0, "deleted": 0}
    heat_pump = deal(org, "101")
    assert (heat_pump.status, heat_pump.closed_at) == (DealStatus.WON, utc(2025, 3, 25, 9))
    assert connection.cursor["deals"] == "2025-03-25T09:00:00+00:00"


def test_reopened_deal_moved_back(org, connection, fake):
    sync(connection)
    fake.set_status(100, "open", utc(2025, 3, 26, 9))
    fake.move_deal(100, 11, utc(2025, 3, 27, 9))

    sync(connection)

    solar = deal(org, "100")
    assert (solar.status, solar.stage.name, solar.closed_at) == (DealStatus.OPEN, "Qualifiziert", None)
    assert stage_history(org, "100")[-3:] == [
        ("Won", utc(2025, 3, 20, 10)),
        ("Angebot", utc(2025, 3, 26, 9)),
        ("Qualifiziert", utc(2025, 3, 27, 9)),
    ]


def test_deleted_deal_marked_deleted(org, connection, fake):
    sync(connection)
    fake.delete_deal(102, utc(2025, 3, 28, 9))

    run = sync(connection)

    assert run.deal_counts["deleted"] == 1
    assert deal(org, "102").deleted_at == utc(2025, 3, 28, 9)
    assert deal(org, "102").status == DealStatus.LOST


def test_second_run_changes_nothing(org, connection):
    sync(connection)

    run = sync(connection)

    assert run.deal_counts["created"] == 0
    assert run.deal_counts["updated"] == 0
    assert run.count("stage_changes", "created") == 0
    assert run.count("activities", "updated") == 0
    with scope(organization=org):
        assert DealStageChange.objects.count() == 7


def test_cursor_and_offset_pagination(org, connection, fake):
    fake.max_page_size = 1
    fake.set_status(101, "lost", utc(2025, 3, 13, 8))
    fake.move_deal(101, 12, utc(2025, 3, 12, 9))

    run = sync(connection)

    assert run.deal_counts["created"] == 3
    cursors = [request.query.get("cursor", [None])[0] for request in fake.requests_to("/api/v2/deals")]
    assert cursors == [None, "1", "2", "3"]
    flows = fake.requests_to("/v1/deals/101/flow")
    assert [request.query["start"][0] for request in flows] == ["0", "1", "2"]
    assert flows[0].query["items"] == ["dealChange"]
    assert [name for name, _at in stage_history(org, "101")] == ["Qualifiziert", "Verhandlung", "Angebot", "Lost"]


def test_rate_limit_retry_after(org, connection, fake):
    fake.throttled["/api/v2/deals"] = ["2"]
    waits = []

    run = sync(connection, waits)

    assert run.status == SyncStatus.SUCCEEDED
    assert waits == [2.0]
    assert run.deal_counts["created"] == 3


def test_bad_token_error_hides_token(org, connection, fake):
    fake.token = "other"

    run = sync(connection)

    assert run.status == SyncStatus.FAILED
    assert run.message.startswith("Pipedrive rejected the access token (HTTP 401).")
    assert "test-token" not in run.message


def test_owner_matched_by_email_to_existing_member(org, connection, fake):
    """A member created before the sync under another external id gets the deals of her CRM user."""
    with scope(organization=org):
        petra = MembershipFactory(
            organization=org, role=Role.MANAGER, external_id="petra", user=UserFactory(email="petra.pohl@acme.example")
        )

    run = sync(connection)

    assert run.status == SyncStatus.SUCCEEDED
    assert deal(org, "100").owner == petra
    assert deal(org, "102").owner == petra
    with scope(organization=org):
        assert Activity.objects.get(source="pipedrive", external_id="900").owner.external_id == "pipedrive:8"
        assert not Membership.objects.filter(external_id="pipedrive:7").exists()
        petra.refresh_from_db()
    assert petra.role == Role.MANAGER
    assert petra.external_id == "petra"
