"""Quota and people files whose shape would lose values: extra cells, repeated columns, sheets, formulas, merged cells."""

import io

import pytest
from django.utils import translation
from django_scopes import scope, scopes_disabled
from openpyxl import Workbook

from goals.imports import people_import, quota_import
from goals.models import Quota
from pipelines.importers.base import ImportSourceError
from spm.models import User


def source_error(run, org, text: str, file_name: str) -> ImportSourceError:
    with scope(organization=org), pytest.raises(ImportSourceError) as raised:
        run(organization=org, actor=None, data=text.encode(), file_name=file_name)
    return raised.value


def in_language(error: ImportSourceError, language: str) -> str:
    with translation.override(language):
        return str(error)


def test_quota_row_with_extra_cells_rejects_file(org, member):
    text = f"level,name,period,metric,target\nrep,{member.user.email},2025-Q1,won_revenue,1,234.56\n"

    error = source_error(quota_import, org, text, "quotas.csv")

    assert in_language(error, "en") == (
        "File quotas.csv, line 2 has 6 cells, but the header has 5 columns. The likely cause is a value that contains "
        "the separator “,” without quotes, such as the amount 1,234.56 in a comma-separated file: put such values in "
        "quotes or export the file again."
    )
    assert in_language(error, "de") == (
        "Datei quotas.csv, Zeile 2 hat 6 Zellen, die Kopfzeile aber 5 Spalten. Wahrscheinlich enthält ein Wert das "
        "Trennzeichen „,“ ohne Anführungszeichen, etwa der Betrag 1.234,56 in einer kommagetrennten Datei: Setzen Sie "
        "solche Werte in Anführungszeichen oder exportieren Sie die Datei erneut."
    )
    with scopes_disabled():
        assert not Quota.objects.exists()


def test_people_row_with_extra_cells_rejects_file(org):
    text = (
        "name,email,role,team\n"
        'Paul Komma,paul.komma@example.com,rep,"Nord, Süd"\n'
        "Rita Extra,rita.extra@example.com,manager,Nord,Hamburg\n"
    )

    error = source_error(people_import, org, text, "p_extra.csv")

    assert in_language(error, "en").startswith("File p_extra.csv, line 3 has 5 cells, but the header has 4 columns.")
    assert User.objects.filter(email__in=["paul.komma@example.com", "rita.extra@example.com"]).count() == 0


def test_empty_cells_after_last_column_are_read(org, member):
    text = f"level;name;period;metric;target;;\nrep;{member.user.email};2025-Q1;won_revenue;500;;\n"

    with scope(organization=org):
        result = quota_import(organization=org, actor=None, data=text.encode(), file_name="quotas.csv")

    assert (result.created, result.rejected) == (1, 0)


def test_repeated_column_name_rejects_file(org, member):
    text = f"level;name;period;metric;target;Target\nrep;{member.user.email};2025-Q2;won_revenue;5;7\n"

    error = source_error(quota_import, org, text, "q_dupcol.csv")

    assert in_language(error, "en") == (
        "File q_dupcol.csv has the column(s) target more than once, so it is unclear which one to read. "
        "Rename or remove the extra column(s) and import the file again."
    )
    assert in_language(error, "de") == (
        "Die Datei q_dupcol.csv enthält die Spalte(n) target mehrfach, daher ist unklar, welche gelesen werden soll. "
        "Benennen Sie die überzähligen Spalten um oder entfernen Sie sie, und importieren Sie die Datei erneut."
    )
    with scopes_disabled():
        assert not Quota.objects.exists()


def workbook_bytes(sheets: dict[str, list[list]], merged: str = "") -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if merged:
            sheet.merge_cells(merged)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload_result(run, org, data: bytes, file_name: str):
    with scope(organization=org):
        return run(organization=org, actor=None, data=data, file_name=file_name)


def test_quota_workbook_cover_sheet_skipped(org, member):
    data = workbook_bytes({
        "Cover": [["Quotas 2025"]],
        "Quotas": [["Level", "Name", "Period", "Metric", "Target"], ["rep", member.user.email, "2025-Q1", "won_revenue", 1000]],
    })  # fmt: skip

    result = upload_result(quota_import, org, data, "q_cover.xlsx")

    assert (result.created, result.rejected) == (1, 0)


def test_workbook_without_header_names_sheets(org):
    data = workbook_bytes({"Cover": [["Quotas 2025"]], "Notes": [["level", "name"], ["rep", "x"]]})

    with scope(organization=org), pytest.raises(ImportSourceError) as raised:
        quota_import(organization=org, actor=None, data=data, file_name="q_cover.xlsx")

    assert in_language(raised.value, "en") == (
        "File q_cover.xlsx, sheet Notes, is missing the required column(s): period, metric, target. "
        "The column names must be in the first row of the sheet. The workbook has the sheets Cover, Notes: "
        "move the sheet with the data to the front, or remove the other sheets, and upload it again."
    )
    assert in_language(raised.value, "de").startswith("In Datei q_cover.xlsx, Tabellenblatt Notes, fehlen die erforderlichen Spalten:")


def test_formula_target_rejected(org, member):
    data = workbook_bytes({"Sheet": [["level", "name", "period", "metric", "target"],
                                     ["rep", member.user.email, "2025-Q2", "won_revenue", "=1000*2"]]})  # fmt: skip

    result = upload_result(quota_import, org, data, "q_formula.xlsx")

    assert (result.created, result.rejected) == (0, 1)
    with translation.override("en"):
        assert str(result.errors[0]) == (
            "q_formula.xlsx line 2, column target, value '=1000*2': formula cell; formulas are not calculated. "
            "In Excel, copy the cells and paste them as values (Paste Special, Values), then upload the file again"
        )
    with translation.override("de"):
        assert str(result.errors[0]) == (
            "q_formula.xlsx Zeile 2, Spalte target, Wert '=1000*2': Formelzelle; Formeln werden nicht berechnet. "
            "Kopieren Sie die Zellen in Excel und fügen Sie sie als Werte ein (Inhalte einfügen, Werte), "
            "dann laden Sie die Datei erneut hoch"
        )


def test_merged_name_cell_rejects_second_person(org):
    data = workbook_bytes(
        {"Sheet": [["name", "email", "role"], ["Merged", "merged@example.com", "rep"], [None, "merged2@example.com", "rep"]]},
        merged="A2:A3",
    )

    result = upload_result(people_import, org, data, "p_xlsx.xlsx")

    assert (result.created, result.rejected) == (1, 1)
    assert not User.objects.filter(email="merged2@example.com").exists()
    with translation.override("en"):
        assert str(result.errors[0]) == (
            "p_xlsx.xlsx line 3, column name, value '': missing value; a new person needs a name. A merged cell is "
            "empty in every row below its first, so unmerge such cells and fill in each row"
        )
    with translation.override("de"):
        assert str(result.errors[0]) == (
            "p_xlsx.xlsx Zeile 3, Spalte name, Wert '': fehlender Wert; eine neue Person braucht einen Namen. Eine "
            "verbundene Zelle ist in jeder Zeile unter ihrer ersten leer, heben Sie solche Verbindungen daher auf und "
            "füllen Sie jede Zeile aus"
        )


def test_empty_name_keeps_existing_member_name(org, member):
    name = member.user.name
    text = f"name,email,role\n,{member.user.email},rep\n"

    result = upload_result(people_import, org, text.encode(), "people.csv")

    assert (result.unchanged, result.rejected) == (1, 0)
    member.user.refresh_from_db()
    assert member.user.name == name
