"""Invalid POSTs on the person, structure and 1:1 pages return 400 with a visible message."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from coaching import services
from coaching.models import ActionItem
from spm.fiscal import parse_period
from spm.models import Role
from tests.factories import MembershipFactory, UserFactory

OWNER_ERROR = "The owner of an action item is the rep or the manager of this 1:1."


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


@pytest.fixture
def one_on_one(org, manager_member, member):
    with scope(organization=org):
        return services.one_on_one_create(
            organization=org,
            manager=manager_member,
            rep=member,
            scheduled_at=dt.datetime(2017, 10, 2, 9, tzinfo=dt.UTC),
            period=parse_period("2017-Q4", 1),
            now=dt.datetime(2017, 10, 1, 9, tzinfo=dt.UTC),
        )


def action_item_post(org, manager_member, one_on_one, owner_id, *, htmx=False):
    client = Client()
    client.force_login(manager_member.user)
    url = reverse("coaching_action_item_add", kwargs={"org_slug": org.slug, "one_on_one_id": one_on_one.pk})
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url, {"title": "Call Kunde AG", "owner": owner_id}, **headers)


def action_items(org):
    with scopes_disabled():
        return ActionItem.objects.filter(organization=org).count()


@pytest.mark.parametrize("htmx", [False, True])
def test_owner_of_other_org_shows_message(org, manager_member, one_on_one, other_org_admin, htmx):
    response = action_item_post(org, manager_member, one_on_one, other_org_admin.pk, htmx=htmx)

    assert response.status_code == (200 if htmx else 400)
    assert OWNER_ERROR in response.content.decode()
    assert action_items(org) == 0


def test_owner_outside_one_on_one_shows_message(org, manager_member, one_on_one, other_rep):
    response = action_item_post(org, manager_member, one_on_one, other_rep.pk)

    assert response.status_code == 400
    assert OWNER_ERROR in response.content.decode()
    assert action_items(org) == 0


def test_person_unknown_form_kind_400(admin_client, member):
    response = admin_client.post(f"/o/acme/people/{member.pk}/", {"kind": "bogus", "member-role": "admin"})

    assert response.status_code == 400
    assert "The form bogus is unknown; send one of: member, assignment, leave, leave_delete." in response.content.decode()
    member.refresh_from_db()
    assert member.role == Role.REP


def test_structure_missing_form_kind_400(admin_client):
    response = admin_client.post("/o/acme/structure/", {"team-name": "West"})

    assert response.status_code == 400
    assert "The form — is unknown; send one of: team, territory, ramp." in response.content.decode()


def test_person_member_form_still_saves(admin_client, org, admin_member):
    with scopes_disabled():
        rep = MembershipFactory(organization=org, role=Role.REP, user=UserFactory(email="new@acme.example"))

    response = admin_client.post(f"/o/acme/people/{rep.pk}/", {"kind": "member", "member-role": "manager"})

    assert response.status_code == 302
    rep.refresh_from_db()
    assert rep.role == Role.MANAGER


def test_person_invalid_leave_400(admin_client, member):
    response = admin_client.post(
        f"/o/acme/people/{member.pk}/",
        {"kind": "leave", "leave-starts_on": "2017-03-10", "leave-ends_on": "2017-03-01"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    with scopes_disabled():
        assert member.leave_periods.count() == 0


def test_structure_invalid_team_400(admin_client, org):
    response = admin_client.post("/o/acme/structure/", {"kind": "team", "team-name": ""})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
