"""The person page checks entered working days, assignment and leave dates against the planning range."""

import datetime as dt

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from goals.models import LeavePeriod
from spm.date_limits import planning_range, short_date


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


def latest_day() -> str:
    return short_date(planning_range(timezone.localdate()).latest)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("leave", {"leave-starts_on": "0001-01-01", "leave-ends_on": "2017-01-10"}),
        ("leave", {"leave-starts_on": "2017-01-02", "leave-ends_on": "9999-12-31"}),
        ("assignment", {"assignment-valid_from": "1900-01-01"}),
        ("member", {"member-role": "rep", "member-active_from": "0001-01-01"}),
        ("member", {"member-role": "rep", "member-active_to": "9999-12-31"}),
    ],
)
def test_out_of_range_date_rejected(admin_client, org, member, kind, data):
    with scopes_disabled():
        assignments_before = member.assignments.count()

    response = admin_client.post(f"/o/acme/people/{member.pk}/", {"kind": kind, **data}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert f"is outside the allowed range; enter a date from 01/01/2000 to {latest_day()}." in response.content.decode()
    member.refresh_from_db()
    assert member.active_from is None
    assert member.active_to is None
    with scopes_disabled():
        assert LeavePeriod.objects.filter(membership=member).count() == 0
        assert member.assignments.count() == assignments_before


def test_leave_in_range_is_saved(admin_client, org, member):
    response = admin_client.post(
        f"/o/acme/people/{member.pk}/", {"kind": "leave", "leave-starts_on": "2017-01-02", "leave-ends_on": "2017-01-10"}
    )

    assert response.status_code == 302
    with scopes_disabled():
        leave = LeavePeriod.objects.get(membership=member)
    assert (leave.starts_on, leave.ends_on) == (dt.date(2017, 1, 2), dt.date(2017, 1, 10))


def test_date_pickers_offer_the_range(admin_client, member):
    response = admin_client.get(f"/o/acme/people/{member.pk}/")

    allowed = planning_range(timezone.localdate())
    page = response.content.decode()
    assert page.count(f'min="{allowed.earliest.isoformat()}"') == 5
    assert page.count(f'max="{allowed.latest.isoformat()}"') == 5
