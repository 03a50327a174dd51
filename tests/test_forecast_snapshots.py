"""System forecast snapshots: the state as of a horizon from the stage history, once per key, and the task.

Q2 2017 in Europe/Berlin starts at 2017-03-31 22:00 UTC; its 4-week horizon is
2017-06-03 local midnight (2017-06-02 22:00 UTC).
- A: created 03-01 in Prospecting, Proposal (60 %) on 03-15, won on 05-10; 10,000.00,
  expected 05-10. At the start it is open in Proposal: 6,000.00 weighted. At 4 weeks
  it is won in Q2: 10,000.00 won so far.
- B: created 04-10, Proposal, lost on 05-20; expected 05-20. Not there at the start,
  lost at 4 weeks: nothing.
- C: no recorded move, open in Negotiation (90 %), 1,000.00 expected 06-15: 900.00 at both.
"""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scope, scopes_disabled

from goals import tasks
from goals.forecasts import snapshots
from goals.models import ForecastHorizon, ForecastSnapshot
from pipelines.models import DealStatus, StageKind
from spm.fiscal import fiscal_quarter, period_containing
from spm.models import Role
from tests.factories import (
    DealFactory,
    DealStageChangeFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
)

Q2 = fiscal_quarter(2017, 2, 1)


def utc(month, day, year=2017, hour=12):
    return dt.datetime(year, month, day, hour, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def history(org, member):
    with scopes_disabled():
        pipeline_row = PipelineFactory(organization=org)
        prospecting = StageFactory(pipeline=pipeline_row, name="Prospecting", order=1, probability=10)
        proposal = StageFactory(pipeline=pipeline_row, name="Proposal", order=2, probability=60)
        negotiation = StageFactory(pipeline=pipeline_row, name="Negotiation", order=3, probability=90)
        won = StageFactory(pipeline=pipeline_row, name="Won", order=4, probability=100, kind=StageKind.WON)
        lost = StageFactory(pipeline=pipeline_row, name="Lost", order=5, probability=0, kind=StageKind.LOST)
        deal_a = DealFactory(
            owner=member,
            stage=won,
            amount=Decimal("10000.00"),
            status=DealStatus.WON,
            created_at=utc(3, 1),
            closed_at=utc(5, 10),
            expected_close_on=dt.date(2017, 5, 10),
        )
        DealStageChangeFactory(deal=deal_a, to_stage=prospecting, changed_at=utc(3, 1))
        DealStageChangeFactory(deal=deal_a, from_stage=prospecting, to_stage=proposal, changed_at=utc(3, 15))
        DealStageChangeFactory(deal=deal_a, from_stage=proposal, to_stage=won, changed_at=utc(5, 10))
        deal_b = DealFactory(
            owner=member,
            stage=lost,
            amount=Decimal("3000.00"),
            status=DealStatus.LOST,
            created_at=utc(4, 10),
            closed_at=utc(5, 20),
            expected_close_on=dt.date(2017, 5, 20),
        )
        DealStageChangeFactory(deal=deal_b, to_stage=proposal, changed_at=utc(4, 10))
        DealStageChangeFactory(deal=deal_b, from_stage=proposal, to_stage=lost, changed_at=utc(5, 20))
        DealFactory(
            owner=member,
            stage=negotiation,
            amount=Decimal("1000.00"),
            created_at=utc(3, 1),
            expected_close_on=dt.date(2017, 6, 15),
        )


def test_horizon_days_of_a_quarter_and_a_month():
    assert snapshots.horizon_day(Q2, ForecastHorizon.START) == dt.date(2017, 4, 1)
    assert snapshots.horizon_day(Q2, ForecastHorizon.WEEKS_8) == dt.date(2017, 5, 6)
    assert snapshots.horizon_day(Q2, ForecastHorizon.WEEKS_4) == dt.date(2017, 6, 3)
    assert snapshots.horizon_day(Q2, ForecastHorizon.WEEKS_1) == dt.date(2017, 6, 24)
    march = period_containing(dt.date(2017, 3, 5), "month", 1)
    assert snapshots.horizon_day(march, ForecastHorizon.WEEKS_8) is None
    assert snapshots.horizon_day(march, ForecastHorizon.WEEKS_4) == dt.date(2017, 3, 4)


def test_system_forecast_as_of_reads_stage_history(org, member, history):
    with scope(organization=org):
        at_start = snapshots.system_forecast_as_of(
            organization=org, period=Q2, as_of=snapshots.horizon_instant(org, Q2, ForecastHorizon.START)
        )
        at_4_weeks = snapshots.system_forecast_as_of(
            organization=org, period=Q2, as_of=snapshots.horizon_instant(org, Q2, ForecastHorizon.WEEKS_4)
        )

    assert at_start[member.pk] == (Decimal("6900.00"), Decimal("0"))
    assert at_4_weeks[member.pk] == (Decimal("900.00"), Decimal("10000.00"))


def test_snapshot_recorded_once_per_key(org, member, other_rep, history):
    just_after_start = utc(3, 31, hour=22) + dt.timedelta(minutes=20)
    with scope(organization=org):
        inserted = snapshots.forecast_snapshot_record(
            organization=org, period=Q2, horizon=ForecastHorizon.START, now=just_after_start
        )
        again = snapshots.forecast_snapshot_record(
            organization=org, period=Q2, horizon=ForecastHorizon.START, now=just_after_start
        )
        future = snapshots.forecast_snapshot_record(
            organization=org, period=Q2, horizon=ForecastHorizon.WEEKS_8, now=just_after_start
        )
        row = ForecastSnapshot.objects.get(membership=member, horizon=ForecastHorizon.START)
        other_row = ForecastSnapshot.objects.get(membership=other_rep, horizon=ForecastHorizon.START)

    # Every member but the admin gets a row; the fixtures have a manager and two reps.
    assert inserted == 3
    assert again == 0
    assert future == 0
    assert row.weighted_pipeline_amount == Decimal("6900.00")
    assert row.won_amount == Decimal("0")
    assert row.forecast_amount == Decimal("6900.00")
    assert row.is_reconstructed is False
    assert other_row.forecast_amount == Decimal("0")


def test_snapshot_amounts_round_half_up(org, member):
    # 10.10 × 25 % is exactly 2.525, which half-even rounding would store as 2.52.
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org), name="Qualified", probability=25)
        DealFactory(
            owner=member,
            stage=stage,
            amount=Decimal("10.10"),
            created_at=utc(3, 1),
            expected_close_on=dt.date(2017, 6, 15),
        )
    just_after_start = utc(3, 31, hour=22) + dt.timedelta(minutes=20)

    with scope(organization=org):
        snapshots.forecast_snapshot_record(organization=org, period=Q2, horizon=ForecastHorizon.START, now=just_after_start)
        row = ForecastSnapshot.objects.get(membership=member, horizon=ForecastHorizon.START)

    assert row.weighted_pipeline_amount == Decimal("2.53")
    assert row.forecast_amount == Decimal("2.53")


def test_backfill_marks_rows_reconstructed(org, member, history):
    with scope(organization=org):
        inserted = snapshots.forecast_snapshot_backfill(organization=org, periods=[Q2], now=utc(12, 1))
        rows = ForecastSnapshot.objects.filter(membership=member).order_by("as_of")

        assert inserted == 2 * 4
        assert [row.horizon for row in rows] == ["start", "8w", "4w", "1w"]
        assert all(row.is_reconstructed for row in rows)
        assert rows.get(horizon=ForecastHorizon.WEEKS_4).forecast_amount == Decimal("10900.00")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "1,024 snapshot rows written for 32 periods (2017-Q1 to 2024-Q4).\n"),
        ("de", "1.024 Snapshot-Zeilen für 32 Zeiträume geschrieben (2017-Q1 bis 2024-Q4).\n"),
    ],
)
def test_backfill_command_output_language(org, member, history, language, expected):
    with scopes_disabled():
        org.language = language
        org.save(update_fields=["language"])
        # With the fixtures' manager and rep, 8 members × 4 horizons × 32 quarters = 1,024 rows.
        for _index in range(6):
            MembershipFactory(organization=org, role=Role.REP)
    output = io.StringIO()

    call_command("forecast_backfill", "--org", "acme", "--from", "2017-Q1", "--to", "2024-Q4", stdout=output)

    assert output.getvalue() == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "--from 2017-03 is not a period of the organization's forecast kind (Quarter); give one such as 2017-Q1."),
        ("de", "--from 2017-03 ist kein Zeitraum der Forecast-Art der Organisation (Quartal); geben Sie einen wie 2017-Q1 an."),
    ],
)
def test_backfill_command_names_period_kind(org, language, expected):
    with scopes_disabled():
        org.language = language
        org.save(update_fields=["language"])

    with pytest.raises(CommandError) as raised:
        call_command("forecast_backfill", "--org", "acme", "--from", "2017-03")

    assert str(raised.value) == expected


def test_snapshot_task_runs_per_organization_and_is_idempotent(org, member, other_org):
    first = tasks.forecast_snapshot_take.delay(organization_id=org.pk).get()
    second = tasks.forecast_snapshot_take.delay(organization_id=org.pk).get()
    enqueued = tasks.forecast_snapshot_schedule.delay().get()

    assert first > 0
    assert second == 0
    assert enqueued == 2
    with scopes_disabled():
        assert ForecastSnapshot.objects.filter(organization=other_org).count() == 0


@pytest.mark.worker
def test_snapshot_task_through_real_worker(celery_worker, org, member):
    result = tasks.forecast_snapshot_take.delay(organization_id=org.pk)

    inserted = result.get(timeout=120)

    with scopes_disabled():
        stored = ForecastSnapshot.objects.filter(organization=org, membership=member).count()
    assert inserted > 0
    # The current and the previous quarter have passed at least their start horizon.
    assert stored >= 2
