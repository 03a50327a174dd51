"""Generated e-mail addresses of people named without one: spelling, and names that would share an address."""

import datetime as dt
from unittest import mock

import pytest
from django_scopes import scope, scopes_disabled

from pipelines.importers.maven import person_email
from pipelines.models import Deal
from pipelines.services import crm_import
from pipelines.services_records import records_import
from spm.models import Membership
from tests.factories import MembershipFactory, UserFactory

MAPPING = {"external_id": "ID", "owner": "Owner", "created_at": "Created"}


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("Jörg Weiß-Straße", "joerg.weiss.strasse@demo.example"),
        ("Zoë Müller", "zoe.mueller@demo.example"),
        ("Zoe Muller", "zoe.muller@demo.example"),
        ("ÄRGER Öl", "aerger.oel@demo.example"),
        ("Zoe\u0308 Mu\u0308ller", "zoe.mueller@demo.example"),
        ("Łukasz Østergaard", "lukasz.oestergaard@demo.example"),
        ("Mei-Mei Johns", "mei.mei.johns@demo.example"),
        ("Rep 2", "rep.2@demo.example"),
        ("12345", ""),
    ],
)
def test_person_email_spelling(name, email):
    assert person_email(name, "demo") == email


def run_generic(org, tmp_path, rows: str):
    folder = tmp_path / "generic"
    folder.mkdir(exist_ok=True)
    (folder / "deals.csv").write_text("ID,Owner,Created\n" + rows, encoding="utf-8")
    with scope(organization=org):
        return crm_import(organization=org, source="generic", path=folder, today=dt.date(2025, 4, 1), options={"mapping": MAPPING})


def owner_of(org, external_id: str) -> tuple[str, str]:
    with scope(organization=org):
        deal = Deal.objects.select_related("owner__user").get(external_id=external_id)
    return deal.owner.user.name, deal.owner.user.email


def test_umlaut_and_plain_names_stay_apart(org, tmp_path):
    result = run_generic(org, tmp_path, "X-3,Zoë Müller,2017-06-03\nX-4,Zoe Muller,2017-06-04\n")

    assert result.counts["deals"].created == 2
    assert result.counts["people"].created == 2
    assert owner_of(org, "X-3") == ("Zoë Müller", "zoe.mueller@acme.example")
    assert owner_of(org, "X-4") == ("Zoe Muller", "zoe.muller@acme.example")


def test_second_name_with_same_address_rejected(org, tmp_path):
    result = run_generic(org, tmp_path, "X-1,Zoë Müller,2017-06-03\nX-2,Zoe Müller,2017-06-04\nX-3,Zoe Müller,2017-06-05\n")

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 2
    assert result.counts["people"].created == 1
    assert [(error.line, error.column, error.value) for error in result.errors] == [
        (3, "Owner", "Zoe Müller"),
        (4, "Owner", "Zoe Müller"),
    ]
    assert str(result.errors[0].reason) == (
        "the name Zoe Müller gives the same e-mail address zoe.mueller@acme.example as Zoë Müller; if they are one "
        "person, write the name the same way, otherwise enter this person's e-mail address instead of the name"
    )
    with scopes_disabled():
        assert list(Membership.objects.filter(organization=org).values_list("user__name", flat=True)) == ["Zoë Müller"]


def test_name_colliding_with_existing_member_rejected(org, tmp_path):
    with scopes_disabled():
        MembershipFactory(organization=org, user=UserFactory(name="Zoe Mueller", email="zoe.mueller@acme.example"))

    result = run_generic(org, tmp_path, "X-1,Zoë Müller,2017-06-03\n")

    assert result.counts["deals"].rejected == 1
    assert result.counts["people"].created == 0
    assert result.errors[0].value == "Zoë Müller"
    assert "as Zoe Mueller;" in str(result.errors[0].reason)


def test_name_differing_in_case_is_one_person(org, tmp_path):
    result = run_generic(org, tmp_path, "X-1,Eva Roth,2017-06-03\nX-2,eva roth,2017-06-04\n")

    assert result.counts["deals"].created == 2
    assert result.counts["people"].created == 1
    assert owner_of(org, "X-2") == ("Eva Roth", "eva.roth@acme.example")


def test_owner_given_by_email_is_never_a_conflict(org, tmp_path):
    result = run_generic(org, tmp_path, "X-1,Zoë Müller,2017-06-03\nX-2,zoe.m@example.org,2017-06-04\n")

    assert result.counts["deals"].created == 2
    assert result.counts["people"].created == 2


def test_records_people_with_same_address_rejected(org):
    people = [
        {"external_id": "P1", "name": "Zoë Müller"},
        {"external_id": "P2", "name": "Zoe Müller"},
        {"external_id": "P3", "name": "Zoe Müller", "email": "zoe.m@example.org"},
    ]

    with mock.patch("pipelines.services_records.kpi_recompute_schedule"), scope(organization=org):
        result = records_import(organization=org, source="api", label="test", people=people)

    assert result.counts["people"].created == 2
    assert result.counts["people"].rejected == 1
    assert [(error.entity, error.index, error.external_id, error.field) for error in result.record_errors] == [
        ("people", 1, "P2", "name")
    ]
    with scopes_disabled():
        emails = sorted(Membership.objects.filter(organization=org).values_list("user__email", flat=True))
    assert emails == ["zoe.m@example.org", "zoe.mueller@acme.example"]
