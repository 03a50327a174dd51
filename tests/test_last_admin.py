"""An organization keeps at least one active admin: role changes and erasures that would remove the last one fail."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from goals import services
from goals.imports import people_import
from spm.models import AuditLog, Membership, Role
from spm.privacy import person_pseudonymize
from tests.factories import MembershipFactory, UserFactory

LAST_ADMIN = "Admin is the only active admin of Acme"


@pytest.fixture
def named_admin(admin_member):
    with scopes_disabled():
        admin_member.user.name = "Admin"
        admin_member.user.save(update_fields=["name"])
    return admin_member


@pytest.fixture
def second_admin(org):
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.ADMIN, user=UserFactory(email="admin2@acme.example", name="Second Admin")
        )


def person_url(membership):
    return reverse("goals_person", kwargs={"org_slug": "acme", "membership_id": membership.pk})


def role_post(client, membership, role):
    return client.post(person_url(membership), {"kind": "member", "member-role": role}, follow=True)


def role_of(membership):
    with scopes_disabled():
        return Membership.objects.get(pk=membership.pk).role


def role_changes(org):
    with scopes_disabled():
        return AuditLog.objects.filter(organization=org, action="membership.role_changed").count()


def test_service_rejects_demoting_only_admin(org, named_admin, member):
    with scope(organization=org), pytest.raises(ValidationError) as error:
        services.membership_update(
            membership=named_admin, actor=named_admin.user, role=Role.REP, active_from=None, active_to=None
        )

    assert error.value.code == "last_admin"
    assert LAST_ADMIN in error.value.messages[0]
    assert role_of(named_admin) == Role.ADMIN


def test_page_refuses_own_demotion_as_only_admin(client, org, named_admin, member):
    client.force_login(named_admin.user)

    response = role_post(client, named_admin, Role.REP)

    assert response.status_code == 400
    assert LAST_ADMIN in response.content.decode()
    assert role_of(named_admin) == Role.ADMIN
    assert role_changes(org) == 0


def test_inactive_admin_does_not_count(client, org, named_admin, second_admin):
    with scopes_disabled():
        second_admin.user.is_active = False
        second_admin.user.save(update_fields=["is_active"])
    client.force_login(named_admin.user)

    response = role_post(client, named_admin, Role.MANAGER)

    assert LAST_ADMIN in response.content.decode()
    assert role_of(named_admin) == Role.ADMIN


def test_own_demotion_with_second_admin_confirmed(client, org, named_admin, second_admin):
    client.force_login(named_admin.user)

    response = role_post(client, named_admin, Role.MANAGER)

    assert response.redirect_chain[0] == (reverse("organization_home", kwargs={"org_slug": "acme"}), 302)
    assert "You are no longer an admin of Acme." in response.content.decode()
    assert role_of(named_admin) == Role.MANAGER
    assert role_changes(org) == 1


def test_admin_demotes_other_admin(client, org, named_admin, second_admin):
    client.force_login(named_admin.user)

    response = role_post(client, second_admin, Role.REP)

    assert response.redirect_chain == [(person_url(second_admin), 302)]
    assert role_of(second_admin) == Role.REP


def test_own_person_page_warns_admin(client, named_admin, second_admin):
    client.force_login(named_admin.user)

    own = client.get(person_url(named_admin)).content.decode()
    other = client.get(person_url(second_admin)).content.decode()

    assert "This is your own membership." in own
    assert "This is your own membership." not in other


def test_upload_rejects_demoting_only_admin(org, named_admin):
    text = "name;email;role\nAdmin;admin@acme.example;rep\n"

    with scope(organization=org):
        result = people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv")

    assert (result.updated, result.rejected) == (0, 1)
    assert LAST_ADMIN in str(result.errors[0])
    assert role_of(named_admin) == Role.ADMIN


def test_erasing_only_admin_refused(org, named_admin):
    with scope(organization=org), pytest.raises(ValidationError) as error:
        person_pseudonymize(membership=named_admin, actor=None)

    assert error.value.code == "last_admin"
    named_admin.user.refresh_from_db()
    assert named_admin.user.is_active is True
    assert named_admin.user.name == "Admin"


def test_erasing_one_of_two_admins_allowed(org, named_admin, second_admin):
    with scope(organization=org):
        pseudonym = person_pseudonymize(membership=second_admin, actor=named_admin.user)

    second_admin.user.refresh_from_db()
    assert second_admin.user.is_active is False
    assert second_admin.user.name == pseudonym
