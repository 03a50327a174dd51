"""The person page proposes the organization's date, not the server's, as the assignment's first day."""

import datetime as dt
import re

import pytest
from django_scopes import scopes_disabled

# 23:30 UTC on 10 March is still 10 March in New York, where Acme is, and 11 March in Berlin.
NOW = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


def test_valid_from_initial_is_organization_date(admin_client, org, member):
    with scopes_disabled():
        org.time_zone = "America/New_York"
        org.save(update_fields=["time_zone"])

    response = admin_client.get(f"/o/acme/people/{member.pk}/")

    field = re.search(r'<input[^>]*name="assignment-valid_from"[^>]*>', response.content.decode())[0]
    assert 'value="2026-03-10"' in field
