"""Owners named only in rejected rows: no import may create them as members."""

import pytest
from django_scopes import scope, scopes_disabled

from pipelines.importers.base import CreatedPerson, PersonAccount
from pipelines.models import Deal
from spm.models import Membership, User
from tests.import_helpers import export_folder, mapped_dry_run, run_file_import, run_records

# Rita's row has an impossible date and Otto's an amount that is no number; Eva's row is valid.
GENERIC_CSV = (
    "ID,Owner,Created,Amount\n"
    "R-1,Rita Rejected,31.02.2017,100\n"
    "R-2,Otto Abgelehnt,01.05.2017,abc\n"
    "R-3,Eva Roth,02.05.2017,300\n"
)
GENERIC_MAPPING = {"external_id": "ID", "owner": "Owner", "created_at": "Created", "amount": "Amount"}
EVA = CreatedPerson(key="Eva Roth", name="Eva Roth", email="eva.roth@acme.example", account=PersonAccount.NEW)


def user_names(org) -> list[str]:
    with scopes_disabled():
        return sorted(Membership.objects.filter(organization=org).values_list("user__name", flat=True))


def test_generic_rejected_rows_add_nobody(org, tmp_path):
    folder = export_folder(tmp_path / "export", {"deals.csv": GENERIC_CSV})

    result = run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 2
    assert result.counts["people"].created == 1
    assert result.people_created == [EVA]
    assert user_names(org) == ["Eva Roth"]
    assert User.objects.filter(name__in=["Rita Rejected", "Otto Abgelehnt"]).count() == 0


def test_generic_rejected_row_of_known_owner_counts_nobody(org, tmp_path, member):
    """A stored owner named only in a rejected row is neither created nor counted as unchanged."""
    folder = export_folder(tmp_path / "export", {"deals.csv": f"ID,Owner,Created,Amount\nR-1,{member.user.email},01.05.2017,abc\n"})

    result = run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})

    assert result.counts["deals"].rejected == 1
    assert result.counts["people"].created == 0
    assert result.counts["people"].unchanged == 0


@pytest.mark.usefixtures("import_storage")
def test_generic_dry_run_lists_only_accepted_owners(org, admin_member, admin_client, django_capture_on_commit_callbacks):
    mapping = {**GENERIC_MAPPING, "name": "", "status": ""}
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, GENERIC_CSV, mapping)

    page = admin_client.get(f"/o/acme/imports/{run.pk}/").content.decode()

    assert run.summary["people_created_count"] == 1
    assert "Eva Roth" in page
    assert "Rita Rejected" not in page
    assert "Otto Abgelehnt" not in page
    assert user_names(org) == [admin_member.user.name]


# Each deals export below has Rita's row with an impossible date, Otto's with an amount that is no number, and Eva's valid row.
CRM_DEALS_EXPORTS = [
    pytest.param(
        "hubspot",
        "hubspot-crm-exports-deals.csv",
        (
            "Record ID,Deal Name,Deal Stage,Pipeline,Amount,Deal owner,Create Date,Close Date\n"
            "601,Bad date,Contract Sent,Sales Pipeline,100,Rita Rejected,2025-02-30,\n"
            "602,Bad amount,Contract Sent,Sales Pipeline,abc,Otto Abgelehnt,2025-01-12,\n"
            "603,Good,Contract Sent,Sales Pipeline,300,Eva Roth,2025-01-13,\n"
        ),
        id="hubspot",
    ),
    pytest.param(
        "salesforce",
        "opportunities.csv",
        (
            "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Created Date\n"
            "0065g00000AbCd1,Bad date,Rita Rejected,Prospecting,100,2025-02-30 10:00\n"
            "0065g00000AbCd2,Bad amount,Otto Abgelehnt,Prospecting,abc,2025-01-05 10:00\n"
            "0065g00000AbCd3,Good,Eva Roth,Prospecting,300,2025-01-06 10:00\n"
        ),
        id="salesforce",
    ),
    pytest.param(
        "pipedrive",
        "deals.csv",
        (
            "Deal - ID;Deal - Title;Deal - Value;Deal - Currency of value;Deal - Stage;Deal - Owner;Deal - Status;"
            "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
            "21;Bad date;100;EUR;Angebot;Rita Rejected;open;;;30.02.2025 09:00;\n"
            "22;Bad amount;abc;EUR;Angebot;Otto Abgelehnt;open;;;01.02.2025 09:00;\n"
            "23;Good;300;EUR;Angebot;Eva Roth;open;;;02.02.2025 09:00;\n"
        ),
        id="pipedrive",
    ),
]


@pytest.mark.parametrize(("source", "file_name", "text"), CRM_DEALS_EXPORTS)
def test_crm_export_rejected_rows_add_nobody(org, tmp_path, source, file_name, text):
    result = run_file_import(org, source, export_folder(tmp_path / "export", {file_name: text}))

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 2
    assert result.people_created == [EVA]
    assert user_names(org) == ["Eva Roth"]


def test_records_rejected_deals_and_activities_add_nobody(org):
    deals = [
        {"external_id": "D1", "owner": "Rita Rejected", "status": "open", "created_at": "2025-02-30"},
        {"external_id": "D2", "owner": "Otto Abgelehnt", "status": "open", "created_at": "2025-01-02", "amount": "abc"},
        {"external_id": "D3", "owner": "Eva Roth", "status": "open", "created_at": "2025-01-03"},
    ]
    activities = [
        {"external_id": "A1", "owner": "Ida Ignored", "kind": "dance", "occurred_at": "2025-01-04"},
        {"external_id": "A2", "owner": "Udo Unbekannt", "kind": "call"},
    ]

    result = run_records(org, deals=deals, activities=activities)

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 2
    assert result.counts["activities"].rejected == 2
    assert result.people_created == [EVA]
    assert user_names(org) == ["Eva Roth"]
    with scope(organization=org):
        assert Deal.objects.get(external_id="D3").owner.user.name == "Eva Roth"
