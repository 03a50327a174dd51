"""Imports never make a user of another organization a member: every path that resolves people by e-mail."""

import html
import io
import re
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from goals.imports import people_import
from goals.models import Team
from integrations.api.services import api_token_create
from pipelines.models import Deal, ImportRun, ImportRunStatus
from spm.models import Membership, Role, User
from tests.factories import MembershipFactory, UserFactory
from tests.import_helpers import TODAY, export_folder, import_start, mapped_dry_run, run_file_import, run_records

pytestmark = pytest.mark.usefixtures("import_storage")

# The e-mail address of the `globex_boss` fixture.
BOSS = "boss@globex.example"
REASON = (
    "the e-mail address {email} belongs to an existing SPM account outside this organization, so the import does "
    "not add it here; enter another e-mail address for this person, or ask the operator of this SPM installation to "
    "add the account with manage.py import_people --add-existing-accounts"
)
REASON_DE = (
    "die E-Mail-Adresse {email} gehört zu einem bestehenden SPM-Konto außerhalb dieser Organisation, daher fügt der "
    "Import es hier nicht hinzu; geben Sie für diese Person eine andere E-Mail-Adresse an, oder bitten Sie den "
    "Betreiber dieser SPM-Installation, das Konto mit manage.py import_people --add-existing-accounts hinzuzufügen"
)
MAVEN_REASON = (
    "the name gives the e-mail address {email}, which belongs to an existing SPM account outside this organization, "
    "so the import does not add it here; to add that account on purpose, run manage.py import_people "
    "--add-existing-accounts with this name and address first, then import again"
)

MAPPING = {"external_id": "Nr", "owner": "Verkäufer", "created_at": "Angelegt"}
# A new name, the organization's admin (a member already) and an admin of Globex.
GENERIC_CSV = (
    "Nr;Verkäufer;Angelegt\n"
    "A-1;Eva Roth;03.02.2025\n"
    "A-2;admin@acme.example;03.02.2025\n"
    f"A-3;{BOSS};04.02.2025\n"
)


def memberships_of(user) -> list[tuple[str, str]]:
    with scopes_disabled():
        return sorted(Membership.objects.filter(user=user).values_list("organization__slug", "role"))


def member_emails(org) -> list[str]:
    with scopes_disabled():
        return sorted(Membership.objects.filter(organization=org).values_list("user__email", flat=True))


def assert_boss_untouched(globex_boss) -> None:
    """The Globex admin has only their Globex membership, as before, and still logs in with their password."""
    assert memberships_of(globex_boss.user) == [("globex", Role.ADMIN)]
    with scopes_disabled():
        boss = User.objects.get(email=BOSS)
        stored = Membership.objects.get(pk=globex_boss.pk)
    assert boss.check_password("correct-horse-battery") is True
    assert (stored.role, stored.external_id, stored.team_id, stored.territory_id) == (Role.ADMIN, "", None, None)


def rejections(result) -> list[tuple[str, int, str, str, str]]:
    return [(error.file_name, error.line, str(error.column), error.value, str(error.reason)) for error in result.errors]


# Generic CSV (the same `PeopleDirectory` resolves owners for HubSpot, Salesforce and Pipedrive deals)


def test_generic_rejects_foreign_owner(org, admin_member, globex_boss, tmp_path):
    folder = export_folder(tmp_path / "export", {"deals.csv": GENERIC_CSV})

    result = run_file_import(org, "generic", folder, options={"mapping": MAPPING})

    assert rejections(result) == [("deals.csv", 4, "Verkäufer", BOSS, REASON.format(email=BOSS))]
    assert result.counts["deals"].created == 2
    assert result.counts["deals"].rejected == 1
    assert result.counts["people"].created == 1
    assert result.counts["people"].unchanged == 1
    assert [person.email for person in result.people_created] == ["eva.roth@acme.example"]
    assert member_emails(org) == ["admin@acme.example", "eva.roth@acme.example"]
    with scope(organization=org):
        assert sorted(Deal.objects.values_list("external_id", "owner__user__email")) == [
            ("A-1", "eva.roth@acme.example"),
            ("A-2", "admin@acme.example"),
        ]
    assert_boss_untouched(globex_boss)


def test_generic_rejects_foreign_generated_address(org, other_org, tmp_path):
    """A name whose made-up address belongs to a Globex user is rejected too, naming that address."""
    with scopes_disabled():
        eva = MembershipFactory(
            organization=other_org, role=Role.REP, user=UserFactory(email="eva.roth@acme.example", name="Eva Roth")
        )
    folder = export_folder(tmp_path / "export", {"deals.csv": "Nr;Verkäufer;Angelegt\nA-1;Eva Roth;03.02.2025\n"})

    result = run_file_import(org, "generic", folder, options={"mapping": MAPPING})

    assert rejections(result) == [("deals.csv", 2, "Verkäufer", "Eva Roth", REASON.format(email="eva.roth@acme.example"))]
    assert member_emails(org) == []
    assert memberships_of(eva.user) == [("globex", Role.REP)]


def test_generic_rejects_user_without_membership(org, tmp_path):
    """A stored user who belongs to no organization keeps their password too, so they are not attached either."""
    UserFactory(email="loner@example.com", name="Lone Wolf")
    folder = export_folder(tmp_path / "export", {"deals.csv": "Nr;Verkäufer;Angelegt\nA-1;loner@example.com;03.02.2025\n"})

    result = run_file_import(org, "generic", folder, options={"mapping": MAPPING})

    assert rejections(result) == [
        ("deals.csv", 2, "Verkäufer", "loner@example.com", REASON.format(email="loner@example.com"))
    ]
    assert member_emails(org) == []


def test_generic_matches_member_of_both(org, member, other_org, tmp_path):
    """A member of this organization who also belongs to Globex is matched as today."""
    with scopes_disabled():
        MembershipFactory(organization=other_org, role=Role.ADMIN, user=member.user)
    folder = export_folder(tmp_path / "export", {"deals.csv": "Nr;Verkäufer;Angelegt\nA-1;rep@acme.example;03.02.2025\n"})

    result = run_file_import(org, "generic", folder, options={"mapping": MAPPING})

    assert result.errors == []
    assert result.counts["people"].unchanged == 1
    with scope(organization=org):
        assert Deal.objects.get(external_id="A-1").owner_id == member.pk
    assert memberships_of(member.user) == [("acme", Role.REP), ("globex", Role.ADMIN)]


@pytest.fixture
def checked_run(org, admin_client, globex_boss, django_capture_on_commit_callbacks) -> ImportRun:
    """The dry run of GENERIC_CSV, uploaded and mapped on the import page."""
    return mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, GENERIC_CSV, MAPPING)


def page_reasons(page: str) -> list[str]:
    return [html.unescape(reason) for reason in re.findall(r"<td data-reason>(.*?)</td>", page)]


def test_generic_dry_run_shows_rejection(org, checked_run, globex_boss):
    assert checked_run.status == ImportRunStatus.PREVIEWED
    assert [row[:4] for row in checked_run.rejected_rows] == [["deals.csv", 4, "Verkäufer", BOSS]]
    assert checked_run.summary["people_created"] == [
        {"key": "Eva Roth", "name": "Eva Roth", "email": "eva.roth@acme.example", "account": "new"}
    ]
    assert member_emails(org) == ["admin@acme.example"]
    assert_boss_untouched(globex_boss)


def test_generic_dry_run_page_gives_reason(checked_run, admin_client):
    english = admin_client.get(f"/o/acme/imports/{checked_run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    german = admin_client.get(f"/o/acme/imports/{checked_run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert page_reasons(english) == [REASON.format(email=BOSS)]
    assert page_reasons(german) == [REASON_DE.format(email=BOSS)]


def test_generic_import_rejects_like_dry_run(org, checked_run, admin_client, globex_boss, django_capture_on_commit_callbacks):
    import_start(admin_client, django_capture_on_commit_callbacks, checked_run)

    assert checked_run.status == ImportRunStatus.SUCCEEDED
    assert [row[:4] for row in checked_run.rejected_rows] == [["deals.csv", 4, "Verkäufer", BOSS]]
    assert member_emails(org) == ["admin@acme.example", "eva.roth@acme.example"]
    assert_boss_untouched(globex_boss)


# Pipedrive users.csv


@pytest.fixture
def changelog(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(Path(__file__).parent / "data" / "pipedrive_changelog", folder)
    return folder


def test_pipedrive_rejects_foreign_user(org, other_org, changelog):
    with scopes_disabled():
        alan = MembershipFactory(organization=other_org, role=Role.MANAGER, user=UserFactory(email="alan@example.org"))

    result = run_file_import(org, "pipedrive", changelog)

    # Line 4 repeats Ada's address and is rejected as before.
    assert sorted(row[1] for row in rejections(result) if row[0] == "users.csv") == [3, 4]
    assert [row for row in rejections(result) if row[0] == "users.csv" and row[1] == 3] == [
        ("users.csv", 3, "email", "alan@example.org", REASON.format(email="alan@example.org"))
    ]
    # Deal 200 changes owner to user id 2 (Alan) on line 12 of the change log.
    owner_row = [row for row in rejections(result) if row[0] == "deal_changes.csv" and row[1] == 12]
    assert owner_row == [
        ("deal_changes.csv", 12, "new_value", "2", "the user with this id was rejected on line 3 of users.csv; fix that row first")
    ]
    assert member_emails(org) == ["ada@example.org"]
    assert memberships_of(alan.user) == [("globex", Role.MANAGER)]


# Maven sales_teams.csv


@pytest.fixture
def maven_export(tmp_path) -> Path:
    target = tmp_path / "maven"
    shutil.copytree(Path(__file__).parent / "data" / "maven_small", target)
    return target


def test_maven_rejects_foreign_agent_and_manager(org, other_org, maven_export):
    with scopes_disabled():
        moses = MembershipFactory(
            organization=other_org, role=Role.REP, user=UserFactory(email="moses.frase@acme.example", name="Moses Frase")
        )
        cara = MembershipFactory(
            organization=other_org, role=Role.MANAGER, user=UserFactory(email="cara.losch@acme.example", name="Cara Losch")
        )

    result = run_file_import(org, "maven", maven_export)

    team_rows = [row for row in rejections(result) if row[0] == "sales_teams.csv"]
    assert team_rows == [
        ("sales_teams.csv", 3, "sales_agent", "Moses Frase", MAVEN_REASON.format(email="moses.frase@acme.example")),
        ("sales_teams.csv", 4, "manager", "Cara Losch", MAVEN_REASON.format(email="cara.losch@acme.example")),
        ("sales_teams.csv", 5, "manager", "Cara Losch", MAVEN_REASON.format(email="cara.losch@acme.example")),
    ]
    assert member_emails(org) == ["anna.snelling@acme.example", "dustin.brinkmann@acme.example"]
    with scope(organization=org):
        assert list(Team.objects.values_list("name", flat=True)) == ["Dustin Brinkmann"]
        assert not Deal.objects.filter(external_id="WON00001").exists()
    assert result.counts["people"].created == 2
    assert memberships_of(moses.user) == [("globex", Role.REP)]
    assert memberships_of(cara.user) == [("globex", Role.MANAGER)]


def test_maven_reuses_operator_added_account(org, other_org, maven_export, tmp_path):
    with scopes_disabled():
        moses = MembershipFactory(
            organization=other_org, role=Role.REP, user=UserFactory(email="moses.frase@acme.example", name="Moses Frase")
        )
    people_file = tmp_path / "people.csv"
    people_file.write_text("name,email\nMoses Frase,moses.frase@acme.example\n", encoding="utf-8")
    call_command("import_people", "--org", "acme", "--add-existing-accounts", str(people_file), stdout=io.StringIO())

    result = run_file_import(org, "maven", maven_export)

    assert [row for row in rejections(result) if row[0] == "sales_teams.csv"] == []
    with scope(organization=org):
        member = Membership.objects.get(user=moses.user)
        assert Deal.objects.get(external_id="WON00001").owner_id == member.pk
    assert (member.external_id, member.role) == ("Moses Frase", Role.REP)
    assert memberships_of(moses.user) == [("acme", Role.REP), ("globex", Role.REP)]


# The people upload (people page and import_people)


def upload(org, text: str, **options):
    with scope(organization=org):
        return people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv", today=TODAY, **options)


def test_people_upload_rejects_foreign_user(org, globex_boss):
    result = upload(org, f"name,email,team\nGlobex Boss,{BOSS},Nord\nEva Lang,eva@acme.example,\n")

    assert (result.created, result.updated, result.unchanged) == (1, 0, 0)
    assert [str(error) for error in result.errors] == [
        f"people.csv line 2, column email, value '{BOSS}': {REASON.format(email=BOSS)}"
    ]
    assert member_emails(org) == ["eva@acme.example"]
    with scope(organization=org):
        assert Team.objects.count() == 0
    assert_boss_untouched(globex_boss)


def test_people_upload_ignores_address_case(org, globex_boss):
    result = upload(org, "name,email\nGlobex Boss,Boss@Globex.Example\n")

    assert [(error.line, error.column, error.value) for error in result.errors] == [(2, "email", BOSS)]
    assert member_emails(org) == []


def test_people_page_shows_rejection(org, admin_client, globex_boss):
    upload_file = SimpleUploadedFile("people.csv", f"name,email\nGlobex Boss,{BOSS}\n".encode())

    page = admin_client.post("/o/acme/people/", {"file": upload_file}, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f"people.csv line 2, column email, value &#x27;{BOSS}&#x27;: {REASON.format(email=BOSS)}" in page
    assert member_emails(org) == ["admin@acme.example"]
    assert_boss_untouched(globex_boss)


# The command prints in the organization's language.
@pytest.mark.usefixtures("org_in_english")
def test_import_people_rejects_without_option(org, globex_boss, tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_text(f"name,email\nGlobex Boss,{BOSS}\n", encoding="utf-8")

    with pytest.raises(SystemExit):
        call_command("import_people", "--org", "acme", str(path))

    assert capsys.readouterr().err == f"people.csv line 2, column email, value '{BOSS}': {REASON.format(email=BOSS)}\n"
    assert member_emails(org) == []


def test_import_people_option_adds_account(org, globex_boss, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(f"name,email\nGlobex Boss,{BOSS}\n", encoding="utf-8")

    call_command("import_people", "--org", "acme", "--add-existing-accounts", str(path), stdout=io.StringIO())

    assert memberships_of(globex_boss.user) == [("acme", Role.REP), ("globex", Role.ADMIN)]
    with scopes_disabled():
        assert User.objects.get(email=BOSS).check_password("correct-horse-battery") is True


# Records API


def record_rejections(result) -> list[tuple[str, int, str, str, str, str]]:
    return [
        (error.entity, error.index, error.external_id, error.field, error.value, str(error.reason))
        for error in result.record_errors
    ]


def test_records_reject_foreign_person(org, globex_boss):
    people = [
        {"external_id": "B1", "name": "Globex Boss", "email": BOSS},
        {"external_id": "E1", "name": "Eva Lang", "email": "eva@acme.example"},
    ]

    result = run_records(org, today=TODAY, people=people)

    assert record_rejections(result) == [("people", 0, "B1", "email", BOSS, REASON.format(email=BOSS))]
    assert result.counts["people"].created == 1
    assert member_emails(org) == ["eva@acme.example"]
    assert_boss_untouched(globex_boss)


def test_records_reject_foreign_owners(org, globex_boss):
    deals = [{"external_id": "D1", "owner_email": BOSS, "stage": "Open", "created_at": "2025-02-03"}]
    activities = [{"external_id": "X1", "kind": "call", "owner": BOSS, "occurred_at": "2025-02-04T10:00:00"}]

    result = run_records(org, today=TODAY, deals=deals, activities=activities)

    assert record_rejections(result) == [
        ("deals", 0, "D1", "owner", BOSS, REASON.format(email=BOSS)),
        ("activities", 0, "X1", "owner", BOSS, REASON.format(email=BOSS)),
    ]
    assert member_emails(org) == []
    assert_boss_untouched(globex_boss)


@pytest.mark.parametrize(("language", "reason"), [("en", REASON), ("de", REASON_DE)])
def test_api_people_returns_rejection(org, admin_member, globex_boss, language, reason):
    with scope(organization=org):
        _token, plain = api_token_create(organization=org, name="write token", scope="write", actor=admin_member.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE=language)

    body = client.post(
        reverse("api_people"), {"records": [{"external_id": "B1", "name": "Globex Boss", "email": BOSS}]}, format="json"
    ).json()

    assert body["rejected"] == [
        {"entity": "people", "index": 0, "external_id": "B1", "field": "email", "value": BOSS, "reason": reason.format(email=BOSS)}
    ]
    assert member_emails(org) == ["admin@acme.example"]
    assert_boss_untouched(globex_boss)
