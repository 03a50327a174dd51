"""The person page shows and changes a member's direct manager, who may open the member's pages like the team's managers."""

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from spm.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def second_manager(org):
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.MANAGER, user=UserFactory(email="second@acme.example", name="Sam Second")
        )


def post_member(admin_client, member, **values):
    data = {"kind": "member", "member-role": member.role, **{f"member-{name}": value for name, value in values.items()}}
    return admin_client.post(f"/o/acme/people/{member.pk}/", data, HTTP_ACCEPT_LANGUAGE="en")


def test_person_page_selects_current_manager(admin_client, member, manager_member):
    content = admin_client.get(f"/o/acme/people/{member.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Direct manager" in content
    assert f'<option value="{manager_member.pk}" selected>' in content


def test_person_page_changes_and_clears_manager(admin_client, member, second_manager):
    response = post_member(admin_client, member, manager=second_manager.pk)

    assert response.status_code == 302
    with scopes_disabled():
        assert Membership.objects.get(pk=member.pk).manager_id == second_manager.pk

    post_member(admin_client, member, manager="")

    with scopes_disabled():
        assert Membership.objects.get(pk=member.pk).manager_id is None


def test_cleared_manager_loses_sight_of_rep_outside_team(admin_client, member, second_manager):
    post_member(admin_client, member, manager=second_manager.pk)
    manager_client = Client()
    manager_client.force_login(second_manager.user)
    assert manager_client.get(f"/o/acme/reps/{member.pk}/").status_code == 200

    post_member(admin_client, member, manager="")

    assert manager_client.get(f"/o/acme/reps/{member.pk}/").status_code == 404


def test_manager_from_own_reporting_line_rejected(admin_client, manager_member, member, org):
    with scopes_disabled():
        member.role = Role.MANAGER
        member.save(update_fields=["role"])

    response = post_member(admin_client, manager_member, manager=member.pk)

    content = response.content.decode()
    assert f"{member.display_name} reports to {manager_member.display_name}, so" in content
    with scopes_disabled():
        assert Membership.objects.get(pk=manager_member.pk).manager_id is None
