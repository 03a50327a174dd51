"""Incremental KPI recompute after stage moves: its rows equal a full recompute's.

Each test moves deals through `deal_move_stage`, whose after-commit task runs
the incremental recompute eagerly, then saves those rows, runs the full
recompute and compares every row field by field. The snapshot calendar runs to
the local today, so the tests pin the clock: to September 2018 by default, after
the data's last close in January 2018, so that months holding nothing but open
deals are compared as well.
"""

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot
from dashboards.services import (
    kpi_snapshot_calendar_extend,
    kpi_snapshot_recompute,
    kpi_snapshot_recompute_deals,
)
from pipelines.models import Deal, DealStageChange, DealStatus, StageKind
from pipelines.services import deal_move_stage
from tests.factories import (
    DealFactory,
    DealStageChangeFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    TeamFactory,
    TerritoryFactory,
    UserFactory,
)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


TODAY = dt.datetime(2018, 9, 14, 12, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def pinned_now(request, monkeypatch):
    """Pin timezone.now() to TODAY, or to the moment an indirect parametrization passes."""
    moment = getattr(request, "param", TODAY)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment


def snapshot_rows(organization) -> list[dict]:
    with scopes_disabled():
        rows = KpiSnapshot.objects.filter(organization=organization)
        return sorted(
            (
                {key: value for key, value in model_to_dict(row).items() if key not in ("id", "computed_at")}
                for row in rows
            ),
            key=lambda row: (row["period_kind"], row["period_start"], row["grain"], row["subject_id"]),
        )


def organization_rows(organization) -> list[dict]:
    return [row for row in snapshot_rows(organization) if row["grain"] == Grain.ORGANIZATION]


@pytest.fixture
def stages(org):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        return {
            "open": StageFactory(pipeline=pipeline, name="Engaging", order=1, kind=StageKind.OPEN),
            "later": StageFactory(pipeline=pipeline, name="Proposal", order=2, kind=StageKind.OPEN),
            "won": StageFactory(pipeline=pipeline, name="Won", order=3, kind=StageKind.WON),
            "lost": StageFactory(pipeline=pipeline, name="Lost", order=4, kind=StageKind.LOST),
        }


@pytest.fixture
def book(org, stages):
    """Sixty deals of four reps in two teams and two territories over 2017, each with its history."""
    rng = random.Random(7)
    with scopes_disabled():
        north, south = TeamFactory(organization=org, name="North"), TeamFactory(organization=org, name="South")
        east, west = TerritoryFactory(organization=org, name="East"), TerritoryFactory(organization=org, name="West")
        reps = [
            MembershipFactory(organization=org, team=team, user=UserFactory(name=f"Rep {index}"))
            for index, team in enumerate((north, north, south, None))
        ]
        deals = []
        for index in range(60):
            created = utc(2017, 1, 1, 12) + dt.timedelta(days=rng.randrange(0, 300), hours=rng.randrange(0, 24))
            kind = rng.choice(("open", "won", "lost"))
            closed = created + dt.timedelta(days=rng.randrange(1, 90)) if kind != "open" else None
            deal = DealFactory(
                owner=reps[index % 4],
                pipeline=stages["open"].pipeline,
                stage=stages[kind],
                status=kind,
                created_at=created,
                closed_at=closed,
                amount=Decimal(rng.randrange(100, 10_000)),
                base_amount=Decimal(rng.randrange(100, 10_000)) if index % 11 else None,
                territory=(east, west, None)[index % 3],
            )
            DealStageChangeFactory(deal=deal, from_stage=None, to_stage=stages["open"], changed_at=created)
            if closed is not None:
                DealStageChangeFactory(deal=deal, from_stage=stages["open"], to_stage=stages[kind], changed_at=closed)
            deals.append(deal)
    kpi_snapshot_recompute(organization=org)
    return deals


def move(deal, stage, at, django_capture_on_commit_callbacks):
    with scope(organization=deal.organization), django_capture_on_commit_callbacks(execute=True):
        deal_move_stage(deal=deal, to_stage=stage, changed_at=at)


def latest_move(deal) -> dt.datetime:
    with scopes_disabled():
        return deal.stage_changes.order_by("-changed_at").values_list("changed_at", flat=True).first()


def test_random_moves_match_full_recompute(org, stages, book, django_capture_on_commit_callbacks):
    rng = random.Random(2017)
    for _ in range(8):
        deal = rng.choice(book)
        with scopes_disabled():
            deal.refresh_from_db()
        target = rng.choice([stage for stage in stages.values() if stage.pk != deal.stage_id])
        at = latest_move(deal) + dt.timedelta(days=rng.randrange(0, 40), hours=rng.randrange(1, 24))
        # Stay inside 2017, so the moves keep the data's first and last month.
        at = min(at, utc(2017, 12, 20, 12))
        if at <= latest_move(deal):
            continue
        move(deal, target, at, django_capture_on_commit_callbacks)
        incremental = snapshot_rows(org)

        kpi_snapshot_recompute(organization=org)

        assert incremental == snapshot_rows(org)


def test_reopened_old_close_matches_full(org, stages, book, django_capture_on_commit_callbacks):
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.WON).order_by("closed_at").first()
    move(deal, stages["later"], utc(2017, 11, 30, 12), django_capture_on_commit_callbacks)
    incremental = snapshot_rows(org)

    kpi_snapshot_recompute(organization=org)

    assert incremental == snapshot_rows(org)


def test_move_into_new_month_matches_full(org, stages, book, django_capture_on_commit_callbacks):
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.OPEN).first()

    move(deal, stages["won"], utc(2018, 3, 5, 12), django_capture_on_commit_callbacks)
    with scopes_disabled():
        months = set(
            KpiSnapshot.objects.filter(organization=org, grain=Grain.ORGANIZATION, period_kind="month").values_list(
                "period_start", flat=True
            )
        )
    assert dt.date(2018, 3, 1) in months
    incremental = snapshot_rows(org)

    kpi_snapshot_recompute(organization=org)

    assert incremental == snapshot_rows(org)


def test_earlier_periods_left_alone(org, stages, book, monkeypatch):
    # A later clock, so that rewritten rows get a new computed_at.
    monkeypatch.setattr(timezone, "now", lambda: TODAY + dt.timedelta(hours=1))
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.OPEN).order_by("-created_at").first()
        before = dict(KpiSnapshot.objects.filter(organization=org).values_list("id", "computed_at"))

        result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[deal.pk], since=utc(2017, 12, 10, 12))

        after = KpiSnapshot.objects.filter(organization=org).values_list("id", "period_end", "computed_at")
        rewritten_ends = {end for pk, end, computed_at in after if computed_at != before.get(pk)}
    assert result["mode"] == "incremental"
    # December 2017 and later months, Q4 2017 and later quarters, 2017 and 2018.
    assert min(rewritten_ends) == dt.date(2018, 1, 1)


def test_several_deals_in_one_run_match_full(org, stages, book, django_capture_on_commit_callbacks):
    with scopes_disabled():
        # Deals of different reps, territories and teams (the fourth rep has none).
        deals = [next(deal for deal in book if deal.owner_id == rep_id) for rep_id in sorted({d.owner_id for d in book})]
        for deal in deals:
            deal.refresh_from_db()
    earliest = utc(2017, 12, 31, 12)
    for index, deal in enumerate(deals):
        target = stages["lost"] if deal.status == DealStatus.WON else stages["won"]
        at = max(latest_move(deal), utc(2017, 6, 1, 12)) + dt.timedelta(days=index + 1)
        earliest = min(earliest, at, deal.closed_at or at)
        # No after-commit task runs, so the one incremental run below covers all four moves.
        with scope(organization=org), django_capture_on_commit_callbacks(execute=False):
            deal_move_stage(deal=deal, to_stage=target, changed_at=at)

    with scopes_disabled():
        result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[deal.pk for deal in deals], since=earliest)
    incremental = snapshot_rows(org)
    kpi_snapshot_recompute(organization=org)

    assert result["mode"] == "incremental"
    assert incremental == snapshot_rows(org)


# Today before the moves below, so that they move the data's end.
@pytest.mark.parametrize("pinned_now", [utc(2018, 2, 15, 12)], indirect=True)
def test_move_past_data_end_stays_incremental(org, stages, book, django_capture_on_commit_callbacks):
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.OPEN).order_by("created_at").first()
        last_month = (
            KpiSnapshot.objects.filter(organization=org, grain=Grain.ORGANIZATION, period_kind="month")
            .order_by("-period_start")
            .values_list("period_start", flat=True)
            .first()
        )
    at = utc(2018, 6, 5, 12)
    with scope(organization=org), django_capture_on_commit_callbacks(execute=False):
        deal_move_stage(deal=deal, to_stage=stages["won"], changed_at=at)

    with scopes_disabled():
        result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[deal.pk], since=at)
    incremental = snapshot_rows(org)
    kpi_snapshot_recompute(organization=org)

    # Months between the old end and June 2018 carry open deals of every rep.
    assert last_month < dt.date(2018, 4, 1)
    assert result["mode"] == "incremental"
    assert incremental == snapshot_rows(org)


# Today before the moves below, so that they move the data's end.
@pytest.mark.parametrize("pinned_now", [utc(2018, 2, 15, 12)], indirect=True)
def test_move_shrinking_data_end_recomputes_fully(org, stages, book, django_capture_on_commit_callbacks):
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.OPEN).order_by("created_at").first()
    with scope(organization=org), django_capture_on_commit_callbacks(execute=True):
        deal_move_stage(deal=deal, to_stage=stages["won"], changed_at=utc(2018, 6, 5, 12))
    with scope(organization=org), django_capture_on_commit_callbacks(execute=False):
        deal_move_stage(deal=deal, to_stage=stages["open"], changed_at=utc(2018, 6, 6, 12))
    with scopes_disabled():
        deal.refresh_from_db()
        Deal.objects.filter(pk=deal.pk).update(created_at=utc(2017, 3, 1, 12))
        DealStageChange.objects.filter(deal=deal, changed_at__gte=utc(2018, 1, 1)).delete()

        result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[deal.pk], since=utc(2017, 3, 1, 12))
    incremental = snapshot_rows(org)
    kpi_snapshot_recompute(organization=org)

    assert result["mode"] == "full"
    assert incremental == snapshot_rows(org)


def test_months_after_data_hold_open_deals(org, book):
    with scopes_disabled():
        open_now = Deal.objects.filter(organization=org, closed_at__isnull=True).count()
        rows = dict(
            KpiSnapshot.objects.filter(organization=org, grain=Grain.ORGANIZATION).values_list(
                "period_start", "open_count"
            ).filter(period_kind="month", period_start__gte=dt.date(2018, 2, 1))
        )

    # February (after the last close) to September 2018 (today), none later.
    assert sorted(rows) == [dt.date(2018, month, 1) for month in range(2, 10)]
    assert set(rows.values()) == {open_now}


def test_new_month_extends_like_full(org, book, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: utc(2018, 11, 2, 9))

    with scopes_disabled():
        result = kpi_snapshot_calendar_extend(organization=org)
        again = kpi_snapshot_calendar_extend(organization=org)
        quarters = set(
            KpiSnapshot.objects.filter(organization=org, grain=Grain.ORGANIZATION, period_kind="quarter").values_list(
                "period_start", flat=True
            )
        )
    extended = snapshot_rows(org)
    kpi_snapshot_recompute(organization=org)

    assert result["mode"] == "incremental"
    assert again is None
    assert dt.date(2018, 10, 1) in quarters
    assert extended == snapshot_rows(org)


def test_move_after_new_month_matches_full(org, stages, book, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(timezone, "now", lambda: utc(2019, 2, 1, 9))
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.OPEN).order_by("created_at").first()

    # No run extended the calendar since September 2018: the move's recompute adds the months.
    move(deal, stages["lost"], utc(2019, 1, 20, 12), django_capture_on_commit_callbacks)
    incremental = snapshot_rows(org)
    kpi_snapshot_recompute(organization=org)

    assert incremental == snapshot_rows(org)


def test_wins_at_year_boundary_match_full(org, stages, book, django_capture_on_commit_callbacks):
    # Fiscal years from October: local midnight of 1 October 2017 starts a month, a quarter and a year.
    org.fiscal_year_start_month = 10
    org.save(update_fields=["fiscal_year_start_month"])
    kpi_snapshot_recompute(organization=org)
    boundary = dt.datetime(2017, 10, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    with scopes_disabled():
        first, second = Deal.objects.filter(
            organization=org, status=DealStatus.OPEN, created_at__lt=boundary - dt.timedelta(days=1)
        ).order_by("created_at")[:2]

    # One deal won at the first instant of the new fiscal year, one at the last microsecond of the old one.
    move(first, stages["won"], boundary, django_capture_on_commit_callbacks)
    move(second, stages["won"], boundary - dt.timedelta(microseconds=1), django_capture_on_commit_callbacks)
    incremental = snapshot_rows(org)
    with scopes_disabled():
        won_in_year = Deal.objects.filter(
            organization=org, status=DealStatus.WON, closed_at__gte=boundary, closed_at__lt=boundary.replace(year=2018)
        ).count()
    year_row = next(
        row
        for row in incremental
        if (row["period_kind"], row["period_start"], row["grain"]) == ("year", dt.date(2017, 10, 1), Grain.ORGANIZATION)
    )
    kpi_snapshot_recompute(organization=org)

    assert year_row["won_count"] == won_in_year
    assert incremental == snapshot_rows(org)


def test_run_without_deals_matches_full(org, book):
    with scopes_disabled():
        deal = Deal.objects.filter(organization=org, status=DealStatus.WON).order_by("-closed_at").first()
        # No signal and no task: only the run below reads the new amount, which counts from the creation on.
        Deal.objects.filter(pk=deal.pk).update(base_amount=Decimal("12345.67"))
    before = organization_rows(org)

    with scopes_disabled():
        result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[], since=deal.created_at)
    incremental = organization_rows(org)
    kpi_snapshot_recompute(organization=org)

    assert result["mode"] == "incremental"
    assert incremental != before
    assert incremental == organization_rows(org)


@pytest.mark.parametrize(
    ("time_zone", "fiscal_year_start_month"), [("Pacific/Auckland", 4), ("America/Los_Angeles", 7)]
)
def test_random_runs_in_zone_match_full(org, stages, book, time_zone, fiscal_year_start_month):
    """Runs over several deals of different subjects, with fiscal years that do not start in January."""
    org.time_zone = time_zone
    org.fiscal_year_start_month = fiscal_year_start_month
    org.save(update_fields=["time_zone", "fiscal_year_start_month"])
    kpi_snapshot_recompute(organization=org)
    rng = random.Random(fiscal_year_start_month)
    for _ in range(5):
        deals = rng.sample(book, 3)
        earliest = utc(2017, 12, 31, 12)
        for deal in deals:
            with scopes_disabled():
                deal.refresh_from_db()
            target = rng.choice([stage for stage in stages.values() if stage.pk != deal.stage_id])
            at = latest_move(deal) + dt.timedelta(days=rng.randrange(0, 60), hours=rng.randrange(1, 24))
            # Stay inside 2017, so the moves keep the data's first and last month.
            at = min(at, utc(2017, 12, 20, 12))
            if at <= latest_move(deal):
                continue
            earliest = min(earliest, at, deal.closed_at or at)
            with scope(organization=org):
                deal_move_stage(deal=deal, to_stage=target, changed_at=at)

        with scopes_disabled():
            result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[deal.pk for deal in deals], since=earliest)
        incremental = snapshot_rows(org)
        kpi_snapshot_recompute(organization=org)

        assert result["mode"] == "incremental"
        assert incremental == snapshot_rows(org)


def test_deleted_deals_match_full(org, book):
    """Deals deleted in the CRM leave the won, lost and open counts of their subjects and the organization."""
    with scopes_disabled():
        deleted = [
            next(deal for deal in book if deal.status == status and deal.territory_id is not None)
            for status in (DealStatus.WON, DealStatus.LOST, DealStatus.OPEN)
        ]
        Deal.all_objects.filter(pk__in=[deal.pk for deal in deleted]).update(deleted_at=TODAY)
        since = min(deal.created_at for deal in deleted)

        result = kpi_snapshot_recompute_deals(organization=org, deal_ids=[deal.pk for deal in deleted], since=since)
    incremental = snapshot_rows(org)
    kpi_snapshot_recompute(organization=org)

    assert result["mode"] == "incremental"
    assert incremental == snapshot_rows(org)
