"""KPI values as the dashboard reads them: recompute, then derive rates from the snapshot rows.

Every expected value is worked out by hand in the comment above its assert.
Times are UTC; the organization's zone is Europe/Berlin, so 12:00 UTC is the
same local date.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.kpis import KpiRow, average_deal_size, pipeline_velocity, ratio, value_win_rate, win_rate
from dashboards.models import Grain
from dashboards.selectors import kpi_rows
from dashboards.services import kpi_snapshot_recompute
from pipelines.models import DealStatus
from spm.fiscal import parse_period
from tests.factories import DealFactory, MembershipFactory, PipelineFactory, StageFactory, TerritoryFactory

WON, LOST, OPEN = DealStatus.WON, DealStatus.LOST, DealStatus.OPEN


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


@pytest.fixture
def stage(org):
    with scopes_disabled():
        return StageFactory(pipeline=PipelineFactory(organization=org))


def make_deal(owner, stage, *, status=OPEN, created, closed=None, amount="1000.00", territory=None):
    with scopes_disabled():
        return DealFactory(
            owner=owner,
            stage=stage,
            status=status,
            created_at=created,
            closed_at=closed,
            amount=Decimal(amount),
            territory=territory,
        )


def won_after(owner, stage, days: str, *, closed: dt.datetime, amount="1000.00"):
    """A deal won at `closed`, created `days` (fractional) days earlier."""
    created = closed - dt.timedelta(days=float(days))
    return make_deal(owner, stage, status=WON, created=created, closed=closed, amount=amount)


def row_for(organization, label, grain, subject) -> KpiRow:
    with scope(organization=organization):
        period = parse_period(label, organization.fiscal_year_start_month)
        rows = {row.subject: row for row in kpi_rows(organization=organization, period=period, grain=grain)}
    return rows[subject]


# --- Pure maths on snapshot components -------------------------------------------------------


def test_ratio_undefined_for_zero_denominator():
    assert ratio(Decimal("5"), 0) is None


def test_win_rate_undefined_without_closed_deals():
    assert win_rate(0, 0) is None


def test_value_win_rate_of_amounts():
    # 300 / (300 + 100) = 0.75
    assert value_win_rate(Decimal("300"), Decimal("100")) == Decimal("0.75")


def test_average_deal_size_undefined_without_won_deals():
    assert average_deal_size(Decimal("0"), 0) is None


def test_velocity_undefined_for_zero_cycle():
    # Deals closed on the day they were created make the cycle 0 days: no division.
    assert pipeline_velocity(3, Decimal("0.5"), Decimal("100"), Decimal("0")) is None


def test_velocity_zero_without_open_deals():
    # Nothing open: a defined rate of 0 money per day, unlike the undefined cases.
    assert pipeline_velocity(0, Decimal("0.5"), Decimal("100"), Decimal("10")) == Decimal("0")


# --- Values after a recompute ----------------------------------------------------------------


def test_win_rate_ignores_open_deals(org, member, stage):
    # March 2017: 3 won (1000 each), 1 lost (500), 2 still open.
    for day in (6, 7, 8):
        make_deal(member, stage, status=WON, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, day, 12))
    make_deal(member, stage, status=LOST, created=utc(2017, 3, 1, 12), closed=utc(2017, 3, 9, 12), amount="500.00")
    make_deal(member, stage, created=utc(2017, 3, 2, 12))
    make_deal(member, stage, created=utc(2017, 3, 3, 12))

    kpi_snapshot_recompute(organization=org)
    row = row_for(org, "2017-03", Grain.REP, member.user.name)

    # 3 / (3 + 1) = 0.75
    assert row.win_rate == Decimal("0.75")
    # 3000 / (3000 + 500) = 6/7
    assert row.value_win_rate == Decimal(3000) / Decimal(3500)
    assert row.open_count == 2
    assert row.open_amount == Decimal("2000.00")


def test_period_without_closed_deals_has_undefined_rates(org, member, stage):
    # January 2017: one deal created and still open at the month's end, nothing closed.
    make_deal(member, stage, created=utc(2017, 1, 10, 12))

    kpi_snapshot_recompute(organization=org)
    row = row_for(org, "2017-01", Grain.ORGANIZATION, "Acme")

    assert row.open_count == 1
    assert row.win_rate is None
    assert row.value_win_rate is None
    assert row.average_deal_size is None
    assert row.sales_cycle_days_mean is None
    assert row.sales_cycle_days_median is None
    assert row.pipeline_velocity is None


def test_sales_cycle_mean_and_median_odd_count(org, member, stage):
    # April 2017, won after 1.5, 2.25 and 10 days: mean 13.75 / 3, median 2.25.
    won_after(member, stage, "1.5", closed=utc(2017, 4, 10, 12))
    won_after(member, stage, "2.25", closed=utc(2017, 4, 11, 12))
    won_after(member, stage, "10", closed=utc(2017, 4, 12, 12))

    kpi_snapshot_recompute(organization=org)
    row = row_for(org, "2017-04", Grain.REP, member.user.name)

    assert row.cycle_days_sum == Decimal("13.750000")
    assert row.sales_cycle_days_mean == Decimal("13.75") / 3
    assert row.sales_cycle_days_median == Decimal("2.25")


def test_sales_cycle_median_even_count(org, member, stage):
    # Won after 1.5, 2.25, 6 and 10 days: median (2.25 + 6) / 2 = 4.125, mean 19.75 / 4 = 4.9375.
    won_after(member, stage, "1.5", closed=utc(2017, 4, 10, 12))
    won_after(member, stage, "2.25", closed=utc(2017, 4, 11, 12))
    won_after(member, stage, "6", closed=utc(2017, 4, 12, 12))
    won_after(member, stage, "10", closed=utc(2017, 4, 13, 12))

    kpi_snapshot_recompute(organization=org)
    row = row_for(org, "2017-04", Grain.REP, member.user.name)

    assert row.sales_cycle_days_median == Decimal("4.125")
    assert row.sales_cycle_days_mean == Decimal("4.9375")


def test_sales_cycle_ignores_lost_deals(org, member, stage):
    # The lost deal took 40 days; only the won deal's 3 days count.
    won_after(member, stage, "3", closed=utc(2017, 4, 10, 12))
    make_deal(member, stage, status=LOST, created=utc(2017, 3, 1, 12), closed=utc(2017, 4, 10, 12))

    kpi_snapshot_recompute(organization=org)
    row = row_for(org, "2017-04", Grain.REP, member.user.name)

    assert row.sales_cycle_days_mean == Decimal("3")
    assert row.sales_cycle_days_median == Decimal("3")


def test_quarter_median_is_not_a_median_of_months(org, member, stage):
    # Q2 2017: April cycles 1 and 2 days, May 30 days. Months' medians are 1.5 and 30;
    # the quarter's median is the middle of all three: 2.
    won_after(member, stage, "1", closed=utc(2017, 4, 10, 12))
    won_after(member, stage, "2", closed=utc(2017, 4, 11, 12))
    won_after(member, stage, "30", closed=utc(2017, 5, 20, 12))

    kpi_snapshot_recompute(organization=org)

    assert row_for(org, "2017-04", Grain.REP, member.user.name).sales_cycle_days_median == Decimal("1.5")
    assert row_for(org, "2017-Q2", Grain.REP, member.user.name).sales_cycle_days_median == Decimal("2")
    assert row_for(org, "2017-Q2", Grain.REP, member.user.name).sales_cycle_days_mean == Decimal("11")


def test_pipeline_velocity_tiny_fixture(org, member, stage):
    # May 2017: won 1000 after 10 days and 3000 after 30 days, lost two, four open at May's end.
    won_after(member, stage, "10", closed=utc(2017, 5, 15, 12), amount="1000.00")
    won_after(member, stage, "30", closed=utc(2017, 5, 16, 12), amount="3000.00")
    for day in (17, 18):
        make_deal(member, stage, status=LOST, created=utc(2017, 5, 1, 12), closed=utc(2017, 5, day, 12), amount="500.00")
    for day in (2, 3, 4, 5):
        make_deal(member, stage, created=utc(2017, 5, day, 12), amount="100.00")

    kpi_snapshot_recompute(organization=org)
    row = row_for(org, "2017-05", Grain.REP, member.user.name)

    # win rate 2 / 4 = 0.5; average deal size 4000 / 2 = 2000; cycle (10 + 30) / 2 = 20 days.
    assert row.win_rate == Decimal("0.5")
    assert row.average_deal_size == Decimal("2000")
    assert row.sales_cycle_days_mean == Decimal("20")
    assert row.open_count == 4
    # 4 × 0.5 × 2000 / 20 = 200 per day
    assert row.pipeline_velocity == Decimal("200")


def test_team_and_territory_are_ratios_of_sums(org, member, other_rep, stage):
    with scopes_disabled():
        south = TerritoryFactory(organization=org, name="South")
    # member: won 3000 (win rate 1, value win rate 1).
    # other_rep: won 1000, lost 3 × 1000 (win rate 0.25, value win rate 0.25).
    make_deal(member, stage, status=WON, created=utc(2017, 6, 1, 12), closed=utc(2017, 6, 5, 12), amount="3000.00", territory=south)
    make_deal(other_rep, stage, status=WON, created=utc(2017, 6, 1, 12), closed=utc(2017, 6, 6, 12), territory=south)
    for day in (7, 8, 9):
        make_deal(other_rep, stage, status=LOST, created=utc(2017, 6, 1, 12), closed=utc(2017, 6, day, 12), territory=south)

    kpi_snapshot_recompute(organization=org)
    team = row_for(org, "2017-06", Grain.TEAM, "North")
    territory = row_for(org, "2017-06", Grain.TERRITORY, "South")

    # Sums: 2 won of 5 closed = 0.4, not the mean of 1 and 0.25 (0.625).
    assert team.win_rate == Decimal("0.4")
    assert territory.win_rate == Decimal("0.4")
    # 4000 / 7000 = 4/7, not the mean of 1 and 0.25.
    assert team.value_win_rate == Decimal(4000) / Decimal(7000)
    assert territory.value_win_rate == Decimal(4000) / Decimal(7000)
    # The organization row adds the same deals: 4000 / 2 = 2000.
    assert row_for(org, "2017-06", Grain.ORGANIZATION, "Acme").average_deal_size == Decimal("2000")


def test_amounts_use_base_currency(org, member, stage):
    # A USD deal of 1000 worth 900 in the base currency: KPIs sum the 900.
    with scopes_disabled():
        DealFactory(
            owner=member,
            stage=stage,
            status=WON,
            created_at=utc(2017, 6, 1, 12),
            closed_at=utc(2017, 6, 5, 12),
            amount=Decimal("1000.00"),
            currency="USD",
            base_amount=Decimal("900.00"),
        )

    kpi_snapshot_recompute(organization=org)

    assert row_for(org, "2017-06", Grain.ORGANIZATION, "Acme").won_amount == Decimal("900.00")


def test_rep_without_name_shown_by_email(org, stage):
    with scopes_disabled():
        rep = MembershipFactory(organization=org, user__name="", user__email="nameless@acme.example")
    make_deal(rep, stage, status=WON, created=utc(2017, 6, 1, 12), closed=utc(2017, 6, 5, 12))

    kpi_snapshot_recompute(organization=org)

    assert row_for(org, "2017-06", Grain.REP, "nameless@acme.example").won_count == 1
