"""Shared fixtures: two organizations with members of every role."""

import pytest
from django_scopes import scopes_disabled

from spm.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    # Tests assert English strings unless they switch language themselves.
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def org(db):
    with scopes_disabled():
        return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def other_org(db):
    with scopes_disabled():
        return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def admin_member(org):
    with scopes_disabled():
        return MembershipFactory(organization=org, role=Role.ADMIN, user=UserFactory(email="admin@acme.example"))


@pytest.fixture
def team(org):
    with scopes_disabled():
        return TeamFactory(organization=org, name="North")


@pytest.fixture
def manager_member(org, team):
    with scopes_disabled():
        manager = MembershipFactory(
            organization=org, role=Role.MANAGER, team=team, user=UserFactory(email="manager@acme.example")
        )
        team.manager = manager
        team.save(update_fields=["manager"])
        return manager


@pytest.fixture
def member(org, team, manager_member):
    """A rep in the manager's team."""
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.REP, team=team, manager=manager_member, user=UserFactory(email="rep@acme.example")
        )


@pytest.fixture
def other_rep(org, team, manager_member):
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.REP, team=team, manager=manager_member, user=UserFactory(email="rep2@acme.example")
        )


@pytest.fixture
def other_org_admin(other_org):
    with scopes_disabled():
        return MembershipFactory(
            organization=other_org, role=Role.ADMIN, user=UserFactory(email="admin@globex.example")
        )
