"""People upload: a row with a new e-mail address never changes the member who has the row's name."""

import datetime as dt

import pytest
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals.imports import people_import
from spm.models import Membership, Role, User

TODAY = dt.date(2025, 6, 1)


def upload(org, text):
    with scope(organization=org), translation.override("en"):
        result = people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv", today=TODAY)
        reasons = [str(error.reason) for error in result.errors]
    return result, reasons


@pytest.fixture
def rita(member):
    with scopes_disabled():
        member.user.name = "Rita Rep"
        member.user.save(update_fields=["name"])
    return member


def test_new_email_with_member_name_rejected(org, rita):
    result, reasons = upload(org, "name,email,role\nRita Rep,someone.else@example.com,manager\n")

    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert [(error.line, error.column, error.value) for error in result.errors] == [(2, "name", "Rita Rep")]
    assert reasons == [
        (
            "the member with the e-mail address rep@acme.example already has this name; to change that member, "
            "use rep@acme.example in this row, or to add a new person, give a name that tells the two apart"
        )
    ]
    with scopes_disabled():
        assert Membership.objects.get(pk=rita.pk).role == Role.REP
        assert not User.objects.filter(email="someone.else@example.com").exists()


def test_name_matched_case_insensitively_for_new_email(org, rita):
    result, _reasons = upload(org, "name,email\nRITA REP,someone.else@example.com\n")

    assert [(error.line, error.column, error.value) for error in result.errors] == [(2, "name", "RITA REP")]


def test_row_without_email_matches_by_name(org, rita):
    result, reasons = upload(org, "name,email,role\nRita Rep,,manager\n")

    assert (result.created, result.updated, result.rejected) == (0, 1, 0)
    assert reasons == []
    with scopes_disabled():
        assert Membership.objects.get(pk=rita.pk).role == Role.MANAGER


def test_row_with_member_email_updates_member(org, rita):
    result, _reasons = upload(org, "name,email,role\nRita Rep,REP@acme.example,manager\n")

    assert (result.created, result.updated, result.rejected) == (0, 1, 0)
    with scopes_disabled():
        assert Membership.objects.get(pk=rita.pk).role == Role.MANAGER


def test_new_email_with_new_name_creates_person(org, rita):
    result, _reasons = upload(org, "name,email\nRita Rapp,someone.else@example.com\n")

    assert (result.created, result.updated, result.rejected) == (1, 0, 0)
    with scopes_disabled():
        assert Membership.objects.get(organization=org, user__email="someone.else@example.com").user.name == "Rita Rapp"
