"""Contests: creation rights, standings over any days, team mode, winners, badges, pages.

Scenario (Acme): the May 2017 contest "May sprint" on won revenue. Team North
(the fixture team, led by manager_member) has Anna and Bert, team South has
Cora and Dirk. Monthly quotas for May: Anna 1,000, Bert 4,000, Cora 2,000.
Won in May: Anna 800, Bert 1,000, Cora 1,600, Dirk 300; Bert also won 5,000
on 2017-04-30 (before the contest).

Individual standings by % of quota: Anna 80 %, Cora 80 %, Bert 25 %: 1, 1, 3.
Team mode by absolute value: North 1,800, South 1,900: South 1, North 2.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_scopes import scope, scopes_disabled

from goals.contests import contest_badges, contest_create, contest_quota_targets, contest_standings
from goals.models import Contest, ContestNormalization, QuotaLevel, QuotaMetric
from goals.privacy import name_policy_for
from pipelines.models import DealStatus
from spm.fiscal import calendar_month, fiscal_quarter
from spm.tenancy import membership_ids_visible
from tests.attainment_data import deal_create, quota_create, rep_create, stages_create, utc
from tests.factories import TeamFactory

MAY = calendar_month(2017, 5)
WON = DealStatus.WON
AFTER_MAY = dt.date(2017, 6, 5)
IN_MAY = dt.date(2017, 5, 20)


@pytest.fixture
def people(org, team, manager_member):
    with scopes_disabled():
        stages = stages_create(org)
        south = TeamFactory(organization=org, name="South")
        anna = rep_create(org, "Anna", team=team, manager=manager_member)
        bert = rep_create(org, "Bert", team=team, manager=manager_member)
        cora = rep_create(org, "Cora", team=south)
        dirk = rep_create(org, "Dirk", team=south)
        quota_create(anna, "1000.00", period=MAY)
        quota_create(bert, "4000.00", period=MAY)
        quota_create(cora, "2000.00", period=MAY)
        deal_create(anna, stages, WON, "800.00", closed_at=utc(5, 3))
        deal_create(bert, stages, WON, "1000.00", closed_at=utc(5, 31))
        deal_create(bert, stages, WON, "5000.00", closed_at=utc(4, 30))
        deal_create(cora, stages, WON, "1600.00", closed_at=utc(5, 1))
        deal_create(dirk, stages, WON, "300.00", closed_at=utc(5, 15))
    return {"anna": anna, "bert": bert, "cora": cora, "dirk": dirk, "south": south, "north": team}


def create(org, creator, people, **overrides):
    values = {
        "organization": org,
        "created_by": creator,
        "name": "May sprint",
        "metric": QuotaMetric.WON_REVENUE,
        "starts_on": dt.date(2017, 5, 1),
        "ends_on": dt.date(2017, 5, 31),
        "normalization": ContestNormalization.PERCENT_OF_QUOTA,
        "is_team_mode": False,
        "participants": [people["anna"], people["bert"], people["cora"], people["dirk"]],
        "teams": [],
    }
    values.update(overrides)
    with scope(organization=org):
        return contest_create(**values)


def standings_for(org, contest, viewer, today=AFTER_MAY):
    with scope(organization=org):
        policy = name_policy_for(organization=org, viewer=viewer, visible_ids=membership_ids_visible(viewer))
        return contest_standings(organization=org, contest=contest, policy=policy, today=today)


def test_admin_creates_contest_with_participants(org, people, admin_member):
    contest = create(org, admin_member, people)

    with scope(organization=org):
        assert set(contest.participants.values_list("pk", flat=True)) == {
            people[name].pk for name in ("anna", "bert", "cora", "dirk")
        }
        assert contest.created_by == admin_member


def test_manager_cannot_pick_members_outside_team(org, people, manager_member):
    with pytest.raises(PermissionDenied):
        create(org, manager_member, people)

    with scope(organization=org):
        assert Contest.objects.count() == 0


def test_manager_picks_own_reps(org, people, manager_member):
    contest = create(org, manager_member, people, participants=[people["anna"], people["bert"]])

    assert contest.pk is not None


def test_rep_cannot_create_contest(org, people):
    with pytest.raises(PermissionDenied):
        create(org, people["anna"], people, participants=[people["anna"]])


def test_contest_needs_ordered_days_and_competitors(org, people, admin_member):
    with pytest.raises(ValidationError):
        create(org, admin_member, people, starts_on=dt.date(2017, 6, 1))
    with pytest.raises(ValidationError):
        create(org, admin_member, people, participants=[])
    with pytest.raises(ValidationError):
        create(org, admin_member, people, is_team_mode=True, teams=[])


def test_percent_standings_share_rank(org, people, admin_member):
    contest = create(org, admin_member, people)

    standings = standings_for(org, contest, admin_member)

    assert [(entry.name, entry.rank, entry.value) for entry in standings.ranked] == [
        ("Anna", 1, Decimal("0.8")),
        ("Cora", 1, Decimal("0.8")),
        ("Bert", 3, Decimal("0.25")),
    ]
    assert [entry.name for entry in standings.unranked] == ["Dirk"]


def test_winners_only_after_last_day(org, people, admin_member):
    contest = create(org, admin_member, people)

    running = standings_for(org, contest, admin_member, today=IN_MAY)
    finished = standings_for(org, contest, admin_member, today=AFTER_MAY)

    assert running.winners == []
    assert [entry.name for entry in finished.winners] == ["Anna", "Cora"]


def test_running_standings_count_closes_up_to_today(org, people, admin_member):
    contest = create(org, admin_member, people, normalization=ContestNormalization.ABSOLUTE)

    running = standings_for(org, contest, admin_member, today=IN_MAY)

    # Bert's 1,000 closes on 05-31, after 05-20.
    assert [(entry.name, entry.value) for entry in running.ranked] == [
        ("Cora", Decimal("1600.00")),
        ("Anna", Decimal("800.00")),
        ("Dirk", Decimal("300.00")),
        ("Bert", Decimal("0")),
    ]


def test_team_mode_ranks_teams(org, people, admin_member):
    contest = create(
        org,
        admin_member,
        people,
        is_team_mode=True,
        participants=[],
        teams=[people["north"], people["south"]],
        normalization=ContestNormalization.ABSOLUTE,
    )

    standings = standings_for(org, contest, admin_member)

    assert [(entry.name, entry.rank, entry.value) for entry in standings.ranked] == [
        ("South", 1, Decimal("1900.00")),
        ("North", 2, Decimal("1800.00")),
    ]


def test_improvement_compares_same_days_before(org, people, admin_member):
    # May has 31 days, so the days before are 2017-03-31 … 2017-04-30, which hold Bert's 5,000.
    contest = create(org, admin_member, people, normalization=ContestNormalization.IMPROVEMENT)

    standings = standings_for(org, contest, admin_member)

    values = {entry.name: entry.value for entry in standings.ranked}
    assert values["Bert"] == Decimal("-4000.00")
    assert values["Cora"] == Decimal("1600.00")


def test_contest_quota_prorates_by_days(org, people):
    with scopes_disabled():
        quota_create(people["dirk"], "9100.00", period=fiscal_quarter(2017, 2, 1))
    # Days 2017-05-10 … 2017-05-19: Anna's May quota 1,000 × 10/31; Dirk only has a quarter: 9,100 × 10/91.
    days = calendar_month(2017, 5)
    days = type(days)(start=dt.date(2017, 5, 10), end=dt.date(2017, 5, 20), kind="custom", label="ten days")

    with scope(organization=org):
        targets = contest_quota_targets(
            organization=org, period=days, metric=QuotaMetric.WON_REVENUE, level=QuotaLevel.REP
        )

    assert targets[people["anna"].pk] == Decimal("1000.00") * 10 / 31
    assert targets[people["dirk"].pk] == Decimal("1000.00")


def test_badges_go_to_winners(org, people, admin_member):
    contest = create(org, admin_member, people)

    with scope(organization=org):
        policy = name_policy_for(organization=org, viewer=admin_member, visible_ids=None)
        badges = contest_badges(organization=org, policy=policy, period=fiscal_quarter(2017, 2, 1), today=AFTER_MAY)

    assert badges == {(QuotaLevel.REP, people["anna"].pk): [contest], (QuotaLevel.REP, people["cora"].pk): [contest]}


def test_leaderboard_page_shows_badge(client, org, people, admin_member):
    create(org, admin_member, people, ends_on=dt.date(2017, 5, 31))
    client.force_login(admin_member.user)

    body = client.get("/o/acme/leaderboard/", {"period": "2017-Q2"}).content.decode()

    assert "Won: May sprint" in body


# --- pages ----------------------------------------------------------------------------------------


def test_new_contest_page_lists_only_visible_members(client, org, people, manager_member):
    client.force_login(manager_member.user)

    body = client.get("/o/acme/contests/new/").content.decode()

    assert "Anna" in body
    assert "Bert" in body
    assert "Cora" not in body


def test_manager_posts_contest(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.post(
        "/o/acme/contests/new/",
        {
            "name": "Sprint",
            "metric": "won_revenue",
            "starts_on": "2017-05-01",
            "ends_on": "2017-05-31",
            "normalization": "absolute",
            "participants": [people["anna"].pk, people["bert"].pk],
        },
    )

    with scopes_disabled():
        contest = Contest.objects.get(name="Sprint")
    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/contests/{contest.pk}/"


def test_manager_cannot_post_other_team_member(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.post(
        "/o/acme/contests/new/",
        {
            "name": "Sprint",
            "metric": "won_revenue",
            "starts_on": "2017-05-01",
            "ends_on": "2017-05-31",
            "normalization": "absolute",
            "participants": [people["cora"].pk],
        },
    )

    assert response.status_code == 400
    with scopes_disabled():
        assert Contest.objects.count() == 0


def test_rep_gets_404_on_new_contest(client, org, people):
    client.force_login(people["anna"].user)

    assert client.get("/o/acme/contests/new/").status_code == 404


def test_contest_page_full_and_fragment(client, org, people, admin_member):
    contest = create(org, admin_member, people)
    client.force_login(people["anna"].user)

    full = client.get(f"/o/acme/contests/{contest.pk}/")
    fragment = client.get(f"/o/acme/contests/{contest.pk}/", HTTP_HX_REQUEST="true")

    assert full.status_code == 200
    assert "<html" in full.content.decode()
    assert "May sprint" in full.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert 'data-standings' in fragment.content.decode()


def test_contest_of_other_org_is_404(client, org, people, admin_member, other_org_admin):
    contest = create(org, admin_member, people)
    client.force_login(other_org_admin.user)

    assert client.get(f"/o/globex/contests/{contest.pk}/").status_code == 404
