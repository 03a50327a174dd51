"""Malformed API tokens get 401 with the invalid-token message, never a server error."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

INVALID = "Invalid API token; copy the whole token from the API tokens page."
SECRET = "A" * 32

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_throttle_cache():
    # Throttle counters live in the cache; each test starts from zero requests.
    cache.clear()


@pytest.mark.parametrize(
    "organization_id",
    [
        "9223372036854775808",  # one above the largest bigint
        "99999999999999999999",
        "9" * 30,
        "١٢",  # Arabic-Indic digits, which \d matches and int() reads
    ],
)
def test_token_with_unusable_organization_id_401(organization_id):
    # A WSGI server hands header bytes over decoded as Latin-1, so UTF-8 digits arrive that way.
    header = f"Bearer spm_{organization_id}_{SECRET}".encode().decode("latin-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header, HTTP_ACCEPT_LANGUAGE="en")

    response = client.get(reverse("api_deals"))

    assert response.status_code == 401
    assert response.json() == {"detail": INVALID}
