"""Maven import before the deal file: the queries of the people and account steps, and a late unreadable deal row."""

import datetime as dt
import shutil
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from goals.models import Team, Territory
from pipelines.importers.base import ImportSourceError
from pipelines.importers.maven import (
    ACCOUNTS_FILE,
    TEAMS_FILE,
    MavenImport,
    maven_file_read,
)
from pipelines.models import Account, Deal, Product
from pipelines.services import crm_import
from spm.models import Membership, User
from tests.factories import MembershipFactory, UserFactory

SMALL_EXPORT = Path(__file__).parent / "data" / "maven_small"
TODAY = dt.date(2018, 1, 15)


def maven_import_for(org) -> MavenImport:
    return MavenImport(organization=org, folder=SMALL_EXPORT, currency="EUR", today=TODAY)


def file_rows(file_name: str, columns: tuple[str, ...]) -> list:
    return list(maven_file_read(SMALL_EXPORT, file_name, columns))


def selects(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries if query["sql"].lstrip().upper().startswith("SELECT")]


@pytest.mark.django_db
def test_people_step_reads_each_lookup_once(org):
    importer = maven_import_for(org)
    rows = file_rows(TEAMS_FILE, ("sales_agent", "manager"))

    with scope(organization=org), CaptureQueriesContext(connection) as context:
        importer.import_people(rows)

    # Memberships by external id and users by address (for the foreign-account check and the
    # reuse of users), then territories and teams. No user exists, so no membership is looked
    # up by user.
    reads = selects(context)
    assert len(reads) == 4
    assert sum('FROM "spm_user"' in sql for sql in reads) == 1
    assert sum('FROM "spm_membership"' in sql for sql in reads) == 1
    assert importer.result.counts["people"].created == 6


@pytest.mark.django_db
def test_people_step_reuses_member_found_by_address(org):
    """A member whose address a name generates, but without that name as external id, is found by the one lookup."""
    admin = MembershipFactory(
        organization=org, role="admin", user=UserFactory(email="cara.losch@acme.example", name="Cara Losch")
    )
    importer = maven_import_for(org)
    rows = file_rows(TEAMS_FILE, ("sales_agent", "manager"))

    with scope(organization=org), CaptureQueriesContext(connection) as context:
        importer.import_people(rows)

    reads = selects(context)
    assert len(reads) == 5
    assert sum('FROM "spm_user"' in sql for sql in reads) == 1
    assert sum('FROM "spm_membership"' in sql for sql in reads) == 2
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert admin.external_id == "Cara Losch"
    assert importer.memberships["Cara Losch"].pk == admin.pk
    assert User.objects.filter(email="cara.losch@acme.example").count() == 1
    assert importer.result.counts["people"].created == 5
    assert importer.result.counts["people"].updated == 1


@pytest.mark.django_db
def test_account_step_looks_up_only_stored_names(org):
    importer = maven_import_for(org)
    rows = file_rows(ACCOUNTS_FILE, ("account",))

    with scope(organization=org), CaptureQueriesContext(connection) as context:
        importer.import_accounts(rows)

    # The stored external ids. None is stored, so no account is loaded. On PostgreSQL the
    # new accounts go through COPY, and one more query reads their ids.
    assert len(selects(context)) == (2 if connection.vendor == "postgresql" else 1)
    assert importer.result.counts["accounts"].created == 3
    with scope(organization=org):
        assert Account.objects.get(external_id="Codehow").parent.external_id == "Acme Corporation"


@pytest.mark.django_db
def test_account_step_updates_stored_account(org):
    with scope(organization=org):
        stored = Account.objects.create(organization=org, name="Cancity", external_id="Cancity", sector="old")
    importer = maven_import_for(org)
    rows = file_rows(ACCOUNTS_FILE, ("account",))

    with scope(organization=org), CaptureQueriesContext(connection) as context:
        importer.import_accounts(rows)

    # The stored external ids, then the one stored account among the file's names, and on
    # PostgreSQL the ids of the accounts that COPY inserted.
    assert len(selects(context)) == (3 if connection.vendor == "postgresql" else 2)
    stored.refresh_from_db()
    assert stored.sector == "retail"
    assert importer.accounts["Cancity"].pk == stored.pk
    assert importer.result.counts["accounts"].created == 2
    assert importer.result.counts["accounts"].updated == 1


@pytest.mark.django_db
def test_account_step_keeps_special_characters(org, tmp_path):
    """Tabs, line breaks, backslashes and COPY's null marker `\\N` are stored as the file gives them."""
    names = ["Tab\there", "Line\nbreak", "Back\\slash", "\\N", "Quote \"q\""]
    folder = tmp_path / "export"
    folder.mkdir()
    quoted = ['"' + name.replace('"', '""') + '"' for name in names]
    lines = ["account,sector,subsidiary_of"] + [f"{name},x\\y," for name in quoted]
    lines.append(f"Child,\\N,{quoted[0]}")
    (folder / ACCOUNTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    importer = MavenImport(organization=org, folder=folder, currency="EUR", today=TODAY)

    with scope(organization=org):
        importer.import_accounts(list(maven_file_read(folder, ACCOUNTS_FILE, ("account",))))

        stored = {account.external_id: account for account in Account.objects.select_related("parent")}
    assert importer.result.errors == []
    assert sorted(stored) == sorted([*names, "Child"])
    for name in names:
        assert stored[name].name == name
        assert stored[name].sector == "x\\y"
        assert importer.accounts[name].pk == stored[name].pk
    assert stored["Child"].sector == "\\N"
    assert stored["Child"].parent.external_id == "Tab\there"


@pytest.mark.django_db
def test_late_unreadable_deal_row_writes_nothing(org, tmp_path):
    """sales_pipeline.csv is checked row by row only while its deals are read, after people and accounts."""
    folder = tmp_path / "export"
    shutil.copytree(SMALL_EXPORT, folder)
    with (folder / "sales_pipeline.csv").open("a", encoding="utf-8") as handle:
        handle.write(f'"{"x" * 200_000}",Moses Frase,GTX Basic,,Prospecting,,,\n')

    with scope(organization=org), pytest.raises(ImportSourceError) as raised:
        crm_import(organization=org, source="maven", path=folder, today=TODAY)

    assert str(raised.value) == (
        "File sales_pipeline.csv, line 8: a cell is longer than 131072 characters, the most an import reads. "
        "A quotation mark that is not closed makes the rest of the file one cell: close it, or shorten the cell, "
        "and import the file again."
    )
    with scope(organization=org):
        for model in (Membership, Team, Territory, Account, Product, Deal):
            assert model.objects.count() == 0, model.__name__
    assert User.objects.count() == 0
