"""`kpi_report --metric attainment`: JSON and CSV values, "covered", null, input errors.

Scenario (Acme, Q2 2017 = 91 days, as of 2017-05-15 = 45 days elapsed), won revenue:
team North (fixture team): Anna (quota 10,000, won 5,000, open 2,500 expected
06-20) and Bert (quota 2,000, won 3,000); Cora has no team and no quota, won 100.
Every close lies before the as-of day.
"""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scopes_disabled

from pipelines.models import DealStatus, Stage, StageKind
from spm.models import Membership
from tests.attainment_data import deal_create, quota_create, rep_create, stages_create, utc

WON, OPEN = DealStatus.WON, DealStatus.OPEN


@pytest.fixture
def reported(org, team):
    with scopes_disabled():
        stages = stages_create(org)
        anna = rep_create(org, "Anna", team=team)
        bert = rep_create(org, "Bert", team=team)
        cora = rep_create(org, "Cora")
        quota_create(anna, "10000.00")
        quota_create(bert, "2000.00")
        deal_create(anna, stages, WON, "5000.00", closed_at=utc(5, 2))
        deal_create(anna, stages, OPEN, "2500.00", expected_close_on=dt.date(2017, 6, 20))
        deal_create(bert, stages, WON, "3000.00", closed_at=utc(4, 20))
        deal_create(cora, stages, WON, "100.00", closed_at=utc(5, 10))
    return org


def report(*args) -> str:
    out = io.StringIO()
    call_command("kpi_report", "--org", "acme", "--period", "2017-Q2", "--metric", "attainment", *args, stdout=out)
    return out.getvalue()


def rows_by_subject(*args) -> dict:
    data = json.loads(report("--as-of", "2017-05-15", *args))
    return {row["subject"]: row for row in data["rows"]}


def test_json_header(reported):
    data = json.loads(report("--by", "rep", "--as-of", "2017-05-15"))

    assert data["organization"] == "acme"
    assert data["period"] == {"label": "2017-Q2", "start": "2017-04-01", "end": "2017-06-30"}
    assert data["metric"] == "attainment"
    assert data["quota_metric"] == "won_revenue"
    assert data["by"] == "rep"
    assert data["as_of"] == "2017-05-15"
    assert [row["subject"] for row in data["rows"]] == ["Anna", "Bert", "Cora"]


def test_rep_row_values(reported):
    anna = rows_by_subject("--by", "rep")["Anna"]

    assert anna["quota"] == "10000.00"
    assert anna["credited"] == "5000.00"
    assert anna["attainment"] == 0.5
    assert anna["elapsed_share"] == pytest.approx(45 / 91)
    # 10,000 × 45/91 = 4,945.05; 5,000 ÷ 4,945.05 = 1.0111.
    assert anna["pace_target"] == "4945.05"
    assert anna["pacing"] == pytest.approx(91 / 90)
    # 5,000 ÷ 45/91 = 10,111.11.
    assert anna["projected"] == "10111.11"
    assert anna["projected_attainment"] == pytest.approx(91 / 90)
    assert anna["open_pipeline"] == "2500.00"
    assert anna["coverage"] == 0.5
    assert anna["warning"] is False


def test_as_of_leaves_out_deals_closed_after_that_day(reported):
    with scopes_disabled():
        anna = Membership.objects.get(organization=reported, user__name="Anna")
        stages = {WON: Stage.objects.get(pipeline__organization=reported, kind=StageKind.WON)}
        # 00:30 on 16 May in Berlin, still 15 May in UTC.
        deal_create(anna, stages, WON, "4000.00", closed_at=dt.datetime(2017, 5, 15, 22, 30, tzinfo=dt.timezone.utc))

    row = rows_by_subject("--by", "rep")["Anna"]

    assert row["credited"] == "5000.00"
    assert row["attainment"] == 0.5
    assert row["pacing"] == pytest.approx(91 / 90)
    assert row["projected"] == "10111.11"
    assert row["coverage"] == 0.5


def test_coverage_covered_when_nothing_remains(reported):
    bert = rows_by_subject("--by", "rep")["Bert"]

    assert bert["attainment"] == 1.5
    assert bert["coverage"] == "covered"


def test_rep_without_quota_has_nulls(reported):
    cora = rows_by_subject("--by", "rep")["Cora"]

    assert cora["quota"] is None
    assert cora["credited"] == "100.00"
    assert cora["attainment"] is None
    assert cora["pace_target"] is None
    assert cora["pacing"] is None
    assert cora["projected"] == "202.22"
    assert cora["projected_attainment"] is None
    assert cora["coverage"] is None
    assert cora["warning"] is False


def test_team_is_ratio_of_sums(reported):
    north = rows_by_subject("--by", "team")["North"]

    assert north["quota"] == "12000.00"
    assert north["credited"] == "8000.00"
    assert north["attainment"] == pytest.approx(8000 / 12000)


def test_count_metric_prints_numbers(reported):
    with scopes_disabled():
        anna = Membership.objects.get(user__name="Anna")
        quota_create(anna, "4.00", metric="won_deals")

    anna_row = rows_by_subject("--by", "rep", "--quota-metric", "won_deals")["Anna"]

    assert anna_row["quota"] == 4
    assert anna_row["credited"] == 1
    assert anna_row["attainment"] == 0.25


def test_csv_has_header_and_empty_cells(reported):
    lines = report("--by", "rep", "--as-of", "2017-05-15", "--format", "csv").splitlines()

    assert lines[0] == (
        "subject,quota,credited,attainment,elapsed_share,pace_target,pacing,projected,"
        "projected_attainment,open_pipeline,coverage,warning"
    )
    assert lines[2].startswith("Bert,2000.00,3000.00,1.5,")
    assert lines[2].endswith(",0.00,covered,False")
    assert lines[3].startswith("Cora,,100.00,,")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--as-of", "2017-05-15"), "Invalid or missing --by None"),
        (("--by", "organization"), "Invalid or missing --by 'organization'"),
        (("--by", "rep", "--quota-metric", "revenue"), "Invalid --quota-metric 'revenue'"),
        (("--by", "rep", "--as-of", "15.05.2017"), "Invalid --as-of '15.05.2017'"),
    ],
)
def test_input_errors(reported, args, message):
    with pytest.raises(CommandError, match=message):
        report(*args)
