"""Quota upload: good CSV and XLSX files, German semicolon files, bad rows, the import_quotas command."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals.imports import quota_import
from goals.models import Quota
from goals.parsing import parse_number
from pipelines.importers.base import RowRejected
from spm.models import AuditLog
from tests.factories import TeamFactory, TerritoryFactory


def upload(org, text, file_name="quotas.csv", encoding="utf-8"):
    with scope(organization=org):
        return quota_import(organization=org, actor=None, data=text.encode(encoding), file_name=file_name)


def quotas(org):
    with scopes_disabled():
        return {
            (quota.level, quota.membership_id or quota.team_id or quota.territory_id, quota.period_kind, quota.period_start, quota.metric): (
                quota.target,
                quota.is_prorated,
            )
            for quota in Quota.objects.filter(organization=org)
        }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.500,00", Decimal("12500.00")),
        ("12,500.00", Decimal("12500.00")),
        ("12500", Decimal("12500.00")),
        ("12500,5", Decimal("12500.50")),
        ("1.234.567", Decimal("1234567.00")),
        ("12.500", Decimal("12500.00")),
        ("12,500", Decimal("12500.00")),
        ("1,234", Decimal("1234.00")),
        ("1.234", Decimal("1234.00")),
        ("12 500,00 €", Decimal("12500.00")),
        ("0,5", Decimal("0.50")),
    ],
)
def test_parse_number_german_and_english(text, expected):
    assert parse_number(text, "target") == expected


@pytest.mark.parametrize("text", ["-5", "abc", "1.2.3,4,5", "12,50.0", "1,23,456", "0,005", ""])
def test_parse_number_rejects_invalid(text):
    with pytest.raises(RowRejected):
        parse_number(text, "target")


def test_good_csv_creates_quotas(org, member, team):
    with scopes_disabled():
        territory = TerritoryFactory(organization=org, name="South")
    text = (
        "level,name,period,metric,target,prorate\n"
        "rep,rep@acme.example,2025-Q1,won_revenue,9000,yes\n"
        "team,North,2025,won_deals,120,\n"
        "territory,South,2025-03,meetings,40,no\n"
    )

    result = upload(org, text)

    assert result.created == 3
    assert result.rejected == 0
    assert quotas(org) == {
        ("rep", member.pk, "quarter", dt.date(2025, 1, 1), "won_revenue"): (Decimal("9000.00"), True),
        ("team", team.pk, "year", dt.date(2025, 1, 1), "won_deals"): (Decimal("120.00"), True),
        ("territory", territory.pk, "month", dt.date(2025, 3, 1), "meetings"): (Decimal("40.00"), False),
    }


def test_second_upload_changes_nothing(org, member):
    text = "level,name,period,metric,target\nrep,rep@acme.example,2025-Q1,won_revenue,9000\n"
    upload(org, text)

    result = upload(org, text)

    assert result.created == 0
    assert result.unchanged == 1
    with scopes_disabled():
        assert AuditLog.objects.filter(organization=org, object_type="quota").count() == 1


def test_german_semicolon_cp1252_file(org, member):
    # Excel on German Windows: semicolons, cp1252 (the ä), German number format, ja/nein.
    with scopes_disabled():
        member.user.name = "Jürgen Bär"
        member.user.save()
    text = "Level;Name;Period;Metric;Target;Prorate\r\nrep;Jürgen Bär;2025-Q2;won_revenue;12.500,00;nein\r\n"

    result = upload(org, text, encoding="cp1252")

    assert result.created == 1
    assert quotas(org) == {
        ("rep", member.pk, "quarter", dt.date(2025, 4, 1), "won_revenue"): (Decimal("12500.00"), False),
    }


def test_utf8_bom_file_reads_header(org, member):
    text = "\ufefflevel;name;period;metric;target\nrep;rep@acme.example;2025;won_deals;24\n"

    result = upload(org, text)

    assert result.created == 1


def test_bad_rows_reported_with_line_and_column(org, member):
    text = (
        "level,name,period,metric,target\n"
        "rep,rep@acme.example,2025-Q1,won_revenue,9000\n"
        "boss,rep@acme.example,2025-Q1,won_revenue,1\n"
        "rep,nobody@acme.example,2025-Q1,won_revenue,1\n"
        "rep,rep@acme.example,2025-Q5,won_revenue,1\n"
        "rep,rep@acme.example,2025-Q2,revenue,1\n"
        "rep,rep@acme.example,2025-Q3,won_revenue,-5\n"
        "rep,rep@acme.example,2025-Q1,won_revenue,100\n"
    )

    result = upload(org, text)

    assert result.created == 1
    assert [(error.line, error.column, error.value) for error in result.errors] == [
        (3, "level", "boss"),
        (4, "name", "nobody@acme.example"),
        (5, "period", "2025-Q5"),
        (6, "metric", "revenue"),
        (7, "target", "-5"),
        (8, "period", "2025-Q1"),
    ]
    assert "line 2" in str(result.errors[-1].reason)
    assert str(result.errors[0]).startswith("quotas.csv line 3, column level, value 'boss'")


def test_missing_column_rejects_file(org, member):
    from pipelines.importers.base import ImportSourceError

    with pytest.raises(ImportSourceError, match="target"):
        upload(org, "level,name,period,metric\nrep,rep@acme.example,2025,won_deals\n")


def test_xlsx_upload(org, member):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["level", "name", "period", "metric", "target"])
    sheet.append(["rep", "rep@acme.example", "2025-Q1", "won_revenue", 9000.5])
    buffer = io.BytesIO()
    workbook.save(buffer)

    with scope(organization=org):
        result = quota_import(organization=org, actor=None, data=buffer.getvalue(), file_name="quotas.xlsx")

    assert result.created == 1
    assert quotas(org) == {("rep", member.pk, "quarter", dt.date(2025, 1, 1), "won_revenue"): (Decimal("9000.50"), True)}


# The command prints in the organization's language; English keeps the summary readable here.
@pytest.mark.usefixtures("org_in_english")
def test_import_quotas_command(org, member, tmp_path, capsys):
    path = tmp_path / "quotas.csv"
    path.write_text("level;name;period;metric;target\nrep;rep@acme.example;2025-Q1;won_revenue;9.000,00\n", encoding="utf-8")

    call_command("import_quotas", "--org", "acme", str(path))

    assert "created 1, updated 0, unchanged 0, rejected 0" in capsys.readouterr().out
    assert quotas(org)[("rep", member.pk, "quarter", dt.date(2025, 1, 1), "won_revenue")] == (Decimal("9000.00"), True)


@pytest.mark.usefixtures("org_in_english")
def test_import_quotas_command_exits_1_on_bad_rows(org, member, tmp_path, capsys):
    path = tmp_path / "quotas.csv"
    path.write_text("level,name,period,metric,target\nrep,rep@acme.example,2025-Q1,won_revenue,zehn\n", encoding="utf-8")

    with pytest.raises(SystemExit) as exit_info:
        call_command("import_quotas", "--org", "acme", str(path))

    assert exit_info.value.code == 1
    assert "quotas.csv line 2, column target, value 'zehn'" in capsys.readouterr().err


def test_upload_for_other_org_finds_no_people(org, other_org, member):
    with scopes_disabled():
        TeamFactory(organization=other_org, name="North")

    with scope(organization=other_org):
        result = quota_import(
            organization=other_org,
            actor=None,
            data=b"level,name,period,metric,target\nrep,rep@acme.example,2025,won_deals,5\n",
            file_name="q.csv",
        )

    assert result.created == 0
    assert result.errors[0].column == "name"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["no team with this name", "no territory with this name"]),
        ("de", ["kein Team mit diesem Namen", "kein Gebiet mit diesem Namen"]),
    ],
)
def test_unknown_team_or_territory_named_by_level(org, member, language, expected):
    text = "level;name;period;metric;target\nteam;Nowhere;2017;won_deals;3\nterritory;Nowhere;2017;won_deals;3\n"

    result = upload(org, text)

    with translation.override(language):
        reasons = [str(error.reason) for error in result.errors]
    assert reasons == expected


def test_rejected_row_does_not_block_repeat(org, member):
    text = (
        "level,name,period,metric,target\n"
        "rep,rep@acme.example,2025-Q1,won_deals,5.5\n"
        "rep,rep@acme.example,2025-Q1,won_deals,6\n"
        "rep,rep@acme.example,2025-Q1,won_deals,7\n"
    )

    with translation.override("en"):
        result = upload(org, text)
        reasons = [(error.line, error.column, error.value, str(error.reason)) for error in result.errors]

    assert result.created == 1
    assert reasons[1:] == [(4, "period", "2025-Q1", "repeats line 3; keep one of them")]
    assert [reason[:3] for reason in reasons[:1]] == [(2, "target", "5.5")]
    assert quotas(org) == {("rep", member.pk, "quarter", dt.date(2025, 1, 1), "won_deals"): (Decimal("6.00"), True)}


def test_period_outside_planning_range_rejected(org, member):
    text = (
        "level,name,period,metric,target\n"
        "rep,rep@acme.example,0001-Q1,won_deals,5\n"
        "rep,rep@acme.example,1999,won_deals,5\n"
        "rep,rep@acme.example,2031,won_deals,5\n"
        "rep,rep@acme.example,2030,won_deals,5\n"
        "rep,rep@acme.example,2000-01,won_deals,5\n"
    )

    with translation.override("en"), scope(organization=org):
        result = quota_import(
            organization=org, actor=None, data=text.encode(), file_name="quotas.csv", today=dt.date(2025, 4, 1)
        )
        reasons = [(error.line, error.column, error.value, str(error.reason)) for error in result.errors]

    allowed = "enter a period that starts from 01/01/2000 to 04/01/2030."
    assert reasons == [
        (2, "period", "0001-Q1", f"The period 0001-Q1 starts on 01/01/0001, outside the allowed range; {allowed}"),
        (3, "period", "1999", f"The period 1999 starts on 01/01/1999, outside the allowed range; {allowed}"),
        (4, "period", "2031", f"The period 2031 starts on 01/01/2031, outside the allowed range; {allowed}"),
    ]
    assert sorted(key[3] for key in quotas(org)) == [dt.date(2000, 1, 1), dt.date(2030, 1, 1)]
