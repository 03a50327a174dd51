"""Manager visibility after a team move on the people page, and along mixed reporting chains.

A member reports to their `manager` field and to their team's manager, transitively
(docs/access.md, and the forecast tree of docs/forecast.md). A team move changes only the team,
so the rep's `manager` field keeps them visible to the previous team's manager until the field
changes as well. These tests check that rule on every page that uses a manager's visibility.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from goals import services
from goals.forecasts.rollup import forecast_tree
from pipelines.models import DealStatus
from pipelines.selectors import team_list_visible
from spm.models import LeaderboardPrivacy, Role
from spm.tenancy import membership_ids_visible, visible_team_and_member_ids
from tests.attainment_data import utc
from tests.factories import DealFactory, MembershipFactory, TeamFactory, UserFactory

MOVE_DAY = dt.date(2017, 10, 1)
TODAY = dt.date(2026, 12, 5)


@pytest.fixture
def anna(org, team, manager_member):
    """A rep of North whose `manager` is North's manager, as the Maven import sets both."""
    with scopes_disabled():
        return MembershipFactory(
            organization=org,
            role=Role.REP,
            team=team,
            manager=manager_member,
            user=UserFactory(email="anna@acme.example", name="Anna Snelling"),
        )


@pytest.fixture
def anna_deal(org, anna, stages):
    """A deal Anna won in 2017-Q4, with the KPI snapshots that the dashboard's rep table reads."""
    with scopes_disabled():
        deal = DealFactory(
            owner=anna,
            name="Anna's deal",
            stage=stages[DealStatus.WON],
            status=DealStatus.WON,
            amount=Decimal("1000.00"),
            created_at=utc(10, 2),
            closed_at=utc(11, 15),
        )
    kpi_snapshot_recompute(organization=org)
    return deal


@pytest.fixture
def mini(org):
    """A new team without a manager, the target of the move."""
    with scopes_disabled():
        return TeamFactory(organization=org, name="Mini")


def _move(org, admin_member, anna, mini):
    """Move Anna into Mini from 1 Oct 2017 through the service that the people page's assignment form calls."""
    with scope(organization=org):
        assignment = services.assignment_change(
            membership=anna, actor=admin_member.user, team=mini, territory=None, valid_from=MOVE_DAY, today=TODAY
        )
    anna.refresh_from_db()
    return assignment


def _clear_manager(org, admin_member, anna):
    """Clear Anna's `manager` through the service that the people page's member form calls."""
    with scope(organization=org):
        return services.membership_update(
            membership=anna,
            actor=admin_member.user,
            role=anna.role,
            active_from=anna.active_from,
            active_to=anna.active_to,
            ramp_schedule=anna.ramp_schedule,
            manager=None,
        )


def test_move_changes_team_not_manager(org, admin_member, manager_member, anna, mini):
    assignment = _move(org, admin_member, anna, mini)

    assert assignment.team_id == mini.pk
    assert anna.team_id == mini.pk
    assert anna.manager_id == manager_member.pk


def test_moved_rep_stays_visible_through_manager_field(org, admin_member, team, manager_member, anna, mini):
    _move(org, admin_member, anna, mini)

    with scope(organization=org):
        team_ids, member_ids = visible_team_and_member_ids(manager_member)
        assert team_ids == {team.pk}
        assert member_ids == {manager_member.pk, anna.pk}
        assert membership_ids_visible(manager_member) == {manager_member.pk, anna.pk}


def test_moved_rep_hidden_once_manager_cleared(org, admin_member, team, manager_member, anna, mini):
    _move(org, admin_member, anna, mini)

    changed = _clear_manager(org, admin_member, anna)

    assert changed == ["manager_id"]
    with scope(organization=org):
        assert membership_ids_visible(manager_member) == {manager_member.pk}


def test_team_rep_without_manager_field_hidden_after_move(org, admin_member, team, manager_member, mini):
    """Visibility through the team alone ends with the move."""
    with scopes_disabled():
        bert = MembershipFactory(organization=org, role=Role.REP, team=team, user=UserFactory(email="bert@acme.example"))
    with scope(organization=org):
        assert bert.pk in membership_ids_visible(manager_member)

    _move(org, admin_member, bert, mini)

    with scope(organization=org):
        assert membership_ids_visible(manager_member) == {manager_member.pk}


def test_forecast_parent_follows_manager_field(org, admin_member, manager_member, anna, mini):
    _move(org, admin_member, anna, mini)

    with scope(organization=org):
        tree = forecast_tree()
        assert tree.parent[anna.pk] == manager_member.pk
        assert tree.subtree(manager_member.pk) == {manager_member.pk, anna.pk}

    _clear_manager(org, admin_member, anna)

    with scope(organization=org):
        tree = forecast_tree()
        assert tree.parent[anna.pk] is None
        assert tree.subtree(manager_member.pk) == {manager_member.pk}


def _pages(client, anna, anna_deal) -> dict[str, object]:
    """Fetch every page where a manager's visibility of Anna shows; return what each shows of her.

    The leaderboard check needs the pseudonym mode, in which only visible members keep their names.
    """
    with scopes_disabled():
        organization = anna.organization
        organization.leaderboard_privacy = LeaderboardPrivacy.PSEUDONYMS
        organization.save(update_fields=["leaderboard_privacy"])
    scorecard = client.get(f"/o/acme/reps/{anna.pk}/")
    deal_detail = client.get(f"/o/acme/deals/{anna_deal.pk}/")
    deal_list = client.get("/o/acme/deals/")
    new_one_on_one = client.get("/o/acme/coaching/1on1/new/")
    forecast_person = client.get(f"/o/acme/forecast/people/{anna.pk}/")
    skills_person = client.get(f"/o/acme/skills/people/{anna.pk}/")
    dashboard = client.get("/o/acme/dashboard/", {"period": "2017-Q4"})
    leaderboard = client.get("/o/acme/leaderboard/", {"period": "2017-Q4"})
    return {
        "scorecard": scorecard.status_code,
        "deal detail": deal_detail.status_code,
        "deal list": "Anna&#x27;s deal" in deal_list.content.decode(),
        "1:1 rep choices": [rep.pk for rep in new_one_on_one.context["form"].fields["rep"].queryset],
        "forecast person": forecast_person.status_code,
        "skills person": skills_person.status_code,
        "dashboard": "Anna Snelling" in dashboard.content.decode(),
        "leaderboard name": "Anna Snelling" in leaderboard.content.decode(),
    }


def test_pages_show_moved_rep_with_manager_field(client, org, admin_member, manager_member, anna, anna_deal, mini):
    _move(org, admin_member, anna, mini)
    client.force_login(manager_member.user)

    pages = _pages(client, anna, anna_deal)

    assert pages == {
        "scorecard": 200,
        "deal detail": 200,
        "deal list": True,
        "1:1 rep choices": [anna.pk],
        "forecast person": 200,
        "skills person": 200,
        "dashboard": True,
        "leaderboard name": True,
    }


def test_pages_hide_moved_rep_without_manager_field(client, org, admin_member, manager_member, anna, anna_deal, mini):
    _move(org, admin_member, anna, mini)
    _clear_manager(org, admin_member, anna)
    client.force_login(manager_member.user)

    pages = _pages(client, anna, anna_deal)

    assert pages == {
        "scorecard": 404,
        "deal detail": 404,
        "deal list": False,
        "1:1 rep choices": [],
        "forecast person": 404,
        "skills person": 404,
        "dashboard": False,
        "leaderboard name": False,
    }


def test_one_on_one_rejects_hidden_rep(client, org, admin_member, manager_member, anna, mini):
    _move(org, admin_member, anna, mini)
    _clear_manager(org, admin_member, anna)
    client.force_login(manager_member.user)

    response = client.post(
        "/o/acme/coaching/1on1/new/",
        {"rep": anna.pk, "scheduled_on": "2026-12-10", "scheduled_time": "10:00", "period": "2026-Q4"},
    )

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["rep"]


# --- chains that mix the manager field and team leadership ----------------------------------------


@pytest.fixture
def chains(org, team, manager_member):
    """Two second-line chains below North's manager, each with one link of either kind.

    Mike's `manager` is North's manager and Mike leads team East, whose rep Rita has no
    `manager`. Nora is a manager in North and Ray's `manager`, but Ray has no team.
    """
    with scopes_disabled():
        east = TeamFactory(organization=org, name="East")
        mike = MembershipFactory(
            organization=org, role=Role.MANAGER, team=east, manager=manager_member, user=UserFactory(email="mike@acme.example")
        )
        east.manager = mike
        east.save(update_fields=["manager"])
        rita = MembershipFactory(organization=org, role=Role.REP, team=east, user=UserFactory(email="rita@acme.example"))
        nora = MembershipFactory(organization=org, role=Role.MANAGER, team=team, user=UserFactory(email="nora@acme.example"))
        ray = MembershipFactory(organization=org, role=Role.REP, manager=nora, user=UserFactory(email="ray@acme.example"))
    return {"east": east, "mike": mike, "rita": rita, "nora": nora, "ray": ray}


def test_visibility_follows_mixed_chains(org, team, manager_member, chains):
    with scope(organization=org):
        team_ids, member_ids = visible_team_and_member_ids(manager_member)

    people = [chains[name].pk for name in ("mike", "rita", "nora", "ray")]
    assert member_ids == {manager_member.pk, *people}
    assert team_ids == {team.pk, chains["east"].pk}


def test_visibility_contains_forecast_subtree(org, manager_member, chains):
    with scope(organization=org):
        subtree = forecast_tree().subtree(manager_member.pk)
        visible = membership_ids_visible(manager_member)

    assert subtree == {manager_member.pk, chains["mike"].pk, chains["rita"].pk, chains["nora"].pk, chains["ray"].pk}
    assert subtree - visible == set()


def test_second_line_rep_scorecard_opens(client, manager_member, chains):
    client.force_login(manager_member.user)

    assert client.get(f"/o/acme/reps/{chains['rita'].pk}/").status_code == 200
    assert client.get(f"/o/acme/reps/{chains['ray'].pk}/").status_code == 200


def test_mixed_chain_leaves_other_teams_hidden(org, manager_member, chains, south_rep):
    with scope(organization=org):
        assert south_rep.pk not in membership_ids_visible(manager_member)


def test_team_list_matches_visible_teams(org, team, manager_member, chains, django_assert_num_queries):
    """East is led by Mike, who reports to North's manager, so it is among the manager's teams."""
    with scope(organization=org):
        with django_assert_num_queries(2):
            teams = team_list_visible(membership=manager_member)
        visible = visible_team_and_member_ids(manager_member)
        with django_assert_num_queries(1):
            teams_from_visible = team_list_visible(membership=manager_member, visible=visible)

    assert [visible_team.name for visible_team in teams] == ["East", "North"]
    assert {visible_team.pk for visible_team in teams} == visible[0]
    assert [visible_team.name for visible_team in teams_from_visible] == ["East", "North"]


def test_team_list_for_admin_and_rep(org, admin_member, manager_member, chains, south_rep, django_assert_num_queries):
    with scope(organization=org):
        with django_assert_num_queries(1):
            admin_teams = team_list_visible(membership=admin_member)
        with django_assert_num_queries(0):
            rep_teams = team_list_visible(membership=chains["rita"])

    assert [visible_team.name for visible_team in admin_teams] == ["East", "North", "South"]
    assert rep_teams == []


def test_deal_list_filters_by_second_line_team(client, org, manager_member, chains, stages):
    with scopes_disabled():
        DealFactory(owner=chains["rita"], name="Rita's deal", stage=stages[DealStatus.OPEN], status=DealStatus.OPEN)
        DealFactory(owner=chains["ray"], name="Ray's deal", stage=stages[DealStatus.OPEN], status=DealStatus.OPEN)
    client.force_login(manager_member.user)

    response = client.get("/o/acme/deals/", {"team": chains["east"].pk})

    assert response.status_code == 200
    assert [deal.name for deal in response.context["page"].object_list] == ["Rita's deal"]
    assert [visible_team.name for visible_team in response.context["teams"]] == ["East", "North"]


def test_dashboard_accepts_second_line_team(client, org, manager_member, chains, anna_deal):
    client.force_login(manager_member.user)

    response = client.get("/o/acme/dashboard/", {"period": "2017-Q4", "team": chains["east"].pk})

    assert response.status_code == 200
    assert response.context["errors"] == []
    assert response.context["team"] == chains["east"]
