"""Dates outside the range that imports accept (01.01.2000 to five years after the import day) are rejected on every path.

A year such as 0001 or 9999 has fiscal periods that `datetime.date` cannot hold, so a
stored deal with it used to fail the KPI recompute of its whole organization. The
recompute now leaves such rows, stored before these checks, out of the snapshots.
"""

import datetime as dt
import logging
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import translation
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain
from dashboards.services import kpi_snapshot_recompute
from pipelines.importers.base import RowRejected
from pipelines.importers.formats import import_date_range, parse_day, parse_moment
from pipelines.models import Activity, Deal, DealStageChange
from tests.import_helpers import TODAY, export_folder, run_file_import, run_records
from tests.test_kpi_recompute import make_deal, rows_of, utc

DATA = Path(__file__).parent / "data"
BERLIN = dt.timezone.utc
# TODAY is 2025-04-01, so the latest accepted day is 2030-04-01.
RANGE_TEXT = "enter a date from 01/01/2000 to 04/01/2030"
GENERIC_MAPPING = {"external_id": "id", "owner": "owner", "created_at": "created", "status": "status", "closed_at": "closed"}


def test_import_date_range_is_planning_range():
    allowed = import_date_range(dt.date(2025, 4, 1))

    assert allowed.earliest == dt.date(2000, 1, 1)
    assert allowed.latest == dt.date(2030, 4, 1)


@pytest.mark.parametrize("text", ["0001-01-01", "1999-12-31", "2030-04-02", "9999-12-31", "31.12.9999"])
def test_parse_day_rejects_outside_range(text):
    with pytest.raises(RowRejected) as caught:
        parse_day(text, "created", allowed=import_date_range(TODAY))

    assert caught.value.value == text
    assert RANGE_TEXT in str(caught.value.reason)


@pytest.mark.parametrize("text", ["2000-01-01", "2030-04-01"])
def test_parse_day_accepts_range_ends(text):
    assert parse_day(text, "created", allowed=import_date_range(TODAY)) == dt.date.fromisoformat(text)


def test_parse_moment_rejects_year_9999_with_offset():
    # Converting 9999-12-31 23:00 at UTC-05:00 to UTC would overflow; the date is rejected first.
    with pytest.raises(RowRejected) as caught:
        parse_moment("9999-12-31T23:00:00-05:00", "created", time_zone=BERLIN, allowed=import_date_range(TODAY))

    assert caught.value.value == "9999-12-31T23:00:00-05:00"
    assert RANGE_TEXT in str(caught.value.reason)


def test_generic_rejects_year_1_and_9999(org, tmp_path):
    folder = export_folder(
        tmp_path / "generic",
        {
            "deals.csv": "id,owner,created,status,closed\n"
            "B12,Eva Roth,2017-01-10,open,\n"
            "B13,Eva Roth,0001-01-01,open,\n"
            "B14,Eva Roth,9999-12-31,open,\n"
            "B15,Eva Roth,2017-01-10,won,9999-12-31\n"
        },
    )

    result = run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})

    assert result.counts["deals"].created == 1
    assert [(error.line, error.column, error.value) for error in result.errors] == [
        (3, "created", "0001-01-01"),
        (4, "created", "9999-12-31"),
        (5, "closed", "9999-12-31"),
    ]
    assert "date outside the allowed range; enter a date from 01/01/2000 to 04/01/2030" == str(result.errors[0].reason)
    with scope(organization=org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["B12"]


def test_generic_range_message_in_german(org, tmp_path):
    folder = export_folder(tmp_path / "generic", {"deals.csv": "id,owner,created,status,closed\nB13,Eva Roth,0001-01-01,open,\n"})

    result = run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})

    with translation.override("de"):
        assert "01.01.2000" in str(result.errors[0].reason)
        assert "01.04.2030" in str(result.errors[0].reason)


def test_maven_rejects_year_9999(org, tmp_path):
    folder = tmp_path / "maven"
    shutil.copytree(DATA / "maven_small", folder)
    pipeline = folder / "sales_pipeline.csv"
    text = pipeline.read_text(encoding="utf-8").replace("WON00001,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01", "WON00001,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,9999-03-01")
    pipeline.write_text(text, encoding="utf-8")

    result = run_file_import(org, "maven", folder)

    rejected = [(error.line, error.column, error.value) for error in result.errors]
    assert (2, "close_date", "9999-03-01") in rejected
    with scope(organization=org):
        assert not Deal.objects.filter(external_id="WON00001").exists()


def test_hubspot_rejects_year_1(org, tmp_path):
    folder = export_folder(
        tmp_path / "hubspot",
        {
            "deals.csv": "Record ID,Deal Name,Deal Stage,Pipeline,Amount,Deal owner,Create Date,Close Date\n"
            "501,Acme,Appointment Scheduled,Sales Pipeline,100,Eva Roth,0001-01-01 09:00,\n"
            "502,Beta,Appointment Scheduled,Sales Pipeline,100,Eva Roth,2025-01-01 09:00,9999-12-31\n"
        },
    )

    result = run_file_import(org, "hubspot", folder)

    assert [(error.line, error.column, error.value) for error in result.errors] == [
        (2, "Create Date", "0001-01-01 09:00"),
        (3, "Close Date", "9999-12-31"),
    ]


def test_salesforce_rejects_year_9999(org, tmp_path):
    folder = export_folder(
        tmp_path / "salesforce",
        {
            "opportunities.csv": "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Close Date,Created Date\n"
            "0065g00000AbCdE,Bauer,Lena Vogt,Prospecting,100,2025-05-30,9999-12-31 10:00\n"
        },
    )

    result = run_file_import(org, "salesforce", folder)

    assert [(error.line, error.value) for error in result.errors] == [(2, "9999-12-31 10:00")]


def test_pipedrive_change_log_rejects_year_1(org, tmp_path):
    folder = tmp_path / "pipedrive"
    shutil.copytree(DATA / "pipedrive_changelog", folder)
    changes = folder / "deal_changes.csv"
    changes.write_text(
        changes.read_text(encoding="utf-8").replace(
            "100,2024-03-01 09:00:00,add_time,2024-03-01T09:00:00", "100,2024-03-01 09:00:00,add_time,0001-03-01T09:00:00"
        ),
        encoding="utf-8",
    )
    activities = folder / "activity.csv"
    activities.write_text(
        activities.read_text(encoding="utf-8").replace("9001,meeting,1,100,True,2024-03-02T15:00:00", "9001,meeting,1,100,True,9999-03-02T15:00:00"),
        encoding="utf-8",
    )

    result = run_file_import(org, "pipedrive", folder)

    rejected = [(error.file_name, error.line, error.value) for error in result.errors]
    assert ("deal_changes.csv", 2, "0001-03-01T09:00:00") in rejected
    assert ("activity.csv", 2, "9999-03-02T15:00:00") in rejected


def test_records_reject_year_1_and_9999(org):
    result = run_records(
        org,
        deals=[
            {"external_id": "D1", "owner": "Rita Rep", "stage": "Negotiation", "created_at": "0001-01-01"},
            {"external_id": "D2", "owner": "Rita Rep", "stage": "Negotiation", "created_at": "9999-12-31"},
            {"external_id": "D3", "owner": "Rita Rep", "stage": "Negotiation", "created_at": "2017-01-10"},
            {"external_id": "D4", "owner": "Rita Rep", "stage": "Negotiation", "created_at": "2017-01-10", "expected_close_on": "9999-01-01"},
        ],
        stage_changes=[{"deal": "D3", "stage": "Won", "changed_at": "9999-12-31T10:00:00Z"}],
        activities=[{"external_id": "A1", "kind": "call", "owner": "Rita Rep", "occurred_at": "0001-01-01T10:00:00"}],
    )

    assert [(error.entity, error.field, error.value) for error in result.record_errors] == [
        ("deals", "created_at", "0001-01-01"),
        ("deals", "created_at", "9999-12-31"),
        ("deals", "expected_close_on", "9999-01-01"),
        ("stage_changes", "changed_at", "9999-12-31T10:00:00Z"),
        ("activities", "occurred_at", "0001-01-01T10:00:00"),
    ]
    with scope(organization=org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["D3"]
        assert not DealStageChange.objects.filter(to_stage__name="Won").exists()
        assert not Activity.objects.exists()


def test_recompute_skips_stored_deals_out_of_range(org, member, caplog):
    # Stored before imports checked the range: the recompute must not fail, and leaves them out.
    make_deal(member, created=utc(2017, 1, 10, 12), amount="500.00")
    with scopes_disabled():
        stored = make_deal(member, created=utc(2017, 1, 10, 12), amount="700.00")
        Deal.objects.filter(pk=stored.pk).update(created_at=dt.datetime(1, 1, 1, 12, tzinfo=dt.timezone.utc))
        closed = make_deal(member, status="won", created=utc(2017, 1, 10, 12), closed=utc(2017, 2, 1, 12), amount="900.00")
        Deal.objects.filter(pk=closed.pk).update(closed_at=dt.datetime(9999, 12, 31, 12, tzinfo=dt.timezone.utc))

    with caplog.at_level(logging.WARNING, logger="dashboards.services"):
        kpi_snapshot_recompute(organization=org)

    january = rows_of(org, "2017-01", Grain.ORGANIZATION)["Acme"]
    assert january.open_count == 1
    assert january.open_amount == Decimal("500.00")
    assert january.won_count == 0
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        f"KPI snapshots skip deals with dates outside 2000-01-01 to 2100-12-31 organization_id={org.pk} deals=2"
    ]
