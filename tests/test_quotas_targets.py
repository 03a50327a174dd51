"""Effective quota targets: proration, leave, ramps, contained periods and roll-ups.

Every expected value is computed by hand in the comment beside it. Q1 2025 has
90 days (31 + 28 + 31), Q2 2025 91 days, Q3 2025 92 days.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from goals.models import Assignment, LeavePeriod, Quota, RampSchedule
from goals.quotas import quota_target_for, quota_targets_for_period
from spm.fiscal import parse_period, period_containing
from tests.factories import MembershipFactory, OrganizationFactory, TeamFactory, TerritoryFactory

REVENUE = "won_revenue"


def rep_quota(member, label, target, *, kind="quarter", metric=REVENUE, is_prorated=True):
    period = parse_period(label, member.organization.fiscal_year_start_month)
    return Quota.objects.create(
        organization=member.organization,
        level="rep",
        membership=member,
        period_kind=kind,
        period_start=period.start,
        metric=metric,
        target=Decimal(target),
        is_prorated=is_prorated,
    )


def group_quota(organization, label, target, *, team=None, territory=None, kind="quarter"):
    period = parse_period(label, organization.fiscal_year_start_month)
    return Quota.objects.create(
        organization=organization,
        level="team" if team else "territory",
        team=team,
        territory=territory,
        period_kind=kind,
        period_start=period.start,
        metric=REVENUE,
        target=Decimal(target),
    )


def target(organization, level, subject, label, metric=REVENUE):
    period = parse_period(label, organization.fiscal_year_start_month)
    with scope(organization=organization):
        return quota_target_for(organization=organization, level=level, subject_id=subject.pk, period=period, metric=metric)


@pytest.fixture
def acme(db):
    with scopes_disabled():
        return OrganizationFactory(slug="quota-acme")


def new_rep(organization, **fields):
    with scopes_disabled():
        return MembershipFactory(organization=organization, **fields)


def test_full_quarter_rep_gets_full_target(acme):
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("9000.00")


def test_rep_hired_mid_quarter_is_prorated(acme):
    # Hired 2025-02-15: 14 days of February + 31 of March = 45 of 90 days; 9000 × 45/90 = 4500.
    rep = new_rep(acme, active_from=dt.date(2025, 2, 15))
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("4500.00")


def test_leaver_is_prorated_to_last_day(acme):
    # Leaves 2025-05-20 (inclusive): 30 April days + 20 May days = 50 of 91; 9100 × 50/91 = 5000.
    rep = new_rep(acme, active_to=dt.date(2025, 5, 20))
    with scopes_disabled():
        rep_quota(rep, "2025-Q2", "9100")

    assert target(acme, "rep", rep, "2025-Q2") == Decimal("5000.00")


def test_leave_days_are_excluded(acme):
    # 10 days of leave (7th to 16th July inclusive): 82 of 92 days; 9200 × 82/92 = 8200.
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-Q3", "9200")
        LeavePeriod.objects.create(
            organization=acme, membership=rep, starts_on=dt.date(2025, 7, 7), ends_on=dt.date(2025, 7, 16)
        )

    assert target(acme, "rep", rep, "2025-Q3") == Decimal("8200.00")


def test_overlapping_leave_counts_once(acme):
    # 7–16 July and 12–21 July overlap: 15 distinct days off; 9200 × 77/92 = 7700.
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-Q3", "9200")
        LeavePeriod.objects.create(
            organization=acme, membership=rep, starts_on=dt.date(2025, 7, 7), ends_on=dt.date(2025, 7, 16)
        )
        LeavePeriod.objects.create(
            organization=acme, membership=rep, starts_on=dt.date(2025, 7, 12), ends_on=dt.date(2025, 7, 21)
        )

    assert target(acme, "rep", rep, "2025-Q3") == Decimal("7700.00")


def test_ramping_rep_quarter_uses_monthly_percentages(acme):
    # Hired 2025-01-01 on 25/50/75/100: 100 per day × (31 × 0.25 + 28 × 0.5 + 31 × 0.75) = 4500.
    with scopes_disabled():
        ramp = RampSchedule.objects.create(organization=acme, name="New hire", month_percentages=[25, 50, 75, 100])
    rep = new_rep(acme, active_from=dt.date(2025, 1, 1), ramp_schedule=ramp)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")
        rep_quota(rep, "2025-Q2", "9100")
        rep_quota(rep, "2025-01", "3100", kind="month")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("4500.00")
    # Fourth month (April) is 100 %, and the list ends after it.
    assert target(acme, "rep", rep, "2025-Q2") == Decimal("9100.00")
    # First month at 25 %: 3100 × 0.25 = 775.
    assert target(acme, "rep", rep, "2025-01") == Decimal("775.00")


def test_ramp_months_count_from_hire_day(acme):
    # Hired 2025-02-15 on 50/100: 15 Feb–14 Mar (28 days) at 50 %, 15–31 Mar (17 days) at 100 %.
    # 100 per day × (28 × 0.5 + 17) = 3100.
    with scopes_disabled():
        ramp = RampSchedule.objects.create(organization=acme, name="Short", month_percentages=[50, 100])
    rep = new_rep(acme, active_from=dt.date(2025, 2, 15), ramp_schedule=ramp)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("3100.00")


def test_non_prorated_quota_ignores_hire_date_and_ramp(acme):
    with scopes_disabled():
        ramp = RampSchedule.objects.create(organization=acme, name="New hire", month_percentages=[25, 50, 75, 100])
    rep = new_rep(acme, active_from=dt.date(2025, 2, 15), ramp_schedule=ramp)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000", is_prorated=False)

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("9000.00")


def test_rep_inactive_all_period_has_zero_target(acme):
    rep = new_rep(acme, active_to=dt.date(2024, 12, 31))
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("0.00")


def test_rep_without_quota_has_no_target(acme):
    rep = new_rep(acme)

    assert target(acme, "rep", rep, "2025-Q1") is None


def test_other_metric_is_not_used(acme):
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "30", metric="won_deals")

    assert target(acme, "rep", rep, "2025-Q1") is None
    assert target(acme, "rep", rep, "2025-Q1", metric="won_deals") == Decimal("30.00")


def test_three_monthly_quotas_make_a_quarter(acme):
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-01", "1000", kind="month")
        rep_quota(rep, "2025-02", "2000", kind="month")
        rep_quota(rep, "2025-03", "3000", kind="month")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("6000.00")


def test_quarter_with_a_missing_month_has_no_target(acme):
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-01", "1000", kind="month")
        rep_quota(rep, "2025-02", "2000", kind="month")

    assert target(acme, "rep", rep, "2025-Q1") is None


def test_month_does_not_split_a_quarter_quota(acme):
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "rep", rep, "2025-01") is None


def test_year_sums_quarters_and_months(acme):
    # Q1 from its three months (6000), Q2–Q4 explicit: 6000 + 9100 + 9200 + 9200 = 33500.
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-01", "1000", kind="month")
        rep_quota(rep, "2025-02", "2000", kind="month")
        rep_quota(rep, "2025-03", "3000", kind="month")
        rep_quota(rep, "2025-Q2", "9100")
        rep_quota(rep, "2025-Q3", "9200")
        rep_quota(rep, "2025-Q4", "9200")

    assert target(acme, "rep", rep, "2025") == Decimal("33500.00")


def test_contained_months_prorate_each_by_its_own_days(acme):
    # Hired 2025-02-15: January 0, February 2800 × 14/28 = 1400, March 3100 in full; 4500 in all.
    rep = new_rep(acme, active_from=dt.date(2025, 2, 15))
    with scopes_disabled():
        rep_quota(rep, "2025-01", "3100", kind="month")
        rep_quota(rep, "2025-02", "2800", kind="month")
        rep_quota(rep, "2025-03", "3100", kind="month")

    assert target(acme, "rep", rep, "2025-Q1") == Decimal("4500.00")


def test_explicit_year_wins_over_quarters(acme):
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025", "40000", kind="year")
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "rep", rep, "2025") == Decimal("40000.00")


def test_territory_move_splits_quota_by_days(acme):
    # Moves from South to North on 2025-03-01: 59 days South, 31 days North of 90.
    # 9000 × 59/90 = 5900 and 9000 × 31/90 = 3100.
    with scopes_disabled():
        south = TerritoryFactory(organization=acme, name="South")
        north = TerritoryFactory(organization=acme, name="North")
    rep = new_rep(acme, territory=north)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")
        Assignment.objects.create(
            organization=acme, membership=rep, territory=south, valid_from=dt.date(2024, 1, 1), valid_to=dt.date(2025, 3, 1)
        )
        Assignment.objects.create(organization=acme, membership=rep, territory=north, valid_from=dt.date(2025, 3, 1))

    assert target(acme, "territory", south, "2025-Q1") == Decimal("5900.00")
    assert target(acme, "territory", north, "2025-Q1") == Decimal("3100.00")


def test_member_without_assignments_counts_for_current_team(acme):
    with scopes_disabled():
        team = TeamFactory(organization=acme, name="Solo")
    rep = new_rep(acme, team=team)
    with scopes_disabled():
        rep_quota(rep, "2025-Q1", "9000")

    assert target(acme, "team", team, "2025-Q1") == Decimal("9000.00")


def test_team_rolls_up_members_and_sub_teams(acme):
    # Parent: its own rep (1000) + sub-team East (hired rep 9000 × 45/90 = 4500) + sub-team West (2000).
    with scopes_disabled():
        parent = TeamFactory(organization=acme, name="DACH")
        east = TeamFactory(organization=acme, name="East", parent=parent)
        west = TeamFactory(organization=acme, name="West", parent=parent)
    direct_rep = new_rep(acme, team=parent)
    hired_rep = new_rep(acme, team=east, active_from=dt.date(2025, 2, 15))
    west_rep = new_rep(acme, team=west)
    with scopes_disabled():
        rep_quota(direct_rep, "2025-Q1", "1000")
        rep_quota(hired_rep, "2025-Q1", "9000")
        rep_quota(west_rep, "2025-Q1", "2000")

    assert target(acme, "team", east, "2025-Q1") == Decimal("4500.00")
    assert target(acme, "team", west, "2025-Q1") == Decimal("2000.00")
    assert target(acme, "team", parent, "2025-Q1") == Decimal("7500.00")


def test_explicit_team_quota_overrides_roll_up(acme):
    # West is set to 5000 explicitly, so its rep's 2000 is ignored; the parent adds 1000 + 5000.
    with scopes_disabled():
        parent = TeamFactory(organization=acme, name="DACH")
        west = TeamFactory(organization=acme, name="West", parent=parent)
    direct_rep = new_rep(acme, team=parent)
    west_rep = new_rep(acme, team=west)
    with scopes_disabled():
        rep_quota(direct_rep, "2025-Q1", "1000")
        rep_quota(west_rep, "2025-Q1", "2000")
        group_quota(acme, "2025-Q1", "5000", team=west)

    assert target(acme, "team", west, "2025-Q1") == Decimal("5000.00")
    assert target(acme, "team", parent, "2025-Q1") == Decimal("6000.00")


def test_explicit_parent_team_quota_is_used_as_is(acme):
    with scopes_disabled():
        parent = TeamFactory(organization=acme, name="DACH")
        west = TeamFactory(organization=acme, name="West", parent=parent)
    west_rep = new_rep(acme, team=west)
    with scopes_disabled():
        rep_quota(west_rep, "2025-Q1", "2000")
        group_quota(acme, "2025-Q1", "12000", team=parent)

    assert target(acme, "team", parent, "2025-Q1") == Decimal("12000.00")


def test_team_without_member_quotas_has_no_target(acme):
    with scopes_disabled():
        team = TeamFactory(organization=acme, name="Empty")
    new_rep(acme, team=team)

    assert target(acme, "team", team, "2025-Q1") is None


def test_fiscal_year_starting_in_february(acme):
    # FY2025 Q4 = 2024-11-01 … 2025-01-31; FY2026 Q1 = 2025-02-01 … 2025-04-30.
    with scopes_disabled():
        acme.fiscal_year_start_month = 2
        acme.save(update_fields=["fiscal_year_start_month"])
    rep = new_rep(acme)
    with scopes_disabled():
        rep_quota(rep, "2025-Q4", "9200")
        rep_quota(rep, "2026-Q1", "8900")

    january_31 = period_containing(dt.date(2025, 1, 31), "quarter", 2)
    february_1 = period_containing(dt.date(2025, 2, 1), "quarter", 2)
    assert january_31.label == "2025-Q4"
    assert february_1.label == "2026-Q1"
    assert target(acme, "rep", rep, january_31.label) == Decimal("9200.00")
    assert target(acme, "rep", rep, february_1.label) == Decimal("8900.00")


def test_set_based_targets_cover_all_reps_in_fixed_queries(acme, django_assert_num_queries):
    reps = [new_rep(acme) for _ in range(5)]
    with scopes_disabled():
        for index, rep in enumerate(reps):
            rep_quota(rep, "2025-Q1", str(1000 * (index + 1)))
    period = parse_period("2025-Q1", 1)

    with scope(organization=acme), django_assert_num_queries(4):
        targets = quota_targets_for_period(organization=acme, period=period, metric=REVENUE, level="rep")

    assert targets == {rep.pk: Decimal(1000 * (index + 1)).quantize(Decimal("0.01")) for index, rep in enumerate(reps)}


def test_set_based_team_targets_match_single_lookups(acme):
    with scopes_disabled():
        first = TeamFactory(organization=acme, name="First")
        second = TeamFactory(organization=acme, name="Second")
    with scopes_disabled():
        rep_quota(new_rep(acme, team=first), "2025-Q1", "1000")
        rep_quota(new_rep(acme, team=second, active_from=dt.date(2025, 2, 15)), "2025-Q1", "9000")
    period = parse_period("2025-Q1", 1)

    with scope(organization=acme):
        targets = quota_targets_for_period(organization=acme, period=period, metric=REVENUE, level="team")

    assert targets == {first.pk: Decimal("1000.00"), second.pk: Decimal("4500.00")}


def test_unknown_level_is_rejected(acme):
    with scope(organization=acme), pytest.raises(ValueError, match="organization"):
        quota_targets_for_period(organization=acme, period=parse_period("2025", 1), metric=REVENUE, level="organization")


def test_assignment_at_and_credit_rows_follow_dates(acme):
    from goals.selectors import assignment_at, credit_rows

    with scopes_disabled():
        south = TerritoryFactory(organization=acme, name="South")
        north = TerritoryFactory(organization=acme, name="North")
    moved = new_rep(acme, territory=north)
    unassigned = new_rep(acme, territory=south)
    with scopes_disabled():
        first = Assignment.objects.create(
            organization=acme, membership=moved, territory=south, valid_from=dt.date(2025, 1, 1), valid_to=dt.date(2025, 3, 1)
        )
        Assignment.objects.create(organization=acme, membership=moved, territory=north, valid_from=dt.date(2025, 3, 1))

    with scope(organization=acme):
        last_day_south = assignment_at(membership_id=moved.pk, day=dt.date(2025, 2, 28))
        before_any = assignment_at(membership_id=moved.pk, day=dt.date(2024, 12, 31))
        credited = credit_rows(
            rows=[(1, moved.pk, dt.date(2025, 2, 28)), (2, moved.pk, dt.date(2025, 3, 1)), (3, unassigned.pk, dt.date(2025, 3, 1))],
            level="territory",
        )

    assert last_day_south.territory_id == south.pk
    assert last_day_south.assignment_id == first.pk
    assert before_any is None
    assert credited == {1: south.pk, 2: north.pk, 3: south.pk}
