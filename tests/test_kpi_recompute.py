"""KPI snapshot recompute: period boundaries, idempotence, stale rows, drill-down equality, the task.

The organization's time zone is Europe/Berlin (UTC+1 in winter, UTC+2 from
2017-03-26), and its fiscal year starts in January unless a test sets another.
"""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.forms.models import model_to_dict
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot
from dashboards.selectors import (
    METRICS,
    deal_filter_for_subject,
    deal_list_for_metric,
    kpi_periods_available,
    kpi_row_series,
    kpi_rows,
)
from dashboards.services import kpi_snapshot_recompute
from dashboards.tasks import kpi_snapshot_recompute as kpi_snapshot_recompute_task
from pipelines.models import Deal, DealStatus
from spm.celery import app as celery_app
from spm.fiscal import parse_period
from tests.factories import (
    DealFactory,
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    StageFactory,
    TeamFactory,
    TerritoryFactory,
    UserFactory,
)

WON, LOST, OPEN = DealStatus.WON, DealStatus.LOST, DealStatus.OPEN


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def make_deal(owner, *, status=OPEN, created, closed=None, amount="1000.00", territory=None, base_amount="same"):
    with scopes_disabled():
        stage = StageFactory(pipeline=_pipeline_of(owner.organization))
        return DealFactory(
            owner=owner,
            stage=stage,
            status=status,
            created_at=created,
            closed_at=closed,
            amount=Decimal(amount),
            base_amount=Decimal(amount) if base_amount == "same" else base_amount,
            territory=territory,
        )


def _pipeline_of(organization):
    pipeline = organization.pipeline_set.first()
    return pipeline or PipelineFactory(organization=organization)


def rows_of(organization, label, grain):
    with scope(organization=organization):
        period = parse_period(label, organization.fiscal_year_start_month)
        return {row.subject: row for row in kpi_rows(organization=organization, period=period, grain=grain)}


def snapshot_values(organization):
    with scope(organization=organization):
        return sorted(
            (
                {key: value for key, value in model_to_dict(snapshot).items() if key != "computed_at"}
                for snapshot in KpiSnapshot.objects.filter(organization=organization)
            ),
            key=lambda row: (row["period_kind"], row["period_start"], row["grain"], row["subject_id"]),
        )


# --- Open pipeline at a period's end ---------------------------------------------------------


def test_open_counts_close_after_end(org, member):
    # Created in March, won in April: open when March ends, won in April.
    make_deal(member, status=WON, created=utc(2017, 3, 5, 12), closed=utc(2017, 4, 10, 12), amount="700.00")

    kpi_snapshot_recompute(organization=org)

    march = rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"]
    assert march.open_count == 1
    assert march.open_amount == Decimal("700.00")
    assert march.won_count == 0
    april = rows_of(org, "2017-04", Grain.ORGANIZATION)["Acme"]
    assert april.open_count == 0
    assert april.won_count == 1


def test_open_excludes_close_on_last_instant(org, member):
    # March ends at 2017-04-01 00:00 Berlin (CEST) = 2017-03-31 22:00 UTC. Closed one
    # microsecond earlier, the deal is closed by the end: won in March, not open.
    make_deal(member, status=WON, created=utc(2017, 3, 5, 12), closed=utc(2017, 3, 31, 21, 59, 59, 999999))

    kpi_snapshot_recompute(organization=org)

    march = rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"]
    assert march.open_count == 0
    assert march.won_count == 1


def test_open_counts_close_at_end_instant(org, member):
    # Closed at 2017-03-31 22:00 UTC = April 1st 00:00 local: still open when March
    # ends (closed_at >= end), and won on a day of April.
    make_deal(member, status=WON, created=utc(2017, 3, 5, 12), closed=utc(2017, 3, 31, 22))

    kpi_snapshot_recompute(organization=org)

    march = rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"]
    assert march.open_count == 1
    assert march.won_count == 0
    april = rows_of(org, "2017-04", Grain.ORGANIZATION)["Acme"]
    assert april.won_count == 1
    assert april.open_count == 0


def test_open_excludes_creation_at_end(org, member):
    # Created exactly when March ends: it belongs to April.
    make_deal(member, created=utc(2017, 3, 31, 22))
    make_deal(member, created=utc(2017, 3, 10, 12))

    kpi_snapshot_recompute(organization=org)

    assert rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"].open_count == 1
    assert rows_of(org, "2017-04", Grain.ORGANIZATION)["Acme"].open_count == 2


def test_open_deal_rolls_into_quarter_and_year(org, member):
    # Created 2017-02-10, still open: open at the end of Feb, Q1 and FY2017.
    make_deal(member, created=utc(2017, 2, 10, 12), amount="250.00")

    kpi_snapshot_recompute(organization=org)

    for label in ("2017-02", "2017-Q1", "2017"):
        row = rows_of(org, label, Grain.ORGANIZATION)["Acme"]
        assert row.open_count == 1, label
        assert row.open_amount == Decimal("250.00"), label
    # January ends before the deal exists, so it has no row at all.
    assert rows_of(org, "2017-01", Grain.ORGANIZATION) == {}


# --- Time zone and fiscal calendar -----------------------------------------------------------


def test_close_at_2330_local_in_march(org, member):
    # 21:30 UTC = 23:30 CEST on March 31st.
    make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 31, 21, 30))

    kpi_snapshot_recompute(organization=org)

    assert rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"].won_count == 1
    assert rows_of(org, "2017-Q1", Grain.ORGANIZATION)["Acme"].won_count == 1
    assert "Acme" not in rows_of(org, "2017-04", Grain.ORGANIZATION)


def test_close_at_0030_local_in_april(org, member):
    # 22:30 UTC on March 31st = 00:30 CEST on April 1st.
    make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 31, 22, 30))

    kpi_snapshot_recompute(organization=org)

    assert rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"].won_count == 0
    assert rows_of(org, "2017-04", Grain.ORGANIZATION)["Acme"].won_count == 1
    assert rows_of(org, "2017-Q2", Grain.ORGANIZATION)["Acme"].won_count == 1
    assert rows_of(org, "2017-Q1", Grain.ORGANIZATION)["Acme"].won_count == 0


def test_fiscal_year_starting_february(db):
    with scopes_disabled():
        organization = OrganizationFactory(name="Feb", slug="feb", fiscal_year_start_month=2, time_zone="UTC")
        rep = MembershipFactory(organization=organization, user=UserFactory(name="Rita"))
    # FY2027 = 2026-02-01 .. 2027-01-31; Q1 = Feb..Apr 2026, Q4 = Nov 2026..Jan 2027.
    make_deal(rep, status=WON, created=utc(2026, 1, 2, 12), closed=utc(2026, 1, 31, 12), amount="100.00")
    make_deal(rep, status=WON, created=utc(2026, 1, 2, 12), closed=utc(2026, 2, 1, 12), amount="200.00")
    make_deal(rep, status=WON, created=utc(2026, 1, 2, 12), closed=utc(2027, 1, 31, 12), amount="400.00")

    kpi_snapshot_recompute(organization=organization)

    assert rows_of(organization, "2026", Grain.ORGANIZATION)["Feb"].won_amount == Decimal("100.00")
    assert rows_of(organization, "2027", Grain.ORGANIZATION)["Feb"].won_amount == Decimal("600.00")
    assert rows_of(organization, "2027-Q1", Grain.ORGANIZATION)["Feb"].won_amount == Decimal("200.00")
    assert rows_of(organization, "2027-Q4", Grain.ORGANIZATION)["Feb"].won_amount == Decimal("400.00")
    with scope(organization=organization):
        years = kpi_periods_available(organization=organization, kind="year")
    assert [(year.label, year.start, year.end) for year in years] == [
        ("2027", dt.date(2026, 2, 1), dt.date(2027, 2, 1)),
        ("2026", dt.date(2025, 2, 1), dt.date(2026, 2, 1)),
    ]


# --- Idempotence and stale rows --------------------------------------------------------------


@pytest.fixture
def mixed_deals(org, member, other_rep, manager_member):
    """Deals of three reps over two quarters, with and without territory, plus awkward data."""
    with scopes_disabled():
        south = TerritoryFactory(organization=org, name="South")
        west = TerritoryFactory(organization=org, name="West")
        loner = MembershipFactory(organization=org, user=UserFactory(name="", email="loner@acme.example"))
    deals = [
        make_deal(member, status=WON, created=utc(2017, 1, 3, 9), closed=utc(2017, 2, 14, 15), territory=south),
        make_deal(member, status=LOST, created=utc(2017, 1, 20, 12), closed=utc(2017, 3, 31, 21, 30), amount="50.00"),
        make_deal(member, status=WON, created=utc(2017, 2, 1, 12), closed=utc(2017, 3, 31, 22, 30), territory=west),
        make_deal(member, created=utc(2017, 3, 3, 12), amount="80.00", territory=south),
        make_deal(other_rep, status=WON, created=utc(2017, 2, 27, 12), closed=utc(2017, 4, 2, 6), amount="333.33"),
        make_deal(other_rep, status=LOST, created=utc(2017, 4, 1, 12), closed=utc(2017, 5, 5, 12), territory=south),
        make_deal(other_rep, created=utc(2017, 5, 30, 12), base_amount=None),
        # Closed a month before it was created (bad source data): won in February, never open.
        make_deal(manager_member, status=WON, created=utc(2017, 3, 20, 12), closed=utc(2017, 2, 20, 12), amount="10.00"),
        # Created 23:59 local on 2016-12-31; closed at 00:00 local on 2017-07-01.
        make_deal(loner, status=LOST, created=utc(2016, 12, 31, 22, 59), closed=utc(2017, 6, 30, 22), amount="5.00"),
        make_deal(loner, created=utc(2017, 6, 30, 21, 59), amount="7.00", territory=west),
    ]
    return deals


def test_recompute_twice_gives_identical_rows(org, mixed_deals):
    first = kpi_snapshot_recompute(organization=org)
    rows_after_first = snapshot_values(org)

    second = kpi_snapshot_recompute(organization=org)

    assert snapshot_values(org) == rows_after_first
    assert second["rows_written"] == first["rows_written"]
    assert second["rows_deleted"] == 0


def test_recompute_removes_stale_rows_after_deal_change(org, member, other_rep):
    deal = make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 15, 12))
    kpi_snapshot_recompute(organization=org)
    assert set(rows_of(org, "2017-03", Grain.REP)) == {member.user.name}

    with scopes_disabled():
        Deal.objects.filter(pk=deal.pk).update(owner=other_rep)
    result = kpi_snapshot_recompute(organization=org)

    assert set(rows_of(org, "2017-03", Grain.REP)) == {other_rep.user.name}
    # The first rep's month, quarter and year rows were deleted.
    assert result["rows_deleted"] == 3


def test_recompute_removes_rows_of_periods_without_deals(org, member):
    deal = make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 15, 12))
    kpi_snapshot_recompute(organization=org)
    with scopes_disabled():
        deal.delete()

    result = kpi_snapshot_recompute(organization=org)

    assert result["rows_written"] == 0
    # Year, quarter and month rows of the organization, the team and the rep.
    assert result["rows_deleted"] == 9
    with scope(organization=org):
        assert KpiSnapshot.objects.count() == 0


def test_recompute_leaves_other_organizations_alone(org, member, other_org, other_org_admin):
    make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 15, 12), amount="10.00")
    make_deal(other_org_admin, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 15, 12), amount="99.00")
    kpi_snapshot_recompute(organization=other_org)
    other_rows_before = snapshot_values(other_org)

    kpi_snapshot_recompute(organization=org)

    assert rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"].won_amount == Decimal("10.00")
    assert snapshot_values(other_org) == other_rows_before


def test_recompute_skips_grains_without_subject(org, member, mixed_deals):
    kpi_snapshot_recompute(organization=org)

    # Q1 territories: South has the won Feb deal and the open March deal (80.00);
    # West has the deal won on April 1st local, so nothing in Q1 but it was open
    # at the end of March.
    territories = rows_of(org, "2017-Q1", Grain.TERRITORY)
    assert set(territories) == {"South", "West"}
    assert territories["South"].won_count == 1
    assert territories["South"].open_amount == Decimal("80.00")
    assert territories["West"].won_count == 0
    assert territories["West"].open_count == 1
    # The loner has no team, so the team grain holds only North.
    assert set(rows_of(org, "2017-Q2", Grain.TEAM)) == {"North"}
    assert "loner@acme.example" in rows_of(org, "2017-Q2", Grain.REP)


# --- Drill-down equality ---------------------------------------------------------------------


def test_drill_down_matches_every_snapshot_number(org, mixed_deals):
    kpi_snapshot_recompute(organization=org)

    with scope(organization=org):
        periods = kpi_periods_available(organization=org)
        assert {period.kind for period in periods} == {"year", "quarter", "month"}
        checked = 0
        for period in periods:
            for grain in Grain.values:
                rows = {row.subject_id: row for row in kpi_rows(organization=org, period=period, grain=grain)}
                listed = _drill_down_totals(org, period, grain)
                for subject_id, row in rows.items():
                    expected = {
                        "won": (row.won_count, row.won_amount),
                        "lost": (row.lost_count, row.lost_amount),
                        "closed": (row.won_count + row.lost_count, row.won_amount + row.lost_amount),
                        "open": (row.open_count, row.open_amount),
                    }
                    for metric in METRICS:
                        assert listed[metric].get(subject_id, (0, Decimal("0"))) == expected[metric], (
                            period.label,
                            grain,
                            row.subject,
                            metric,
                        )
                        checked += 1
                # A subject the lists show deals for has a row.
                for metric in METRICS:
                    assert set(listed[metric]) <= set(rows), (period.label, grain, metric)
    # 8 months, 4 quarters and 2 years, each with rows at several grains.
    assert checked > 100


@pytest.fixture
def pinned_now(request, monkeypatch):
    """Pin timezone.now() to the moment the test passes by indirect parametrization; the calendar runs to today."""
    monkeypatch.setattr(timezone, "now", lambda: request.param)
    return request.param


@pytest.mark.parametrize("pinned_now", [utc(2017, 7, 20, 12)], indirect=True)
def test_drill_down_is_empty_before_first_month(org, mixed_deals, pinned_now):
    kpi_snapshot_recompute(organization=org)

    with scope(organization=org):
        months_with_rows = {period.label for period in kpi_periods_available(organization=org, kind="month")}
        assert months_with_rows == {f"2017-{month:02d}" for month in range(1, 8)} | {"2016-12"}
        period = parse_period("2016-11", org.fiscal_year_start_month)
        for metric in METRICS:
            assert not deal_list_for_metric(organization=org, period=period, metric=metric).exists(), metric


def _drill_down_totals(organization, period, grain):
    """Count and Σ base_amount of each metric's drill-down list, per subject, from the deal lists."""
    totals = {}
    for metric in METRICS:
        deals = deal_list_for_metric(organization=organization, period=period, metric=metric)
        if grain == Grain.ORGANIZATION:
            groups = [(0, deals)]
        else:
            field = {"rep": "owner_id", "team": "owner__team_id", "territory": "territory_id"}[grain]
            subject_ids = set(deals.exclude(**{f"{field}__isnull": True}).values_list(field, flat=True))
            groups = [
                (subject_id, deals.filter(deal_filter_for_subject(grain=grain, subject_id=subject_id)))
                for subject_id in subject_ids
            ]
        totals[metric] = {}
        for subject_id, subject_deals in groups:
            total = subject_deals.aggregate(deal_count=Count("id"), amount=Sum("base_amount"))
            if total["deal_count"]:
                totals[metric][subject_id] = (total["deal_count"], total["amount"] or Decimal("0"))
    return totals


def test_drill_down_rejects_unknown_metric(org):
    with scope(organization=org), pytest.raises(ValueError, match="'pending'"):
        deal_list_for_metric(organization=org, period=parse_period("2017", 1), metric="pending")


def test_subject_filter_rejects_unknown_grain():
    with pytest.raises(ValueError, match="'region'"):
        deal_filter_for_subject(grain="region", subject_id=1)


# --- Selectors -------------------------------------------------------------------------------


def test_kpi_rows_is_one_query(org, mixed_deals, django_assert_num_queries):
    kpi_snapshot_recompute(organization=org)
    period = parse_period("2017-Q1", 1)

    with scope(organization=org), django_assert_num_queries(1):
        rows = kpi_rows(organization=org, period=period, grain=Grain.REP)

    # The member (won, lost, open), other_rep and loner (open at the end), the manager (won).
    assert [row.subject for row in rows] == sorted(row.subject for row in rows)
    assert len(rows) == 4


def test_kpi_rows_filters_subjects(org, member, other_rep, mixed_deals):
    kpi_snapshot_recompute(organization=org)
    period = parse_period("2017-Q1", 1)

    with scope(organization=org):
        rows = kpi_rows(organization=org, period=period, grain=Grain.REP, subject_ids={other_rep.pk})

    assert [row.subject_id for row in rows] == [other_rep.pk]


def test_kpi_row_series_fills_gaps_with_none(org, member, django_assert_num_queries):
    make_deal(member, status=WON, created=utc(2017, 1, 5, 12), closed=utc(2017, 1, 20, 12), amount="100.00")
    make_deal(member, status=WON, created=utc(2017, 1, 5, 12), closed=utc(2017, 3, 20, 12), amount="300.00")
    kpi_snapshot_recompute(organization=org)
    months = [parse_period(f"2017-{month:02d}", 1) for month in (1, 2, 3)]

    with scope(organization=org), django_assert_num_queries(1):
        series = kpi_row_series(organization=org, periods=months, grain=Grain.REP, subject_id=member.pk)

    assert [period.label for period, _row in series] == ["2017-01", "2017-02", "2017-03"]
    assert series[0][1].won_amount == Decimal("100.00")
    # February: one deal open at the month's end.
    assert series[1][1].won_amount == Decimal("0.00")
    assert series[1][1].open_count == 1
    assert series[2][1].won_amount == Decimal("300.00")


def test_kpi_row_series_none_without_row(org, member):
    make_deal(member, status=WON, created=utc(2017, 1, 5, 12), closed=utc(2017, 1, 20, 12))
    kpi_snapshot_recompute(organization=org)
    months = [parse_period("2017-01", 1), parse_period("2017-02", 1)]

    with scope(organization=org):
        series = kpi_row_series(organization=org, periods=months, grain=Grain.REP, subject_id=member.pk)

    assert series[1] == (months[1], None)


def test_periods_available_newest_first(org, member, django_assert_num_queries):
    make_deal(member, status=WON, created=utc(2017, 3, 5, 12), closed=utc(2017, 4, 2, 12))
    kpi_snapshot_recompute(organization=org)

    with scope(organization=org), django_assert_num_queries(1):
        periods = kpi_periods_available(organization=org)

    assert [period.label for period in periods] == ["2017-Q2", "2017-04", "2017-03", "2017", "2017-Q1"]


def test_periods_available_by_kind(org, member):
    make_deal(member, status=WON, created=utc(2017, 3, 5, 12), closed=utc(2017, 4, 2, 12))
    kpi_snapshot_recompute(organization=org)

    with scope(organization=org):
        quarters = kpi_periods_available(organization=org, kind="quarter")

    assert [quarter.label for quarter in quarters] == ["2017-Q2", "2017-Q1"]


# --- Task ------------------------------------------------------------------------------------


def test_task_recomputes_in_eager_mode(org, member, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 15, 12), amount="42.00")

    result = kpi_snapshot_recompute_task.delay(organization_id=org.pk).get()

    assert result["organization_id"] == org.pk
    # Organization, team and rep × month, quarter and year.
    assert result["rows_written"] == 9
    assert rows_of(org, "2017-03", Grain.ORGANIZATION)["Acme"].won_amount == Decimal("42.00")


# Today in the month of the data: its calendar is March 2017, Q1 2017 and 2017.
@pytest.mark.parametrize("pinned_now", [utc(2017, 3, 20, 12)], indirect=True)
def test_recompute_logs_start_and_end_with_ids(org, member, caplog, pinned_now):
    make_deal(member, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 15, 12))

    with caplog.at_level("INFO", logger="dashboards.services"):
        kpi_snapshot_recompute(organization=org)

    messages = [record.getMessage() for record in caplog.records if record.name == "dashboards.services"]
    assert messages[0] == f"KPI snapshot recompute started organization_id={org.pk}"
    assert messages[1].startswith(
        f"KPI snapshot recompute finished organization_id={org.pk} periods=3 rows_written=9 rows_deleted=0 "
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_recomputes_give_same_rows():
    with scopes_disabled():
        organization = OrganizationFactory(name="Parallel", slug="parallel")
        team = TeamFactory(organization=organization, name="East")
        rep = MembershipFactory(organization=organization, team=team)
    for day in range(1, 28):
        make_deal(rep, status=WON if day % 3 else LOST, created=utc(2017, 1, day, 12), closed=utc(2017, 3, day, 12))
        make_deal(rep, created=utc(2017, 2, day, 12))
    kpi_snapshot_recompute(organization=organization)
    expected = snapshot_values(organization)
    errors = []

    def run():
        try:
            kpi_snapshot_recompute(organization=organization)
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert snapshot_values(organization) == expected
