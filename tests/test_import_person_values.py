"""People named by imports and the API: invalid e-mail addresses and values longer than their columns are rejected per row."""

import shutil
from pathlib import Path

import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled

from goals.imports import people_import
from pipelines.models import Deal
from spm.models import Membership, User
from tests.factories import MembershipFactory, UserFactory
from tests.import_helpers import TODAY, export_folder, run_file_import, run_records

MAPPING = {"external_id": "ID", "owner": "Owner", "created_at": "Created"}
LONG_OWNER = "O" * 250
TOO_LONG_200 = "too long; at most 200 characters"
TOO_LONG_254 = "too long; at most 254 characters"
INVALID_EMAIL = "invalid e-mail address; enter an address such as anna.schmidt@example.com"
# 130 letters that are written as two ("ä" → "ae"), so the built address has 260 + len("@acme.example") = 273 characters.
UMLAUT_NAME = "ä" * 130
UMLAUT_REASON = (
    "too long; the e-mail address built from the name, " + "ae" * 30 + "…, has 273 characters and at most 254 are "
    "allowed, so shorten the name or enter the person's e-mail address"
)


def run_generic(org, tmp_path, rows: str):
    folder = export_folder(tmp_path / "generic", {"deals.csv": "ID,Owner,Created\n" + rows})
    return run_file_import(org, "generic", folder, options={"mapping": MAPPING})


def rejections(result) -> list[tuple[str, int, str, str, str]]:
    return [(error.file_name, error.line, str(error.column), error.value, str(error.reason)) for error in result.errors]


def record_rejections(result) -> list[tuple[str, int, str, str, str]]:
    return [(error.entity, error.index, error.field, error.value, str(error.reason)) for error in result.record_errors]


def member_emails(org) -> list[str]:
    with scopes_disabled():
        return sorted(Membership.objects.filter(organization=org).values_list("user__email", flat=True))


def deal_keys(org) -> list[str]:
    with scope(organization=org):
        return sorted(Deal.objects.values_list("external_id", flat=True))


# Names longer than their columns


def test_generic_long_owner_rejected(org, tmp_path):
    result = run_generic(org, tmp_path, f"X-1,{LONG_OWNER},2025-02-03\nX-2,Eva Roth,2025-02-04\n")

    assert rejections(result) == [("deals.csv", 2, "Owner", LONG_OWNER, TOO_LONG_200)]
    assert str(result.errors[0]) == f"deals.csv line 2, column Owner, value '{'O' * 60}…': {TOO_LONG_200}"
    assert result.counts["deals"].created == 1
    assert result.counts["people"].created == 1
    assert member_emails(org) == ["eva.roth@acme.example"]
    assert deal_keys(org) == ["X-2"]


def test_generic_long_owner_reimport_same(org, tmp_path):
    rows = f"X-1,{LONG_OWNER},2025-02-03\nX-2,Eva Roth,2025-02-04\n"
    run_generic(org, tmp_path, rows)

    result = run_generic(org, tmp_path, rows)

    assert rejections(result) == [("deals.csv", 2, "Owner", LONG_OWNER, TOO_LONG_200)]
    assert result.counts["deals"].unchanged == 1
    assert result.counts["people"].created == 0
    assert member_emails(org) == ["eva.roth@acme.example"]


def test_generic_owner_of_200_characters_kept_whole(org, tmp_path):
    name = "O" * 200

    result = run_generic(org, tmp_path, f"X-1,{name},2025-02-03\n")

    assert result.errors == []
    with scopes_disabled():
        member = Membership.objects.select_related("user").get(organization=org)
    assert (member.external_id, member.user.name, member.user.email) == (name, name, "o" * 200 + "@acme.example")


def test_generic_owner_building_long_address_rejected(org, tmp_path):
    result = run_generic(org, tmp_path, f"X-1,{UMLAUT_NAME},2025-02-03\n")

    assert rejections(result) == [("deals.csv", 2, "Owner", UMLAUT_NAME, UMLAUT_REASON)]
    assert member_emails(org) == []


def test_records_long_values_rejected(org):
    people = [{"external_id": "P1", "name": UMLAUT_NAME}, {"external_id": "P2", "email": "x" * 250 + "@acme.example"}]
    deals = [{"external_id": "D1", "owner": UMLAUT_NAME, "stage": "Open", "created_at": "2025-02-03"}]
    activities = [{"external_id": "A1", "kind": "call", "owner": "O" * 201, "occurred_at": "2025-02-04T10:00:00"}]

    result = run_records(org, people=people, deals=deals, activities=activities)

    assert record_rejections(result) == [
        ("people", 1, "email", "x" * 250 + "@acme.example", TOO_LONG_254),
        ("people", 0, "name", UMLAUT_NAME, UMLAUT_REASON),
        ("deals", 0, "owner", UMLAUT_NAME, UMLAUT_REASON),
        ("activities", 0, "owner", "O" * 201, TOO_LONG_200),
    ]
    assert member_emails(org) == []


def test_maven_agent_building_long_address_rejected(org, tmp_path):
    folder = tmp_path / "maven"
    shutil.copytree(Path(__file__).parent / "data" / "maven_small", folder)
    with (folder / "sales_teams.csv").open("a", encoding="utf-8") as teams:
        teams.write(f"{UMLAUT_NAME},Dustin Brinkmann,Central\n")

    result = run_file_import(org, "maven", folder)

    teams_rejected = [row for row in rejections(result) if row[0] == "sales_teams.csv"]
    assert [row[2:] for row in teams_rejected] == [("sales_agent", UMLAUT_NAME, UMLAUT_REASON)]
    with scopes_disabled():
        assert not User.objects.filter(name=UMLAUT_NAME).exists()


# Invalid e-mail addresses


@pytest.mark.parametrize("owner", ["@evil", "a@b", "@"])
def test_generic_owner_invalid_address_rejected(org, tmp_path, owner):
    result = run_generic(org, tmp_path, f"X-1,{owner},2025-02-03\n")

    assert rejections(result) == [("deals.csv", 2, "Owner", owner, INVALID_EMAIL)]
    assert member_emails(org) == []
    with scopes_disabled():
        assert not User.objects.filter(email=owner).exists()


def test_invalid_address_never_matches_stored_user(org, tmp_path):
    # A member whose address an older version stored without checking it.
    with scopes_disabled():
        MembershipFactory(organization=org, user=UserFactory(email="@evil"))

    result = run_generic(org, tmp_path, "X-1,@evil,2025-02-03\n")
    records = run_records(
        org, deals=[{"external_id": "D1", "owner_email": "@", "stage": "Open", "created_at": "2025-02-03"}]
    )

    assert rejections(result) == [("deals.csv", 2, "Owner", "@evil", INVALID_EMAIL)]
    assert record_rejections(records) == [("deals", 0, "owner_email", "@", INVALID_EMAIL)]
    assert deal_keys(org) == []


def test_records_person_invalid_address_rejected(org):
    people = [{"external_id": "P1", "name": "Eva Roth", "email": "a fourteen@example.com"}]

    result = run_records(org, people=people)

    assert record_rejections(result) == [("people", 0, "email", "a fourteen@example.com", INVALID_EMAIL)]
    assert member_emails(org) == []


def test_pipedrive_user_invalid_address_rejected(org, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(Path(__file__).parent / "data" / "pipedrive_changelog", folder)
    users = (folder / "users.csv").read_text(encoding="utf-8")
    (folder / "users.csv").write_text(users.replace("alan@example.org", "alan@example"), encoding="utf-8")

    result = run_file_import(org, "pipedrive", folder)

    assert [row for row in rejections(result) if row[0] == "users.csv" and row[1] == 3] == [
        ("users.csv", 3, "email", "alan@example", INVALID_EMAIL)
    ]
    assert member_emails(org) == ["ada@example.org"]


# A valid address of 240 characters: longer than other external ids may be, within User.email's 254.
LONG_EMAIL = "a" * 60 + "@" + ("d" * 55 + ".") * 3 + "example.org"


def test_pipedrive_user_long_address_imported(org, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(Path(__file__).parent / "data" / "pipedrive_changelog", folder)
    users = (folder / "users.csv").read_text(encoding="utf-8")
    (folder / "users.csv").write_text(users.replace("alan@example.org", LONG_EMAIL), encoding="utf-8")

    result = run_file_import(org, "pipedrive", folder)

    assert len(LONG_EMAIL) == 240
    assert [row for row in rejections(result) if row[0] == "users.csv" and row[1] == 3] == []
    with scopes_disabled():
        member = Membership.objects.select_related("user").get(organization=org, user__email=LONG_EMAIL)
    assert member.external_id == LONG_EMAIL


def test_records_long_owner_email_and_id_accepted(org):
    long_id = "P" * 254
    people = [{"external_id": long_id, "email": "p@acme.example"}]
    deals = [{"external_id": "D1", "owner_email": LONG_EMAIL, "stage": "Open", "created_at": "2025-02-03"}]

    result = run_records(org, people=people, deals=deals)

    assert record_rejections(result) == []
    with scopes_disabled():
        external_ids = sorted(Membership.objects.filter(organization=org).values_list("external_id", flat=True))
    assert external_ids == [long_id, LONG_EMAIL]
    assert deal_keys(org) == ["D1"]


# The people upload (people page and import_people)


def upload_people(org, text: str):
    with scope(organization=org):
        return people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv", today=TODAY)


def test_people_upload_invalid_addresses_rejected(org):
    long_email = "x" * 250 + "@example.com"
    text = (
        "name,email\n"
        "A Three,@\n"
        "A Four,a@b\n"
        "A Fourteen,a fourteen@example.com\n"
        f"A Long,{long_email}\n"
        "Eva Roth,eva@example.com\n"
    )

    result = upload_people(org, text)

    assert [(error.line, error.column, error.value, str(error.reason)) for error in result.errors] == [
        (2, "email", "@", INVALID_EMAIL),
        (3, "email", "a@b", INVALID_EMAIL),
        (4, "email", "a fourteen@example.com", INVALID_EMAIL),
        (5, "email", long_email, TOO_LONG_254),
    ]
    assert result.created == 1
    assert member_emails(org) == ["eva@example.com"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL enforces varchar lengths")
def test_long_owner_rejected_on_postgresql(org, tmp_path):
    # On PostgreSQL the unchecked value raised DataError and aborted the whole file.
    result = run_generic(org, tmp_path, f"X-1,{'O' * 260},2025-02-03\nX-2,Eva Roth,2025-02-04\n")

    assert [row[:3] for row in rejections(result)] == [("deals.csv", 2, "Owner")]
    assert deal_keys(org) == ["X-2"]
