"""`manage.py kpi_report`: JSON and CSV of one period's snapshot rows, and its input errors."""

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from pipelines.models import DealStatus
from tests.factories import DealFactory, MembershipFactory, PipelineFactory, StageFactory

WON, LOST, OPEN = DealStatus.WON, DealStatus.LOST, DealStatus.OPEN


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


@pytest.fixture
def reported_org(org):
    """Q2 2017 of Acme: Anna closes deals and has one open, Bert has only an open deal."""
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org))
        anna = MembershipFactory(organization=org, user__name="Anna Adler")
        bert = MembershipFactory(organization=org, user__name="Bert Brandt")

        def deal(owner, status, created, closed, amount):
            DealFactory(
                owner=owner, stage=stage, status=status, created_at=created, closed_at=closed, amount=Decimal(amount)
            )

        # Anna: won 600.00 after 2 days and 400.01 after 3 days, lost 249.99, 100.00 open at the end.
        deal(anna, WON, utc(2017, 4, 8, 12), utc(2017, 4, 10, 12), "600.00")
        deal(anna, WON, utc(2017, 5, 7, 12), utc(2017, 5, 10, 12), "400.01")
        deal(anna, LOST, utc(2017, 5, 20, 12), utc(2017, 6, 1, 12), "249.99")
        deal(anna, OPEN, utc(2017, 6, 15, 12), None, "100.00")
        # Bert: one open deal of 2000.00, nothing closed.
        deal(bert, OPEN, utc(2017, 5, 2, 12), None, "2000.00")
    kpi_snapshot_recompute(organization=org)
    return org


def run_report(*args) -> str:
    out = io.StringIO()
    call_command("kpi_report", *args, stdout=out)
    return out.getvalue()


ANNA = {
    "subject": "Anna Adler",
    "won_count": 2,
    "lost_count": 1,
    # 2 / 3
    "win_rate": 2 / 3,
    # 1000.01 / (1000.01 + 249.99) = 1000.01 / 1250 = 0.800008
    "value_win_rate": 0.800008,
    "won_amount": "1000.01",
    "lost_amount": "249.99",
    # 1000.01 / 2 = 500.005, rounded half up
    "average_deal_size": "500.01",
    # (2 + 3) / 2
    "sales_cycle_days_mean": 2.5,
    "sales_cycle_days_median": 2.5,
    "open_count": 1,
    "open_amount": "100.00",
    # 1 × 2/3 × 500.005 / 2.5 = 133.3346…
    "pipeline_velocity": "133.33",
}
BERT = {
    "subject": "Bert Brandt",
    "won_count": 0,
    "lost_count": 0,
    "win_rate": None,
    "value_win_rate": None,
    "won_amount": "0.00",
    "lost_amount": "0.00",
    "average_deal_size": None,
    "sales_cycle_days_mean": None,
    "sales_cycle_days_median": None,
    "open_count": 1,
    "open_amount": "2000.00",
    "pipeline_velocity": None,
}


def test_report_json_by_rep(reported_org):
    report = json.loads(run_report("--org", "acme", "--period", "2017-Q2", "--by", "rep"))

    assert report == {
        "organization": "acme",
        "period": {"label": "2017-Q2", "start": "2017-04-01", "end": "2017-06-30"},
        "by": "rep",
        "rows": [ANNA, BERT],
    }


def test_report_json_value_types(reported_org):
    text = run_report("--org", "acme", "--period", "2017-Q2", "--by", "rep")

    assert '"won_amount": "1000.01"' in text
    assert '"win_rate": null' in text
    assert '"win_rate": 0,' not in text


def test_report_organization_grain(reported_org):
    report = json.loads(run_report("--org", "acme", "--period", "2017-Q2", "--by", "organization"))

    (row,) = report["rows"]
    assert row["subject"] == "Acme"
    assert row["open_count"] == 2
    # 100.00 + 2000.00
    assert row["open_amount"] == "2100.00"
    # 2 open × 2/3 × 500.005 / 2.5 = 266.6693…
    assert row["pipeline_velocity"] == "266.67"


def test_report_month_period_label(reported_org):
    report = json.loads(run_report("--org", "acme", "--period", "2017-04", "--by", "rep"))

    assert report["period"] == {"label": "2017-04", "start": "2017-04-01", "end": "2017-04-30"}
    assert [row["subject"] for row in report["rows"]] == ["Anna Adler"]
    assert report["rows"][0]["won_amount"] == "600.00"


def test_report_csv(reported_org):
    text = run_report("--org", "acme", "--period", "2017-Q2", "--by", "rep", "--format", "csv")

    assert text.splitlines() == [
        "subject,won_count,lost_count,win_rate,value_win_rate,won_amount,lost_amount,average_deal_size,"
        "sales_cycle_days_mean,sales_cycle_days_median,open_count,open_amount,pipeline_velocity",
        "Anna Adler,2,1,0.6666666666666666,0.800008,1000.01,249.99,500.01,2.5,2.5,1,100.00,133.33",
        "Bert Brandt,0,0,,,0.00,0.00,,,,1,2000.00,",
    ]


def test_report_period_without_rows_is_empty(reported_org):
    report = json.loads(run_report("--org", "acme", "--period", "2030", "--by", "team"))

    assert report["rows"] == []
    assert report["period"] == {"label": "2030", "start": "2030-01-01", "end": "2030-12-31"}


def test_report_reads_snapshot_not_deals(reported_org):
    with scopes_disabled():
        rep = MembershipFactory(organization=reported_org, user__name="Carl")
        DealFactory(
            owner=rep,
            stage=StageFactory(pipeline=reported_org.pipeline_set.first()),
            status=WON,
            created_at=utc(2017, 4, 1, 12),
            closed_at=utc(2017, 4, 2, 12),
        )

    report = json.loads(run_report("--org", "acme", "--period", "2017-Q2", "--by", "rep"))

    # Carl's deal shows only after the next recompute.
    assert [row["subject"] for row in report["rows"]] == ["Anna Adler", "Bert Brandt"]


def test_report_unknown_org(reported_org):
    with pytest.raises(CommandError, match="'nosuch' not found; pass the slug"):
        run_report("--org", "nosuch", "--period", "2017", "--by", "rep")


def test_report_invalid_period(reported_org):
    with pytest.raises(CommandError, match=r"Invalid period '2017-13'; use a fiscal year \(2017\)"):
        run_report("--org", "acme", "--period", "2017-13", "--by", "rep")


def test_report_invalid_by(reported_org):
    with pytest.raises(CommandError, match="Invalid --by 'region'; use one of: organization, territory, team, rep"):
        run_report("--org", "acme", "--period", "2017", "--by", "region")


def test_report_invalid_format(reported_org):
    with pytest.raises(CommandError, match="Invalid --format 'xml'; use one of: json, csv"):
        run_report("--org", "acme", "--period", "2017", "--by", "rep", "--format", "xml")


def test_report_help_says_end_is_inclusive():
    from dashboards.management.commands.kpi_report import Command

    help_text = " ".join(Command().create_parser("manage.py", "kpi_report").format_help().split())

    assert "end is its last day (inclusive)" in help_text
