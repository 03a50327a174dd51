"""The record import core shared by the REST API and the CRM sync."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django_scopes import scope

from goals.models import Team, Territory
from pipelines.importers.base import Message
from pipelines.models import Account, Activity, Deal, DealStageChange, Stage, StageKind
from pipelines.services_records import RecordsSourceError, records_import
from spm.models import AuditLog, Membership, Role

PIPELINE = {
    "name": "Sales",
    "stages": [
        {"name": "Prospecting", "kind": "open", "probability": 10},
        {"name": "Engaging", "kind": "open", "probability": 50},
        {"name": "Won", "kind": "won", "probability": 100},
        {"name": "Lost", "kind": "lost", "probability": 0},
    ],
}
PEOPLE = [
    {"external_id": "Dana Boss", "name": "Dana Boss", "role": "manager", "team": "Dana Boss", "territory": "West"},
    {"external_id": "Rita Rep", "name": "Rita Rep", "manager": "Dana Boss", "team": "Dana Boss", "territory": "West"},
]
ACCOUNTS = [{"external_id": "Acme", "sector": "retail", "employees": 12}]
DEALS = [
    {
        "external_id": "D1",
        "owner": "Rita Rep",
        "pipeline": "Sales",
        "stage": "Won",
        "entry_stage": "Engaging",
        "amount": 1000,
        "created_at": "2017-01-10",
        "closed_at": "2017-03-01",
        "account": "Acme",
        "product": "GTX",
    },
    {
        "external_id": "D2",
        "owner": "Rita Rep",
        "pipeline": "Sales",
        "stage": "Lost",
        "entry_stage": "Engaging",
        "amount": "250.50",
        "created_at": "2017-02-01",
        "closed_at": "2017-02-20",
    },
    {"external_id": "D3", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Prospecting", "created_at": "2017-04-01"},
]


def run(org, **records):
    with mock.patch("pipelines.services_records.kpi_recompute_schedule") as schedule, scope(organization=org):
        result = records_import(organization=org, source="api", label="test", **records)
    return result, schedule


def load_all(org):
    return run(org, pipelines=[PIPELINE], people=PEOPLE, accounts=ACCOUNTS, deals=DEALS)


@pytest.mark.django_db
def test_records_import_writes_deals_with_implied_history(org):
    result, schedule = load_all(org)

    assert result.record_errors == []
    assert result.counts["deals"].created == 3
    schedule.assert_called_once_with(organization_id=org.pk)
    with scope(organization=org):
        won = Deal.objects.get(source="api", external_id="D1")
        assert won.status == "won"
        assert won.closed_at == dt.datetime(2017, 3, 1, 12, tzinfo=dt.timezone.utc)
        assert won.base_amount == Decimal("1000.00")
        assert won.account.external_id == "Acme"
        assert won.product.name == "GTX"
        assert won.owner.user.name == "Rita Rep"
        history = list(won.stage_changes.order_by("changed_at").values_list("to_stage__name", flat=True))
        assert history == ["Engaging", "Won"]
        assert Deal.objects.get(external_id="D2").base_amount == Decimal("250.50")
        assert Deal.objects.get(external_id="D3").status == "open"
        names = list(Stage.objects.filter(pipeline__name="Sales").order_by("order").values_list("name", "probability"))
        assert names == [("Prospecting", 10), ("Engaging", 50), ("Won", 100), ("Lost", 0)]


@pytest.mark.django_db
def test_records_import_people_teams_and_territories(org):
    load_all(org)

    with scope(organization=org):
        boss = Membership.objects.get(external_id="Dana Boss")
        rep = Membership.objects.get(external_id="Rita Rep")
        team = Team.objects.get(name="Dana Boss")
        assert boss.role == Role.MANAGER
        assert rep.role == Role.REP
        assert rep.manager == boss
        assert rep.team == team
        assert team.manager == boss
        assert rep.territory == Territory.objects.get(name="West")


@pytest.mark.django_db
def test_people_record_without_role_keeps_stored_values(org):
    """The CRM sync sends people with e-mail address and name only; a manager must stay one."""
    load_all(org)

    result, _schedule = run(
        org,
        people=[
            {"external_id": "Dana Boss", "name": "Dana Boss"},
            {"external_id": "Rita Rep", "name": "Rita Rep"},
        ],
    )

    assert result.counts["people"].updated == 0
    assert result.counts["people"].unchanged == 2
    with scope(organization=org):
        boss = Membership.objects.get(external_id="Dana Boss")
        rep = Membership.objects.get(external_id="Rita Rep")
        assert boss.role == Role.MANAGER
        assert boss.team == Team.objects.get(name="Dana Boss")
        assert rep.manager == boss
        assert rep.territory == Territory.objects.get(name="West")


@pytest.mark.django_db
def test_people_record_with_empty_team_clears_it(org):
    load_all(org)

    result, _schedule = run(org, people=[{"external_id": "Rita Rep", "name": "Rita Rep", "team": "", "manager": None}])

    assert result.counts["people"].updated == 1
    with scope(organization=org):
        rep = Membership.objects.get(external_id="Rita Rep")
        assert rep.team is None
        assert rep.manager is None
        assert rep.role == Role.REP
        assert rep.territory == Territory.objects.get(name="West")


@pytest.mark.django_db
def test_new_person_without_role_becomes_rep(org):
    result, _schedule = run(org, people=[{"external_id": "Nina New", "name": "Nina New"}])

    assert result.counts["people"].created == 1
    with scope(organization=org):
        assert Membership.objects.get(external_id="Nina New").role == Role.REP


@pytest.mark.django_db
def test_records_import_second_run_changes_nothing(org):
    load_all(org)
    with scope(organization=org):
        changes_before = DealStageChange.objects.count()

    result, schedule = load_all(org)

    for entity in ("pipelines", "people", "accounts", "deals", "stage_changes"):
        assert result.counts[entity].created == 0, entity
        assert result.counts[entity].updated == 0, entity
    assert result.counts["deals"].unchanged == 3
    assert result.has_changes is False
    schedule.assert_not_called()
    with scope(organization=org):
        assert DealStageChange.objects.count() == changes_before


@pytest.mark.django_db
def test_records_import_reports_each_rejection(org):
    deals = [
        {"external_id": "OK", "owner": "Rita Rep", "stage": "Open", "created_at": "2017-01-01"},
        {"external_id": "BAD1", "owner": "Rita Rep", "stage": "Open", "created_at": "2017-01-01", "amount": "-5"},
        {"external_id": "BAD2", "owner": "Rita Rep", "status": "won", "created_at": "2017-01-01"},
        {"external_id": "BAD3", "owner": "Rita Rep", "status": "maybe", "created_at": "2017-01-01"},
        {"external_id": "OK", "owner": "Rita Rep", "stage": "Open", "created_at": "2017-01-01"},
        {"external_id": "BAD4", "stage": "Open", "created_at": "2017-01-01"},
        "not an object",
    ]

    result, _schedule = run(org, deals=deals)

    rejected = [(error.index, error.external_id, error.field, error.value) for error in result.record_errors]
    assert rejected == [
        (6, "", "", "'not an object'"),
        (1, "BAD1", "amount", "-5"),
        (2, "BAD2", "closed_at", ""),
        (3, "BAD3", "status", "maybe"),
        (4, "OK", "external_id", "OK"),
        (5, "BAD4", "owner", ""),
    ]
    reasons = {error.index: str(error.reason) for error in result.record_errors}
    assert reasons[1] == "negative amount; amounts must be 0 or more"
    assert reasons[4] == "duplicate external id; the record at index 0 has it too"
    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 6
    with scope(organization=org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["OK"]


@pytest.mark.django_db
def test_close_on_creation_day_accepted(org):
    """A closed_at without a time is compared by the local day and stored no earlier than created_at."""
    deals = [
        {"external_id": "SAME", "owner": "Rita Rep", "status": "won", "created_at": "2017-03-01T14:00:00Z", "closed_at": "2017-03-01"},
        {"external_id": "MORNING", "owner": "Rita Rep", "status": "won", "created_at": "2017-03-01 09:00", "closed_at": "2017-03-01"},
        {
            "external_id": "TIMED",
            "owner": "Rita Rep",
            "status": "lost",
            "created_at": "2017-03-01T14:00:00Z",
            "closed_at": "2017-03-01T10:00:00+01:00",
        },
        {"external_id": "EARLIER", "owner": "Rita Rep", "status": "lost", "created_at": "2017-03-02T14:00:00Z", "closed_at": "2017-03-01"},
    ]

    result, _schedule = run(org, deals=deals)

    rejected = [(error.index, error.external_id, error.field, error.value, str(error.reason)) for error in result.record_errors]
    assert rejected == [
        (2, "TIMED", "closed_at", "2017-03-01T10:00:00+01:00", "close date is before the creation date"),
        (3, "EARLIER", "closed_at", "2017-03-01", "close date is before the creation date"),
    ]
    with scope(organization=org):
        stored = {deal.external_id: (deal.created_at, deal.closed_at) for deal in Deal.objects.all()}
    assert stored == {
        "SAME": (dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC), dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC)),
        # 09:00 in Berlin is 08:00 UTC, earlier than the 12:00 UTC of a date alone.
        "MORNING": (dt.datetime(2017, 3, 1, 8, tzinfo=dt.UTC), dt.datetime(2017, 3, 1, 12, tzinfo=dt.UTC)),
    }


@pytest.mark.django_db
def test_records_import_rejection_in_reader_language(org):
    from django.utils import translation

    with translation.override("de"):
        result, _schedule = run(org, deals=[{"external_id": "X", "owner": "A", "stage": "Open"}])
    error = result.record_errors[0]

    assert error.field == "created_at"
    with translation.override("de"):
        assert error.as_dict()["reason"] == "Wert fehlt"
    with translation.override("en"):
        assert error.as_dict()["reason"] == "missing value"


@pytest.mark.django_db
def test_records_import_stage_change_backwards_reopens_deal(org):
    load_all(org)

    result, schedule = run(
        org,
        stage_changes=[
            {"deal": "D1", "stage": "Engaging", "changed_at": "2017-03-05T09:30:00+01:00"},
        ],
    )

    assert result.record_errors == []
    assert result.counts["stage_changes"].created == 1
    assert result.counts["deals"].updated == 1
    schedule.assert_called_once()
    with scope(organization=org):
        deal = Deal.objects.get(external_id="D1")
        assert deal.status == "open"
        assert deal.closed_at is None
        assert deal.stage.name == "Engaging"
        move = deal.stage_changes.order_by("-changed_at").first()
        assert move.from_stage.name == "Won"
        assert move.changed_at == dt.datetime(2017, 3, 5, 8, 30, tzinfo=dt.timezone.utc)

    again, _schedule = run(org, stage_changes=[{"deal": "D1", "stage": "Engaging", "changed_at": "2017-03-05T09:30:00+01:00"}])
    assert again.counts["stage_changes"].created == 0
    assert again.counts["stage_changes"].unchanged == 1


@pytest.mark.django_db
def test_records_import_new_deal_with_history(org):
    run(org, pipelines=[PIPELINE])

    result, _schedule = run(
        org,
        deals=[{"external_id": "H1", "owner_email": "ann@acme.example", "pipeline": "Sales", "created_at": "2017-01-01"}],
        stage_changes=[
            {"deal": "H1", "stage": "Prospecting", "changed_at": "2017-01-01"},
            {"deal": "H1", "stage": "Won", "changed_at": "2017-02-01"},
            {"deal": "H1", "stage": "Engaging", "changed_at": "2017-02-10"},
            {"deal": "H1", "stage": "Lost", "changed_at": "2017-03-01"},
            {"deal": "NOPE", "stage": "Lost", "changed_at": "2017-03-01"},
        ],
    )

    assert [(error.entity, error.index, error.field) for error in result.record_errors] == [("stage_changes", 4, "deal")]
    with scope(organization=org):
        deal = Deal.objects.get(external_id="H1")
        assert deal.status == StageKind.LOST
        assert deal.closed_at == dt.datetime(2017, 3, 1, 12, tzinfo=dt.timezone.utc)
        assert deal.stage_changes.count() == 4
        assert deal.owner.user.email == "ann@acme.example"


@pytest.mark.django_db
def test_records_import_deleted_flag_keeps_row(org):
    load_all(org)

    result, schedule = run(org, deals=[{"external_id": "D2", "deleted": True, "deleted_at": "2017-05-01T10:00:00Z"}])

    assert result.record_errors == []
    assert result.counts["deals"].updated == 1
    schedule.assert_called_once()
    with scope(organization=org):
        assert not Deal.objects.filter(external_id="D2").exists()
        deal = Deal.all_objects.get(external_id="D2")
        assert deal.deleted_at == dt.datetime(2017, 5, 1, 10, tzinfo=dt.timezone.utc)
        assert deal.status == "lost"

    again, schedule = run(org, deals=[{"external_id": "D2", "deleted": True}])
    assert again.counts["deals"].unchanged == 1
    schedule.assert_not_called()
    with scope(organization=org):
        assert Deal.all_objects.get(external_id="D2").deleted_at == dt.datetime(2017, 5, 1, 10, tzinfo=dt.timezone.utc)

    restored, _schedule = run(org, deals=[dict(DEALS[1])])
    assert restored.counts["deals"].updated == 1
    with scope(organization=org):
        assert Deal.objects.get(external_id="D2").deleted_at is None


@pytest.mark.django_db
def test_records_import_writes_audit_entry(org, admin_member):
    load_all(org)
    run(org, deals=[DEALS[0]])

    with scope(organization=org):
        entries = list(AuditLog.objects.filter(action="import.finished").order_by("pk"))
    assert len(entries) == 2
    assert entries[0].object_id == "api"
    assert entries[0].after["path"] == "test"
    assert entries[0].after["counts"]["deals"]["created"] == 3
    assert entries[1].after["counts"]["deals"]["unchanged"] == 1


@pytest.mark.django_db
def test_records_import_activities_upsert(org):
    load_all(org)
    activity = {
        "external_id": "A1",
        "kind": "meeting",
        "owner": "Rita Rep",
        "occurred_at": "2017-02-01T10:00",
        "deal": "D1",
        "duration_minutes": 30,
    }

    first, _schedule = run(org, activities=[activity, {"external_id": "A2", "kind": "fax", "owner": "Rita Rep"}])
    second, _schedule = run(org, activities=[activity])

    assert first.counts["activities"].created == 1
    assert [(error.index, error.field) for error in first.record_errors] == [(1, "kind")]
    assert second.counts["activities"].unchanged == 1
    with scope(organization=org):
        stored = Activity.objects.get(external_id="A1")
        assert stored.duration == dt.timedelta(minutes=30)
        assert stored.account == Account.objects.get(external_id="Acme")
        # 10:00 in Europe/Berlin (winter) is 09:00 UTC.
        assert stored.occurred_at == dt.datetime(2017, 2, 1, 9, tzinfo=dt.timezone.utc)


@pytest.mark.django_db
def test_records_import_rejects_admin_role(org):
    result, _schedule = run(org, people=[{"external_id": "X", "email": "x@acme.example", "role": "admin"}])

    assert [(error.field, error.value) for error in result.record_errors] == [("role", "admin")]


@pytest.mark.django_db
def test_records_import_rejects_invalid_source(org):
    with scope(organization=org):
        with pytest.raises(RecordsSourceError):
            records_import(organization=org, source="", deals=[])
        with pytest.raises(RecordsSourceError):
            records_import(organization=org, source="api", currency="EURO", deals=[])


@pytest.mark.django_db
def test_records_import_history_change_sets_updated_at(org):
    load_all(org)
    with scope(organization=org):
        Deal.objects.filter(external_id="D3").update(updated_at=dt.datetime(2017, 1, 1, tzinfo=dt.timezone.utc))
    record = dict(DEALS[2])

    run(org, deals=[record], stage_changes=[{"deal": "D3", "stage": "Engaging", "changed_at": "2017-04-05"}])

    with scope(organization=org):
        deal = Deal.objects.get(external_id="D3")
        assert deal.stage.name == "Engaging"
        assert deal.updated_at > dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


@pytest.mark.django_db
def test_records_import_stage_change_before_creation_rejected(org):
    """A stage change on an earlier day than created_at is rejected per record and leaves created_at alone."""
    run(org, pipelines=[PIPELINE])
    deal = {"external_id": "H1", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Won", "created_at": "2017-03-08"}

    result, _schedule = run(
        org,
        deals=[deal],
        stage_changes=[
            {"deal": "H1", "stage": "Prospecting", "changed_at": "2017-03-08"},
            {"deal": "H1", "stage": "Won", "changed_at": "2017-01-01"},
        ],
    )

    errors = [(error.entity, error.index, error.external_id, error.field, error.value) for error in result.record_errors]
    assert errors == [("stage_changes", 1, "H1", "changed_at", "2017-01-01")]
    assert str(result.record_errors[0].reason) == (
        "stage change on 01/01/2017 is before the deal was created on 03/08/2017 (created_at); correct one of the two dates"
    )
    with scope(organization=org):
        stored = Deal.objects.get(external_id="H1")
        assert stored.created_at == dt.datetime(2017, 3, 8, 12, tzinfo=dt.timezone.utc)
        assert list(stored.stage_changes.values_list("to_stage__name", flat=True)) == ["Prospecting"]


@pytest.mark.django_db
def test_records_import_stage_change_before_stored_creation_rejected(org):
    load_all(org)

    result, _schedule = run(org, stage_changes=[{"deal": "D1", "stage": "Engaging", "changed_at": "2016-12-31"}])

    assert [(error.index, error.field, error.value) for error in result.record_errors] == [(0, "changed_at", "2016-12-31")]
    assert result.record_errors[0].reason.params == {
        "entered": dt.date(2016, 12, 31),
        "created": dt.date(2017, 1, 10),
        "created_in": Message("created_at of the stored deal"),
    }
    assert result.counts["stage_changes"].created == 0
    with scope(organization=org):
        assert Deal.objects.get(external_id="D1").created_at == dt.datetime(2017, 1, 10, 12, tzinfo=dt.timezone.utc)


@pytest.mark.django_db
def test_records_import_same_day_move_sets_creation(org):
    """A move earlier on the creation day is accepted and becomes the creation time, in the call and for a stored deal."""
    run(org, pipelines=[PIPELINE])
    deal = {"external_id": "H1", "owner": "Rita Rep", "pipeline": "Sales", "created_at": "2017-03-08T15:00:00+01:00"}

    first, _schedule = run(
        org, deals=[deal], stage_changes=[{"deal": "H1", "stage": "Prospecting", "changed_at": "2017-03-08T11:00:00+01:00"}]
    )
    with scope(organization=org):
        created_in_call = Deal.objects.get(external_id="H1").created_at
    second, _schedule = run(
        org, stage_changes=[{"deal": "H1", "stage": "Prospecting", "changed_at": "2017-03-08T09:00:00+01:00"}]
    )

    assert first.record_errors == []
    assert second.record_errors == []
    assert created_in_call == dt.datetime(2017, 3, 8, 10, tzinfo=dt.timezone.utc)
    with scope(organization=org):
        assert Deal.objects.get(external_id="H1").created_at == dt.datetime(2017, 3, 8, 8, tzinfo=dt.timezone.utc)


@pytest.mark.django_db
def test_resent_deal_keeps_same_day_move_creation(org):
    """Sending the deal again with its date-only creation day keeps the earlier time a stored move set."""
    run(org, pipelines=[PIPELINE])
    deal = {"external_id": "H2", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Prospecting", "created_at": "2024-01-05"}
    run(org, deals=[deal])
    run(org, stage_changes=[{"deal": "H2", "stage": "Engaging", "changed_at": "2024-01-05T08:00:00+00:00"}])

    # The move made Engaging the deal's stage, so the CRM now sends the deal in Engaging.
    again, _schedule = run(org, deals=[{**deal, "stage": "Engaging"}])

    assert again.counts["deals"].updated == 0
    assert again.counts["deals"].unchanged == 1
    with scope(organization=org):
        assert Deal.objects.get(external_id="H2").created_at == dt.datetime(2024, 1, 5, 8, tzinfo=dt.timezone.utc)


def utc(year, month, day, hour):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


def stage_ids(org):
    with scope(organization=org):
        return dict(Stage.objects.filter(pipeline__name="Sales").values_list("name", "pk"))


def moves_of(org, external_id):
    with scope(organization=org):
        return list(
            DealStageChange.objects.filter(deal__external_id=external_id)
            .order_by("changed_at", "id")
            .values_list("from_stage_id", "to_stage_id", "changed_at", "is_implied")
        )


def deal_state(org, external_id):
    with scope(organization=org):
        deal = Deal.objects.get(external_id=external_id)
    return deal.stage_id, deal.status, deal.closed_at, deal.created_at


@pytest.mark.django_db
def test_earlier_same_day_move_replaces_implied_entry(org):
    """A stored snapshot's implied entry gives way to a recorded move earlier on the creation day."""
    run(org, pipelines=[PIPELINE])
    run(org, deals=[{"external_id": "S1", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Prospecting", "created_at": "2024-01-05"}])
    change = {"deal": "S1", "stage": "Engaging", "changed_at": "2024-01-05T08:00:00+00:00"}
    stages = stage_ids(org)

    first, _schedule = run(org, stage_changes=[change])

    assert first.record_errors == []
    assert first.counts["stage_changes"].created == 1
    assert first.counts["stage_changes"].deleted == 1
    assert first.counts["deals"].updated == 1
    assert moves_of(org, "S1") == [(None, stages["Engaging"], utc(2024, 1, 5, 8), False)]
    assert deal_state(org, "S1") == (stages["Engaging"], "open", None, utc(2024, 1, 5, 8))

    again, _schedule = run(org, stage_changes=[change])

    assert again.counts["stage_changes"].created == 0
    assert again.counts["stage_changes"].deleted == 0
    assert again.counts["stage_changes"].unchanged == 1
    assert again.counts["deals"].updated == 0
    assert moves_of(org, "S1") == [(None, stages["Engaging"], utc(2024, 1, 5, 8), False)]
    assert deal_state(org, "S1") == (stages["Engaging"], "open", None, utc(2024, 1, 5, 8))


@pytest.mark.django_db
def test_earlier_same_day_move_keeps_implied_close(org):
    """Only the implied entry is replaced: the implied close stays and now follows the recorded move."""
    run(org, pipelines=[PIPELINE])
    deal = {
        "external_id": "S2",
        "owner": "Rita Rep",
        "pipeline": "Sales",
        "stage": "Won",
        "entry_stage": "Prospecting",
        "created_at": "2024-01-05",
        "closed_at": "2024-02-01",
    }
    run(org, deals=[deal])
    stages = stage_ids(org)

    result, _schedule = run(org, stage_changes=[{"deal": "S2", "stage": "Engaging", "changed_at": "2024-01-05T08:00:00+00:00"}])

    assert result.counts["stage_changes"].created == 1
    assert result.counts["stage_changes"].deleted == 1
    assert moves_of(org, "S2") == [
        (None, stages["Engaging"], utc(2024, 1, 5, 8), False),
        (stages["Engaging"], stages["Won"], utc(2024, 2, 1, 12), True),
    ]
    assert deal_state(org, "S2") == (stages["Won"], "won", utc(2024, 2, 1, 12), utc(2024, 1, 5, 8))


@pytest.mark.django_db
def test_later_same_day_move_keeps_implied_entry(org):
    """A recorded move after the creation time leaves the implied entry in place."""
    run(org, pipelines=[PIPELINE])
    run(org, deals=[{"external_id": "S3", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Prospecting", "created_at": "2024-01-05"}])
    stages = stage_ids(org)

    result, _schedule = run(org, stage_changes=[{"deal": "S3", "stage": "Engaging", "changed_at": "2024-01-05T15:00:00+00:00"}])

    assert result.counts["stage_changes"].created == 1
    assert result.counts["stage_changes"].deleted == 0
    assert moves_of(org, "S3") == [
        (None, stages["Prospecting"], utc(2024, 1, 5, 12), True),
        (stages["Prospecting"], stages["Engaging"], utc(2024, 1, 5, 15), False),
    ]
    assert deal_state(org, "S3") == (stages["Engaging"], "open", None, utc(2024, 1, 5, 12))


@pytest.mark.django_db
def test_deal_resent_with_earlier_move_replaces_implied_entry(org):
    """A CRM sync sends the deal with its history: the same-day move replaces the implied entry, and a resend changes nothing."""
    run(org, pipelines=[PIPELINE])
    deal = {"external_id": "S4", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Prospecting", "created_at": "2024-01-05"}
    run(org, deals=[deal])
    stages = stage_ids(org)
    synced = {
        "deals": [{**deal, "stage": "Engaging"}],
        "stage_changes": [{"deal": "S4", "stage": "Engaging", "changed_at": "2024-01-05T08:00:00+00:00"}],
    }

    first, _schedule = run(org, **synced)

    assert first.counts["deals"].updated == 1
    assert first.counts["stage_changes"].created == 1
    assert first.counts["stage_changes"].deleted == 1
    assert moves_of(org, "S4") == [(None, stages["Engaging"], utc(2024, 1, 5, 8), False)]
    assert deal_state(org, "S4") == (stages["Engaging"], "open", None, utc(2024, 1, 5, 8))

    again, _schedule = run(org, **synced)

    assert again.counts["deals"].updated == 0
    assert again.counts["deals"].unchanged == 1
    assert again.counts["stage_changes"].created == 0
    assert again.counts["stage_changes"].deleted == 0
    assert again.counts["stage_changes"].unchanged == 1
    assert moves_of(org, "S4") == [(None, stages["Engaging"], utc(2024, 1, 5, 8), False)]
    assert deal_state(org, "S4") == (stages["Engaging"], "open", None, utc(2024, 1, 5, 8))


@pytest.mark.django_db
def test_snapshot_with_earlier_creation_moves_implied_entry(org):
    """A snapshot sent again with an earlier creation time moves the implied entry along with it."""
    run(org, pipelines=[PIPELINE])
    deal = {"external_id": "S5", "owner": "Rita Rep", "pipeline": "Sales", "stage": "Prospecting", "created_at": "2024-01-05"}
    run(org, deals=[deal])
    stages = stage_ids(org)
    earlier = {**deal, "created_at": "2024-01-05T08:00:00+00:00"}

    first, _schedule = run(org, deals=[earlier])

    assert first.counts["deals"].updated == 1
    assert first.counts["stage_changes"].created == 1
    assert first.counts["stage_changes"].deleted == 1
    assert moves_of(org, "S5") == [(None, stages["Prospecting"], utc(2024, 1, 5, 8), True)]
    assert deal_state(org, "S5") == (stages["Prospecting"], "open", None, utc(2024, 1, 5, 8))

    again, _schedule = run(org, deals=[earlier])

    assert again.counts["deals"].unchanged == 1
    assert again.counts["stage_changes"].created == 0
    assert again.counts["stage_changes"].deleted == 0
    assert again.counts["stage_changes"].unchanged == 1
    assert moves_of(org, "S5") == [(None, stages["Prospecting"], utc(2024, 1, 5, 8), True)]
