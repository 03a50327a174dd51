"""An API token acts with its creator's authority: deactivation, demotion and erasure end it."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from integrations.api.models import ApiToken
from integrations.api.services import api_token_create
from spm.models import AuditLog, Role
from spm.privacy import person_pseudonymize
from tests.factories import MembershipFactory

DEACTIVATED = "The account that created this API token is deactivated, so the token no longer works. Ask an admin for a new token."
NOT_ADMIN = (
    "The person who created this API token is no longer an admin of this organization, so the token no longer "
    "works. Ask an admin for a new token."
)
REVOKED = "This API token was revoked; ask an admin for a new one."

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_throttle_cache():
    # Throttle counters live in the cache; each test starts from zero requests.
    cache.clear()


def token_for(organization, user):
    with scope(organization=organization):
        return api_token_create(organization=organization, name="BI export", scope="read", actor=user)


def get_deals(plain: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE="en")
    return client.get(reverse("api_deals"))


def test_admin_token_works(org, admin_member):
    _token, plain = token_for(org, admin_member.user)

    assert get_deals(plain).status_code == 200


def test_token_without_creator_works(org):
    _token, plain = token_for(org, None)

    assert get_deals(plain).status_code == 200


def test_deactivated_creator_is_401(org, admin_member):
    _token, plain = token_for(org, admin_member.user)
    admin_member.user.is_active = False
    admin_member.user.save(update_fields=["is_active"])

    response = get_deals(plain)

    assert response.status_code == 401
    assert response.json()["detail"] == DEACTIVATED


def test_demoted_creator_is_403(org, admin_member):
    _token, plain = token_for(org, admin_member.user)
    with scopes_disabled():
        admin_member.role = Role.MANAGER
        admin_member.save(update_fields=["role"])

    response = get_deals(plain)

    assert response.status_code == 403
    assert response.json()["detail"] == NOT_ADMIN


def test_removed_creator_is_403(org, admin_member):
    _token, plain = token_for(org, admin_member.user)
    with scopes_disabled():
        admin_member.delete()

    response = get_deals(plain)

    assert response.status_code == 403
    assert response.json()["detail"] == NOT_ADMIN


def test_admin_of_other_organization_is_403(org, other_org, admin_member):
    # Only a membership in the token's own organization counts.
    _token, plain = token_for(org, admin_member.user)
    with scopes_disabled():
        MembershipFactory(organization=other_org, user=admin_member.user, role=Role.ADMIN)
        admin_member.role = Role.REP
        admin_member.save(update_fields=["role"])

    response = get_deals(plain)

    assert response.status_code == 403
    assert response.json()["detail"] == NOT_ADMIN


def test_erasure_revokes_creator_tokens(org, admin_member):
    with scopes_disabled():
        second_admin = MembershipFactory(organization=org, role=Role.ADMIN)
    token, plain = token_for(org, admin_member.user)
    other_token, other_plain = token_for(org, second_admin.user)

    with scope(organization=org):
        person_pseudonymize(membership=admin_member, actor=second_admin.user)

    response = get_deals(plain)
    assert response.status_code == 401
    assert response.json()["detail"] == REVOKED
    assert get_deals(other_plain).status_code == 200
    with scopes_disabled():
        token.refresh_from_db()
        other_token.refresh_from_db()
        entry = AuditLog.objects.get(action="privacy.person_pseudonymized")
        assert ApiToken.objects.filter(revoked_at__isnull=False).count() == 1
    assert token.revoked_at is not None
    assert token.revoked_by_id == second_admin.user.pk
    assert other_token.revoked_at is None
    assert entry.after["api_tokens_revoked"] == 1
