"""Quota attainment: credit rules, ratio of sums, fiscal periods, pacing, projection and coverage.

Scenario (organization Acme, EUR, Europe/Berlin, fiscal year = calendar year),
Q2 2017 = 2017-04-01 … 2017-06-30, 91 days; every time is 12:00 UTC unless noted.

team North (manager_member): member and other_rep; team South: carl.
Rep quotas for Q2, won revenue: member 10,000.00, other_rep 2,000.00, carl 6,000.00.
- member: won 4,000.00 (05-08) and 1,000.00 (06-09); open 2,500.00 expected to close
  06-20 and open 9,000.00 expected in Q3 (not in Q2's pipeline).
- other_rep: won 3,000.00 (04-20); open 400.00 expected 06-01.
- carl: won 1,000.00 (05-02).

Over the whole quarter member has 5,000 / 10,000 = 0.5. As of MAY_15 only what
closed by that day counts: member 4,000 / 10,000 = 0.4 (the 06-09 win comes
later), other_rep 3,000 / 2,000 = 1.5, so North is 7,000 / 12,000 as a ratio of
sums (the mean of ratios would be 0.95).
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from goals.attainment import (
    attainment_get,
    attainment_list,
    coverage_ratio,
    credited_values,
    elapsed_share,
    open_pipeline_values,
)
from goals.models import Assignment, QuotaLevel, QuotaMetric
from pipelines.models import Activity, ActivityKind, DealStatus, StageKind
from spm.fiscal import fiscal_quarter
from spm.models import Role
from tests.attainment_data import quota_create
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    TeamFactory,
    UserFactory,
)

Q2 = fiscal_quarter(2017, 2, 1)
REP, TEAM = QuotaLevel.REP, QuotaLevel.TEAM
WON_REVENUE = QuotaMetric.WON_REVENUE
MAY_15 = dt.date(2017, 5, 15)


def utc(month, day, year=2017, hour=12, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.timezone.utc)


@pytest.fixture
def stages(org):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        return {
            DealStatus.OPEN: StageFactory(pipeline=pipeline, name="Qualify", order=1, kind=StageKind.OPEN),
            DealStatus.WON: StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON),
            DealStatus.LOST: StageFactory(pipeline=pipeline, name="Lost", order=3, kind=StageKind.LOST),
        }


def won(owner, stages, amount, closed_at, created_at=None):
    return DealFactory(
        owner=owner,
        stage=stages[DealStatus.WON],
        status=DealStatus.WON,
        amount=Decimal(amount),
        created_at=created_at or utc(1, 10),
        closed_at=closed_at,
    )


def open_deal(owner, stages, amount, expected_close_on, created_at=None):
    return DealFactory(
        owner=owner,
        stage=stages[DealStatus.OPEN],
        status=DealStatus.OPEN,
        amount=Decimal(amount),
        created_at=created_at or utc(1, 10),
        expected_close_on=expected_close_on,
    )


def q2_revenue_row(org, subject, *, level=REP, today=MAY_15):
    """Return the Q2 won-revenue attainment of `subject`, a membership or (with level=TEAM) a team, on `today`."""
    with scope(organization=org):
        return attainment_get(organization=org, period=Q2, metric=WON_REVENUE, level=level, subject_id=subject.pk, today=today)


@pytest.fixture
def carl(org):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South")
        return MembershipFactory(
            organization=org, role=Role.REP, team=south, user=UserFactory(email="carl@acme.example", name="Carl")
        )


@pytest.fixture
def scenario(org, member, other_rep, carl, stages):
    with scopes_disabled():
        quota_create(member, "10000.00")
        quota_create(other_rep, "2000.00")
        quota_create(carl, "6000.00")
        won(member, stages, "4000.00", utc(5, 8))
        won(member, stages, "1000.00", utc(6, 9))
        open_deal(member, stages, "2500.00", dt.date(2017, 6, 20))
        open_deal(member, stages, "9000.00", dt.date(2017, 7, 20))
        won(other_rep, stages, "3000.00", utc(4, 20))
        open_deal(other_rep, stages, "400.00", dt.date(2017, 6, 1))
        won(carl, stages, "1000.00", utc(5, 2))
    return org


def test_rep_credit_is_won_amount_by_owner(scenario, member, other_rep, carl):
    with scope(organization=scenario):
        credited = credited_values(organization=scenario, period=Q2, metric=WON_REVENUE, level=REP)

    assert credited == {member.pk: Decimal("5000.00"), other_rep.pk: Decimal("3000.00"), carl.pk: Decimal("1000.00")}


def test_won_deals_metric_counts_deals(scenario, member, other_rep, carl):
    with scope(organization=scenario):
        credited = credited_values(organization=scenario, period=Q2, metric=QuotaMetric.WON_DEALS, level=REP)

    assert credited == {member.pk: Decimal(2), other_rep.pk: Decimal(1), carl.pk: Decimal(1)}


def test_team_attainment_is_ratio_of_sums(scenario, team):
    north = q2_revenue_row(scenario, team, level=TEAM)

    assert north.credited == Decimal("7000.00")
    assert north.quota == Decimal("12000.00")
    assert north.attainment == Decimal("7000") / Decimal("12000")
    assert north.attainment != Decimal("0.95")  # the mean of 0.4 and 1.5


def test_rep_attainment_divides_credit_by_quota(scenario, member, other_rep):
    with scope(organization=scenario):
        rows = {row.subject_id: row for row in attainment_list(organization=scenario, period=Q2, metric=WON_REVENUE, level=REP, today=MAY_15)}

    assert rows[member.pk].attainment == Decimal("0.4")
    assert rows[other_rep.pk].attainment == Decimal("1.5")


def test_credit_as_of_a_day_ignores_later_closes(scenario, member):
    with scope(organization=scenario):
        credited = credited_values(organization=scenario, period=Q2, metric=WON_REVENUE, level=REP, as_of=MAY_15)
        row = q2_revenue_row(scenario, member)

    assert credited[member.pk] == Decimal("4000.00")
    assert row.credited == Decimal("4000.00")


def test_credit_as_of_a_day_counts_that_local_day_to_its_end(org, member, stages):
    with scopes_disabled():
        # 23:30 and 00:30 in Berlin summer time (UTC+2).
        won(member, stages, "100.00", utc(5, 15, hour=21, minute=30))
        won(member, stages, "20.00", utc(5, 15, hour=22, minute=30))

    with scope(organization=org):
        credited = credited_values(organization=org, period=Q2, metric=WON_REVENUE, level=REP, as_of=MAY_15)

    assert credited == {member.pk: Decimal("100.00")}


def test_credit_as_of_a_day_before_the_period_is_empty(scenario):
    with scope(organization=scenario):
        credited = credited_values(
            organization=scenario, period=Q2, metric=WON_REVENUE, level=REP, as_of=dt.date(2017, 3, 31)
        )

    assert credited == {}


def test_team_credit_follows_assignment_on_close_date(org, member, team, carl, stages):
    south = carl.team
    with scopes_disabled():
        Assignment.objects.create(
            organization=org, membership=member, team=team, valid_from=dt.date(2017, 1, 1), valid_to=dt.date(2017, 5, 15)
        )
        Assignment.objects.create(organization=org, membership=member, team=south, valid_from=dt.date(2017, 5, 15))
        won(member, stages, "100.00", utc(5, 14))
        won(member, stages, "20.00", utc(5, 15))

    with scope(organization=org):
        credited = credited_values(organization=org, period=Q2, metric=WON_REVENUE, level=TEAM)

    assert credited == {team.pk: Decimal("100.00"), south.pk: Decimal("20.00")}


def test_team_credit_without_assignments_uses_membership_team(org, member, team, stages):
    with scopes_disabled():
        won(member, stages, "70.00", utc(5, 14))

    with scope(organization=org):
        credited = credited_values(organization=org, period=Q2, metric=WON_REVENUE, level=TEAM)

    assert credited == {team.pk: Decimal("70.00")}


def test_team_credit_outside_every_assignment_is_nobodys(org, member, team, stages):
    with scopes_disabled():
        # The member's only assignment ends before the close date, so no team is credited.
        Assignment.objects.create(
            organization=org, membership=member, team=team, valid_from=dt.date(2016, 1, 1), valid_to=dt.date(2017, 1, 1)
        )
        won(member, stages, "70.00", utc(5, 14))

    with scope(organization=org):
        credited = credited_values(organization=org, period=Q2, metric=WON_REVENUE, level=TEAM)

    assert credited == {}


def test_parent_team_collects_child_team_credit(org, member, team, carl, stages):
    south = carl.team
    with scopes_disabled():
        south.parent = team
        south.save(update_fields=["parent"])
        won(member, stages, "70.00", utc(5, 14))
        won(carl, stages, "5.00", utc(5, 14))

    with scope(organization=org):
        credited = credited_values(organization=org, period=Q2, metric=WON_REVENUE, level=TEAM)

    assert credited == {team.pk: Decimal("75.00"), south.pk: Decimal("5.00")}


def test_close_uses_local_date_of_org_zone(org, member, stages):
    with scopes_disabled():
        # 2017-06-30 22:30 UTC is 2017-07-01 00:30 in Berlin: the third quarter.
        won(member, stages, "50.00", utc(6, 30, hour=22, minute=30))
        won(member, stages, "7.00", utc(6, 30, hour=21, minute=30))

    with scope(organization=org):
        q2 = credited_values(organization=org, period=Q2, metric=WON_REVENUE, level=REP)
        q3 = credited_values(organization=org, period=fiscal_quarter(2017, 3, 1), metric=WON_REVENUE, level=REP)

    assert q2 == {member.pk: Decimal("7.00")}
    assert q3 == {member.pk: Decimal("50.00")}


def test_february_fiscal_year_splits_quarters(org, member, stages):
    with scopes_disabled():
        org.fiscal_year_start_month = 2
        org.save(update_fields=["fiscal_year_start_month"])
        won(member, stages, "31.00", utc(1, 31))
        won(member, stages, "1.00", utc(2, 1))
    # FY2017 runs 2016-02-01 … 2017-01-31, so its Q4 ends on 31 January; FY2018's Q1 starts 1 February.
    q4_fy2017 = fiscal_quarter(2017, 4, 2)
    q1_fy2018 = fiscal_quarter(2018, 1, 2)

    with scope(organization=org):
        q4 = credited_values(organization=org, period=q4_fy2017, metric=WON_REVENUE, level=REP)
        q1 = credited_values(organization=org, period=q1_fy2018, metric=WON_REVENUE, level=REP)

    assert q4_fy2017.start == dt.date(2016, 11, 1)
    assert q1_fy2018.start == dt.date(2017, 2, 1)
    assert q4 == {member.pk: Decimal("31.00")}
    assert q1 == {member.pk: Decimal("1.00")}


def test_pipeline_created_sums_deals_created_in_period(org, member, stages):
    with scopes_disabled():
        open_deal(member, stages, "300.00", None, created_at=utc(4, 1))
        open_deal(member, stages, "20.00", None, created_at=utc(3, 31))
        won(member, stages, "5.00", utc(8, 1), created_at=utc(6, 30))

    with scope(organization=org):
        created = credited_values(organization=org, period=Q2, metric=QuotaMetric.PIPELINE_CREATED, level=REP)

    assert created == {member.pk: Decimal("305.00")}


def test_activities_count_done_ones_and_meetings_only_meetings(org, member):
    with scopes_disabled():
        for index, (kind, is_done, occurred_at) in enumerate(
            [
                (ActivityKind.CALL, True, utc(4, 3)),
                (ActivityKind.MEETING, True, utc(4, 4)),
                (ActivityKind.MEETING, True, utc(5, 4)),
                (ActivityKind.MEETING, False, utc(5, 5)),  # planned, not done
                (ActivityKind.EMAIL, True, utc(3, 31)),  # before the quarter
            ]
        ):
            Activity.objects.create(
                organization=org, source="test", external_id=f"A{index}", kind=kind, is_done=is_done,
                owner=member, occurred_at=occurred_at,
            )  # fmt: skip

    with scope(organization=org):
        activities = credited_values(organization=org, period=Q2, metric=QuotaMetric.ACTIVITIES, level=REP)
        meetings = credited_values(organization=org, period=Q2, metric=QuotaMetric.MEETINGS, level=REP)

    assert activities == {member.pk: Decimal(3)}
    assert meetings == {member.pk: Decimal(2)}


def test_open_pipeline_counts_expected_close_in_period(scenario, member, other_rep):
    with scope(organization=scenario):
        pipeline = open_pipeline_values(organization=scenario, period=Q2, metric=WON_REVENUE, level=REP)

    assert pipeline == {member.pk: Decimal("2500.00"), other_rep.pk: Decimal("400.00")}


def test_elapsed_share_counts_today():
    assert elapsed_share(Q2, dt.date(2017, 4, 1)) == Decimal(1) / Decimal(91)
    assert elapsed_share(Q2, MAY_15) == Decimal(45) / Decimal(91)
    assert elapsed_share(Q2, dt.date(2017, 3, 31)) == Decimal(0)
    assert elapsed_share(Q2, dt.date(2017, 6, 30)) == Decimal(1)
    assert elapsed_share(Q2, dt.date(2018, 1, 1)) == Decimal(1)


def test_pacing_and_projection_on_fixed_day(scenario, member):
    row = q2_revenue_row(scenario, member)

    share = Decimal(45) / Decimal(91)
    assert row.elapsed_share == share
    # Pro-rata target 10,000 × 45/91 = 4,945.05; the 4,000 won by 15 May is 0.8089 of it.
    assert row.pace_target.quantize(Decimal("0.01")) == Decimal("4945.05")
    assert row.pacing.quantize(Decimal("0.0001")) == Decimal("0.8089")
    # Linear projection: 4,000 ÷ 45/91 = 8,088.89, which is 80.9 % of the quota.
    assert row.projected.quantize(Decimal("0.01")) == Decimal("8088.89")
    assert row.projected_attainment.quantize(Decimal("0.0001")) == Decimal("0.8089")
    assert row.is_warning is False


def test_warning_below_threshold(scenario, carl):
    row = q2_revenue_row(scenario, carl)

    # 1,000 ÷ 45/91 = 2,022.22 projected, 33.7 % of 6,000: below the default 70 %.
    assert row.projected_attainment.quantize(Decimal("0.001")) == Decimal("0.337")
    assert row.is_warning is True


def test_warning_threshold_is_per_organization(scenario, carl):
    with scopes_disabled():
        scenario.attainment_warning_percent = Decimal("30.0")
        scenario.save(update_fields=["attainment_warning_percent"])

    row = q2_revenue_row(scenario, carl)

    assert row.is_warning is False


def test_projection_undefined_before_period_starts(scenario, member):
    row = q2_revenue_row(scenario, member, today=dt.date(2017, 3, 1))

    assert row.elapsed_share == Decimal(0)
    assert row.projected is None
    assert row.projected_attainment is None
    assert row.pacing is None
    assert row.is_warning is False


def test_past_period_paces_against_whole_period(scenario, member):
    row = q2_revenue_row(scenario, member, today=dt.date(2017, 9, 1))

    assert row.elapsed_share == Decimal(1)
    assert row.pacing == Decimal("0.5")
    assert row.projected == Decimal("5000.00")


def test_coverage_against_remaining_quota(scenario, member):
    row = q2_revenue_row(scenario, member)

    # 2,500 open in Q2 ÷ (10,000 − 4,000) remaining on 15 May.
    assert row.coverage == Decimal("2500") / Decimal("6000")
    assert row.is_covered is False


def test_coverage_covered_when_nothing_remains(scenario, other_rep):
    row = q2_revenue_row(scenario, other_rep)

    assert row.remaining == Decimal(0)
    assert row.coverage is None
    assert row.is_covered is True


def test_coverage_ratio_without_quota_is_undefined():
    assert coverage_ratio(Decimal("10"), None, Decimal("0")) == (None, False)
    assert coverage_ratio(Decimal("10"), Decimal("5"), Decimal("5")) == (None, True)
    assert coverage_ratio(Decimal("10"), Decimal("25"), Decimal("5")) == (Decimal("0.5"), False)


def test_rep_without_quota_has_no_attainment(org, member, stages):
    with scopes_disabled():
        won(member, stages, "10.00", utc(5, 8))

    row = q2_revenue_row(org, member)

    assert row.has_quota is False
    assert row.credited == Decimal("10.00")
    assert row.attainment is None
    assert row.coverage is None
    assert row.is_warning is False


def test_other_org_deals_are_not_credited(scenario, other_org, other_org_admin, stages):
    with scopes_disabled():
        other_stage = StageFactory(pipeline=PipelineFactory(organization=other_org), kind=StageKind.WON)
        DealFactory(
            owner=other_org_admin, stage=other_stage, status=DealStatus.WON, closed_at=utc(5, 8), amount=Decimal("99")
        )

    with scope(organization=scenario):
        credited = credited_values(organization=scenario, period=Q2, metric=WON_REVENUE, level=REP)

    assert other_org_admin.pk not in credited


def test_attainment_list_uses_constant_queries(scenario, django_assert_num_queries):
    with scope(organization=scenario):
        # Four reads in goals.quotas, then credits, open pipeline, active reps and names.
        with django_assert_num_queries(8):
            rows = attainment_list(organization=scenario, period=Q2, metric=WON_REVENUE, level=REP, today=MAY_15)

    assert len(rows) == 3
