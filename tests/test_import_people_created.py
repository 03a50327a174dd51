"""Members that CRM imports create for unknown owners: what they get, and where the import lists them."""

import html
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_scopes import scopes_disabled

from pipelines.importers.base import CreatedPerson, PersonAccount
from pipelines.models import ImportRun, ImportRunStatus
from spm.models import Membership, Role, User
from tests.import_helpers import (
    export_folder,
    import_start,
    mapped_dry_run,
    run_file_import,
)

pytestmark = pytest.mark.usefixtures("import_storage")

MAPPING = {"external_id": "Nr", "owner": "Verkäufer", "created_at": "Angelegt"}
# Owners: a new name, the organization's admin (a member already), a user of another organization
# with a password (rejected, see test_import_foreign_accounts.py), a new e-mail address, and the first
# name again.
CSV = (
    "Nr;Verkäufer;Angelegt\n"
    "A-1;Eva Roth;03.02.2025\n"
    "A-2;admin@acme.example;03.02.2025\n"
    "A-3;Boss@Globex.example;04.02.2025\n"
    "A-4;jan.kurz@acme.example;05.02.2025\n"
    "A-5;Eva Roth;06.02.2025\n"
)
EXPECTED = [
    CreatedPerson(key="Eva Roth", name="Eva Roth", email="eva.roth@acme.example", account=PersonAccount.NEW),
    CreatedPerson(
        key="jan.kurz@acme.example", name="jan.kurz@acme.example", email="jan.kurz@acme.example", account=PersonAccount.NEW
    ),
]


@pytest.fixture
def folder(tmp_path):
    return export_folder(tmp_path / "generic", {"deals.csv": CSV})


def run_import(org, folder):
    return run_file_import(org, "generic", folder, options={"mapping": MAPPING})


def test_generic_import_lists_created_people(org, admin_member, globex_boss, folder):
    result = run_import(org, folder)

    assert result.people_created == EXPECTED
    assert result.counts["people"].created == 2
    assert result.counts["people"].unchanged == 1
    assert [(error.line, error.value) for error in result.errors] == [(4, "Boss@Globex.example")]


def test_created_members_are_reps_without_password(org, admin_member, globex_boss, folder, client):
    run_import(org, folder)

    with scopes_disabled():
        created = Membership.objects.filter(organization=org).exclude(pk=admin_member.pk).select_related("user").order_by("pk")
        rows = [
            (m.user.email, m.role, m.external_id, m.team_id, m.territory_id, m.manager_id, m.active_from, m.user.is_active)
            for m in created
        ]
        eva = User.objects.get(email="eva.roth@acme.example")
    assert rows == [
        ("eva.roth@acme.example", Role.REP, "Eva Roth", None, None, None, None, True),
        ("jan.kurz@acme.example", Role.REP, "jan.kurz@acme.example", None, None, None, None, True),
    ]
    assert eva.has_usable_password() is False
    assert client.login(email="eva.roth@acme.example", password="") is False


def test_second_import_creates_nobody(org, admin_member, globex_boss, folder):
    run_import(org, folder)

    result = run_import(org, folder)

    assert result.people_created == []
    assert result.counts["people"].created == 0


# The import page


@pytest.fixture
def checked_run(org, admin_client, globex_boss, django_capture_on_commit_callbacks) -> ImportRun:
    """The dry run of CSV uploaded and mapped on the import page."""
    return mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, CSV, MAPPING)


def people_section(page: str) -> tuple[str, list[list[str]]]:
    """Return the heading and the table rows of the new-members section."""
    section = html.unescape(page.split("data-people-created=")[1].split("</section>")[0])
    heading = re.search(r'<h3 class="h6">(.*?)</h3>', section)[1]
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr data-person>(.*?)</tr>", section)]
    return heading, rows


def test_dry_run_stores_created_people(checked_run):
    assert checked_run.status == ImportRunStatus.PREVIEWED
    assert checked_run.summary["people_created_count"] == 2
    assert checked_run.summary["people_created"] == [
        {"key": "Eva Roth", "name": "Eva Roth", "email": "eva.roth@acme.example", "account": "new"},
        {"key": "jan.kurz@acme.example", "name": "jan.kurz@acme.example", "email": "jan.kurz@acme.example", "account": "new"},
    ]
    with scopes_disabled():
        assert Membership.objects.filter(organization=checked_run.organization).count() == 1


def test_dry_run_page_lists_people_it_will_add(checked_run, admin_client):
    page = admin_client.get(f"/o/acme/imports/{checked_run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    heading, rows = people_section(page)
    assert 'data-people-created="2"' in page
    assert heading == "2 new members the import will add"
    assert rows == [
        ["Eva Roth", "eva.roth@acme.example", "new account without password"],
        ["jan.kurz@acme.example", "jan.kurz@acme.example", "new account without password"],
    ]
    assert "Each becomes a member with the role “Sales rep”, without team, territory or manager." in html.unescape(page)


def test_dry_run_page_lists_people_in_german(checked_run, admin_client):
    page = admin_client.get(f"/o/acme/imports/{checked_run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    heading, rows = people_section(page)
    assert heading == "2 neue Mitglieder, die der Import anlegen wird"
    assert rows == [
        ["Eva Roth", "eva.roth@acme.example", "neues Konto ohne Passwort"],
        ["jan.kurz@acme.example", "jan.kurz@acme.example", "neues Konto ohne Passwort"],
    ]
    assert "Jede wird Mitglied mit der Rolle „Vertriebsmitarbeiter/in“, ohne Team, Gebiet oder Manager/in." in html.unescape(page)


def test_import_page_lists_people_it_added(org, checked_run, admin_client, django_capture_on_commit_callbacks):
    import_start(admin_client, django_capture_on_commit_callbacks, checked_run)

    page = admin_client.get(f"/o/acme/imports/{checked_run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    heading, rows = people_section(page)
    assert heading == "2 new members the import added"
    assert [row[1] for row in rows] == ["eva.roth@acme.example", "jan.kurz@acme.example"]
    with scopes_disabled():
        assert Membership.objects.filter(organization=org).count() == 3


def test_page_counts_people_beyond_stored_list(org, admin_client, globex_boss, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("pipelines.services_imports.PEOPLE_CREATED_STORED", 1)
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, CSV, MAPPING)

    english = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    german = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert people_section(english) == ("2 new members the import will add", [["Eva Roth", "eva.roth@acme.example", "new account without password"]])
    assert "… and 1 more new member." in english
    assert "… und 1 weiteres neues Mitglied." in german


UNSORTED_CSV = "Nr;Verkäufer;Angelegt\nB-1;Zoë Wolf;03.02.2025\nB-2;björn Adler;03.02.2025\nB-3;Ärne Berg;04.02.2025\n"


def test_dry_run_page_lists_people_by_name(org, admin_member, admin_client, django_capture_on_commit_callbacks, monkeypatch):
    # Two stored of three: the cut keeps the first two by name, as import_crm prints them, not the first two in the file.
    monkeypatch.setattr("pipelines.services_imports.PEOPLE_CREATED_STORED", 2)
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, UNSORTED_CSV, MAPPING)

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert [person["name"] for person in run.summary["people_created"]] == ["Ärne Berg", "björn Adler"]
    assert [row[0] for row in people_section(page)[1]] == ["Ärne Berg", "björn Adler"]
    assert "… and 1 more new member." in page


def test_page_sorts_people_of_older_runs(org, admin_member, admin_client, django_capture_on_commit_callbacks):
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, UNSORTED_CSV, MAPPING)
    # Runs stored before the summary was sorted hold the people in file order.
    by_name = {person["name"]: person for person in run.summary["people_created"]}
    file_order = [by_name["Zoë Wolf"], by_name["björn Adler"], by_name["Ärne Berg"]]
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(summary={**run.summary, "people_created": file_order})

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert [row[0] for row in people_section(page)[1]] == ["Ärne Berg", "björn Adler", "Zoë Wolf"]


def test_page_without_created_people_has_no_section(org, admin_member, admin_client, django_capture_on_commit_callbacks):
    csv_text = "Nr;Verkäufer;Angelegt\nA-1;admin@acme.example;03.02.2025\n"
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, csv_text, MAPPING)

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "data-people-created" not in page


# import_crm


def call_import(folder, language: str) -> str:
    stdout = io.StringIO()
    maps = [f"--map={field}={column}" for field, column in MAPPING.items()]
    # Boss's row is rejected, so the command ends with status 1 after printing its report.
    with pytest.raises(CommandError):
        call_command("import_crm", str(folder), *maps, org="acme", source="generic", language=language, stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def test_command_lists_created_people(org, admin_member, globex_boss, folder):
    lines = call_import(folder, "en").splitlines()

    assert lines[-3:] == [
        "The import added 2 new members with the role “Sales rep” for people the files name:",
        "  Eva Roth <eva.roth@acme.example>: new account without password",
        "  jan.kurz@acme.example <jan.kurz@acme.example>: new account without password",
    ]


def test_command_lists_created_people_in_german(org, admin_member, globex_boss, folder):
    lines = call_import(folder, "de").splitlines()

    assert lines[-3:] == [
        "Der Import hat 2 neue Mitglieder mit der Rolle „Vertriebsmitarbeiter/in“ für in den Dateien genannte Personen angelegt:",
        "  Eva Roth <eva.roth@acme.example>: neues Konto ohne Passwort",
        "  jan.kurz@acme.example <jan.kurz@acme.example>: neues Konto ohne Passwort",
    ]


def test_command_counts_people_beyond_the_listed(org, admin_member, globex_boss, folder, monkeypatch):
    monkeypatch.setattr("pipelines.management.commands.import_crm.MAX_PEOPLE_SHOWN", 1)

    lines = call_import(folder, "en").splitlines()

    assert lines[-3:] == [
        "The import added 2 new members with the role “Sales rep” for people the files name:",
        "  Eva Roth <eva.roth@acme.example>: new account without password",
        "  … and 1 more new member.",
    ]


def test_command_without_created_people_prints_no_list(org, admin_member, globex_boss, folder):
    call_import(folder, "en")

    output = call_import(folder, "en")

    assert "new member" not in output
    # Four open deals (Boss's row is rejected), each with the one move that it entered its stage when created.
    assert output.splitlines()[-1].split() == ["stage", "changes", "0", "0", "4", "0", "0"]


def test_command_lists_created_people_by_name(org, tmp_path):
    rows = "Nr;Verkäufer;Angelegt\nB-1;Zoë Zimmer;03.02.2025\nB-2;Björn Berg;03.02.2025\nB-3;Ärne Bauer;03.02.2025\nB-4;anna Adler;03.02.2025\n"
    folder = export_folder(tmp_path / "sorted", {"deals.csv": rows})
    stdout = io.StringIO()
    maps = [f"--map={field}={column}" for field, column in MAPPING.items()]

    call_command("import_crm", str(folder), *maps, org="acme", source="generic", language="en", stdout=stdout)

    assert stdout.getvalue().splitlines()[-4:] == [
        "  anna Adler <anna.adler@acme.example>: new account without password",
        "  Ärne Bauer <aerne.bauer@acme.example>: new account without password",
        "  Björn Berg <bjoern.berg@acme.example>: new account without password",
        "  Zoë Zimmer <zoe.zimmer@acme.example>: new account without password",
    ]
