"""Reporting loops: no team manager, parent team, team move or upload may make someone report to themselves.

A member reports to their `manager` and to the managers of their team and its parent teams.
"""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals import services
from goals.imports import people_import
from goals.models import Assignment, Team
from spm.models import Membership, Role
from tests.factories import MembershipFactory, TeamFactory, UserFactory

TODAY = dt.date(2025, 6, 1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def rita(org, team, manager_member):
    """Rita Rep of North, who reports to North's manager Max Manager."""
    with scopes_disabled():
        manager_member.user.name = "Max Manager"
        manager_member.user.save(update_fields=["name"])
        return MembershipFactory(
            organization=org,
            role=Role.REP,
            team=team,
            manager=manager_member,
            user=UserFactory(email="rita@acme.example", name="Rita Rep"),
        )


@pytest.fixture
def paul(org, rita):
    """Paul Planner, a manager without a team whose direct manager is Rita, a rep of North."""
    with scopes_disabled():
        return MembershipFactory(
            organization=org,
            role=Role.MANAGER,
            manager=rita,
            user=UserFactory(email="paul@acme.example", name="Paul Planner"),
        )


def test_team_manager_reporting_to_member_rejected(org, team, manager_member, rita, paul):
    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.team_save(organization=org, actor=None, team=team, name="North", manager=paul)

    assert caught.value.messages == [
        (
            "Paul Planner reports to Rita Rep, who belongs to North, so Paul Planner cannot lead North; "
            "choose a manager outside the team's reporting line."
        )
    ]
    with scopes_disabled():
        assert Team.objects.get(pk=team.pk).manager_id == manager_member.pk


def test_team_manager_reporting_to_sub_team_member_rejected(org, team, rita, paul):
    with scopes_disabled():
        east = TeamFactory(organization=org, name="North-East", parent=team)
        rita.team = east
        rita.save(update_fields=["team"])

    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.team_save(organization=org, actor=None, team=team, name="North", manager=paul)

    assert caught.value.messages == [
        (
            "Paul Planner reports to Rita Rep, who belongs to North-East, so Paul Planner cannot lead North; "
            "choose a manager outside the team's reporting line."
        )
    ]


def test_team_manager_in_own_team_accepted(org, team, manager_member, rita):
    with scopes_disabled():
        team.manager = None
        team.save(update_fields=["manager"])

    with scope(organization=org):
        services.team_save(organization=org, actor=None, team=team, name="North", manager=manager_member)

    with scopes_disabled():
        assert Team.objects.get(pk=team.pk).manager_id == manager_member.pk


def test_parent_team_led_by_report_rejected(org, team, rita, paul):
    with scopes_disabled():
        top = TeamFactory(organization=org, name="Top", manager=paul)

    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.team_save(organization=org, actor=None, team=team, name="North", parent=top, manager=team.manager)

    assert caught.value.messages == [
        (
            "North cannot be placed below Top, because Paul Planner, the manager of Top, reports to Rita Rep, "
            "who belongs to North; choose another parent team."
        )
    ]
    with scopes_disabled():
        assert Team.objects.get(pk=team.pk).parent_id is None


def test_move_into_team_led_by_report_rejected(org, team, manager_member, rita):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South", manager=rita)

    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.assignment_change(
            membership=manager_member, actor=None, team=south, territory=None, valid_from=TODAY, today=TODAY
        )

    assert caught.value.messages == [
        (
            "Max Manager cannot move to South, because Rita Rep, the manager of South, reports to Max Manager; "
            "choose another team, or give South another manager first."
        )
    ]
    with scopes_disabled():
        assert Membership.objects.get(pk=manager_member.pk).team_id == team.pk
        assert not Assignment.objects.filter(membership=manager_member).exists()


def test_move_below_parent_led_by_report_rejected(org, team, manager_member, rita):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South", manager=rita)
        south_east = TeamFactory(organization=org, name="South-East", parent=south)

    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.assignment_change(
            membership=manager_member, actor=None, team=south_east, territory=None, valid_from=TODAY, today=TODAY
        )

    assert caught.value.messages == [
        (
            "Max Manager cannot move to South-East, because Rita Rep, the manager of South, reports to Max Manager; "
            "choose another team, or give South another manager first."
        )
    ]


def test_move_into_team_of_own_manager_accepted(org, team, manager_member, south_rep):
    with scope(organization=org):
        assignment = services.assignment_change(
            membership=south_rep, actor=None, team=team, territory=None, valid_from=TODAY, today=TODAY
        )

    assert assignment.team_id == team.pk


def test_upload_move_into_team_led_by_report_rejected(org, team, manager_member, rita):
    with scopes_disabled():
        TeamFactory(organization=org, name="South", manager=rita)
    text = "name,email,team\nMax Manager,manager@acme.example,South\n"

    with scope(organization=org):
        result = people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv", today=TODAY)

    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert [(error.line, error.column, error.value) for error in result.errors] == [(2, "team", "South")]
    assert str(result.errors[0].reason) == (
        "Max Manager cannot move to South, because Rita Rep, the manager of South, reports to Max Manager; "
        "choose another team, or give South another manager first."
    )
    with scopes_disabled():
        assert Membership.objects.get(pk=manager_member.pk).team_id == team.pk


def test_membership_update_manager_loop_rejected(org, manager_member, rita):
    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.membership_update(
            membership=manager_member,
            actor=None,
            role=manager_member.role,
            active_from=None,
            active_to=None,
            manager=rita,
        )

    assert caught.value.messages == [
        "Rita Rep reports to Max Manager, so Rita Rep cannot be their manager; choose someone outside their reporting line."
    ]
    with scopes_disabled():
        assert Membership.objects.get(pk=manager_member.pk).manager_id is None


def test_parent_below_team_of_report_names_leader_team(org, team, rita, paul):
    with scopes_disabled():
        top = TeamFactory(organization=org, name="Top", manager=paul)
        middle = TeamFactory(organization=org, name="Middle", parent=top)

    with scope(organization=org), pytest.raises(ValidationError) as caught:
        services.team_save(organization=org, actor=None, team=team, name="North", parent=middle, manager=team.manager)

    assert caught.value.messages == [
        (
            "North cannot be placed below Middle, because Paul Planner, the manager of Top, reports to Rita Rep, "
            "who belongs to North; choose another parent team."
        )
    ]


def test_structure_page_shows_team_manager_loop(admin_client, org, team, manager_member, rita, paul):
    data = {"kind": "team", "pk": team.pk, "team-name": "North", "team-manager": paul.pk}

    response = admin_client.post("/o/acme/structure/", data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert "Paul Planner reports to Rita Rep, who belongs to North, so Paul Planner cannot lead North" in response.content.decode()
    with scopes_disabled():
        assert Team.objects.get(pk=team.pk).manager_id == manager_member.pk


def test_person_page_shows_team_move_loop(admin_client, org, team, manager_member, rita):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South", manager=rita)
    data = {"kind": "assignment", "assignment-team": south.pk, "assignment-valid_from": "2025-06-01"}

    response = admin_client.post(f"/o/acme/people/{manager_member.pk}/", data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert "Max Manager cannot move to South, because Rita Rep, the manager of South, reports to Max Manager" in (
        response.content.decode()
    )
    with scopes_disabled():
        assert Membership.objects.get(pk=manager_member.pk).team_id == team.pk
