"""Team and territory changes without a given `today` use the organization's date, not the server's.

Every test runs at NOW, 2026-03-10 23:30 UTC. That is 19:30 on 10 March in Acme's zone
America/New_York, but already 11 March in the server's zone Europe/Berlin.
"""

import datetime as dt

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from goals import forms, services
from goals.imports import people_import
from goals.models import Assignment
from tests.factories import TeamFactory

NOW = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)
NEW_YORK_TODAY = dt.date(2026, 3, 10)
NEW_YORK_TOMORROW = dt.date(2026, 3, 11)


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


@pytest.fixture
def new_york(org):
    with scopes_disabled():
        org.time_zone = "America/New_York"
        org.save(update_fields=["time_zone"])
    return org


@pytest.fixture
def south(org):
    with scopes_disabled():
        return TeamFactory(organization=org, name="South")


def assignment_history(member):
    with scopes_disabled():
        rows = Assignment.objects.filter(membership=member).order_by("valid_from")
        return list(rows.values_list("team__name", "valid_from", "valid_to"))


def test_people_import_uses_organization_date(new_york, member, team):
    text = "name,email,team\n,rep@acme.example,South\n"

    with scope(organization=new_york):
        result = people_import(organization=new_york, actor=None, data=text.encode(), file_name="people.csv")

    assert result.updated == 1
    assert assignment_history(member) == [
        ("North", dt.date(1900, 1, 1), NEW_YORK_TODAY),
        ("South", NEW_YORK_TODAY, None),
    ]


def test_future_move_keeps_current_team(new_york, member, team, south):
    # Tomorrow in New York is today on the server, but the move has not started yet.
    with scope(organization=new_york):
        services.assignment_change(
            membership=member, actor=None, team=south, territory=None, valid_from=NEW_YORK_TOMORROW
        )

    member.refresh_from_db()
    assert member.team_id == team.pk
    assert assignment_history(member) == [
        ("North", dt.date(1900, 1, 1), NEW_YORK_TOMORROW),
        ("South", NEW_YORK_TOMORROW, None),
    ]


def test_move_from_today_changes_team(new_york, member, team, south):
    with scope(organization=new_york):
        services.assignment_change(membership=member, actor=None, team=south, territory=None, valid_from=NEW_YORK_TODAY)

    member.refresh_from_db()
    assert member.team_id == south.pk


def test_person_page_future_move_keeps_team(client, admin_member, new_york, member, team, south):
    client.force_login(admin_member.user)
    data = {"kind": "assignment", "assignment-team": south.pk, "assignment-valid_from": NEW_YORK_TOMORROW.isoformat()}

    response = client.post(f"/o/acme/people/{member.pk}/", data)

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.team_id == team.pk
    assert assignment_history(member)[-1] == ("South", NEW_YORK_TOMORROW, None)


def test_assignment_form_initial_is_organization_date(new_york):
    with scope(organization=new_york), timezone.override(new_york.tzinfo):
        form = forms.AssignmentForm(prefix="assignment")
        initial = form.get_initial_for_field(form.fields["valid_from"], "valid_from")

    assert initial == NEW_YORK_TODAY
