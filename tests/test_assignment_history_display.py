"""The person page's team and territory history: the placeholder first day reads as "since the start"."""

import datetime as dt

import pytest
from django.utils import translation
from django_scopes import scope

from goals import services
from tests.factories import TeamFactory

CHANGE_DAY = dt.date(2017, 10, 1)


@pytest.fixture
def moved_member(org, member):
    """The rep of North, without an active_from, moved to South on CHANGE_DAY."""
    with scope(organization=org):
        south = TeamFactory(organization=org, name="South")
        services.assignment_change(
            membership=member, actor=None, team=south, territory=None, valid_from=CHANGE_DAY, today=CHANGE_DAY
        )
    return member


@pytest.mark.parametrize(
    ("language", "first_row"),
    [
        ("en", "<tr><td>since the start</td><td>10/01/2017</td><td>North</td>"),
        ("de", "<tr><td>seit Beginn</td><td>01.10.2017</td><td>North</td>"),
    ],
)
def test_history_start_shown_as_text(admin_client, moved_member, language, first_row):
    with translation.override(language):
        response = admin_client.get(f"/o/acme/people/{moved_member.pk}/", HTTP_ACCEPT_LANGUAGE=language)

    text = response.content.decode()
    assert first_row in text
    assert "1900" not in text


def test_history_active_from_shown_as_date(admin_client, org, member):
    with scope(organization=org):
        member.active_from = dt.date(2017, 1, 2)
        member.save(update_fields=["active_from"])
        south = TeamFactory(organization=org, name="South")
        services.assignment_change(
            membership=member, actor=None, team=south, territory=None, valid_from=CHANGE_DAY, today=CHANGE_DAY
        )

    response = admin_client.get(f"/o/acme/people/{member.pk}/")

    text = response.content.decode()
    assert "<tr><td>01/02/2017</td><td>10/01/2017</td><td>North</td>" in text
    assert "<tr><td>10/01/2017</td><td>—</td><td>South</td>" in text
    assert "since the start" not in text
