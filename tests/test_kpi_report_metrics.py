"""kpi_report --metric: JSON shapes, rows per stage in stage order, and date-range periods.

Data: the funnel cohort of tests/test_analytics_funnel.py, reduced to Q2 2017
(Europe/Berlin, 12:00 UTC):
- A: Lead 04-03 → Proposal 04-20 → Won 05-15 (amount 1,000.00).
- B: Lead 04-05 → Qualified 04-10 → Proposal 04-25 → Qualified 05-02.
- C: Lead 04-07 → Lost 04-30.
reached: Lead 3, Qualified 2, Proposal 2, Negotiation 1 (A, won), Won 1.
conversion: 2/3, 1.0, 0.5, 1.0, then null for the won step.
Time in stage, range 2017-04-01..2017-04-30 (stays ended in April):
Lead: A 17 d, B 5 d, C 23 d → mean 15, median 17. Qualified: B 04-10 →
04-25 = 15 d. Proposal: A 04-20 → 05-15 ends in May: none.
Waterfall Q2 without snapshots: start 0, created 3 (3,000.00), won 1, lost 1,
other exits 0, end 1 (1,000.00).
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from tests.analytics_data import deal_with_history, sales_stages, utc


@pytest.fixture
def data(org, member):
    stages = sales_stages(org)
    deal_with_history(member, stages, [("Lead", utc(4, 3)), ("Proposal", utc(4, 20)), ("Won", utc(5, 15))])
    deal_with_history(
        member,
        stages,
        [("Lead", utc(4, 5)), ("Qualified", utc(4, 10)), ("Proposal", utc(4, 25)), ("Qualified", utc(5, 2))],
    )
    deal_with_history(member, stages, [("Lead", utc(4, 7)), ("Lost", utc(4, 30))])
    return stages


def report(*arguments) -> dict:
    output = StringIO()
    call_command("kpi_report", "--org", "acme", *arguments, stdout=output)
    return json.loads(output.getvalue())


def test_funnel_metric_json(data):
    result = report("--period", "2017-Q2", "--metric", "funnel")

    assert result["metric"] == "funnel"
    assert result["pipeline"] == "Sales"
    assert result["period"] == {"label": "2017-Q2", "start": "2017-04-01", "end": "2017-06-30"}
    assert [row["stage"] for row in result["rows"]] == ["Lead", "Qualified", "Proposal", "Negotiation", "Won"]
    assert [row["reached"] for row in result["rows"]] == [3, 2, 2, 1, 1]
    assert result["rows"][0]["conversion_to_next"] == pytest.approx(2 / 3)
    assert result["rows"][1]["conversion_to_next"] == 1.0
    assert result["rows"][2]["conversion_to_next"] == 0.5
    assert result["rows"][4]["conversion_to_next"] is None
    assert result["rows"][4]["kind"] == "won"


def test_funnel_won_step_same_in_german(data):
    with translation.override("de"):
        result = report("--period", "2017-Q2", "--metric", "funnel")

    assert result["rows"][4]["stage"] == "Won"


def test_time_in_stage_metric_over_range(data):
    result = report("--period", "2017-04-01..2017-04-30", "--metric", "time_in_stage")

    assert result["period"] == {"label": "2017-04-01..2017-04-30", "start": "2017-04-01", "end": "2017-04-30"}
    lead, qualified, proposal, negotiation = result["rows"]
    assert lead == {"stage": "Lead", "stay_count": 3, "deal_count": 3, "days_mean": 15.0, "days_median": 17.0}
    assert qualified["days_mean"] == 15.0
    assert proposal["stay_count"] == 0
    assert proposal["days_mean"] is None
    assert negotiation["days_median"] is None


def test_velocity_metric_rows(data):
    result = report("--period", "2017-Q2", "--metric", "velocity")

    # Lead: A 04-03 → Proposal 04-20 = 17, B 04-05 → Qualified 04-10 = 5: mean 11.
    assert result["rows"][0] == {"stage": "Lead", "deal_count": 2, "days_mean": 11.0}
    assert [row["stage"] for row in result["rows"]] == ["Lead", "Qualified", "Proposal", "Negotiation"]


def test_waterfall_metric_money_as_strings(data):
    result = report("--period", "2017-Q2", "--metric", "waterfall")

    steps = {row["step"]: row for row in result["rows"]}
    assert steps["start"] == {"step": "start", "deal_count": 0, "amount": "0.00"}
    assert steps["created"] == {"step": "created", "deal_count": 3, "amount": "3000.00"}
    assert steps["won"]["deal_count"] == 1
    assert steps["lost"]["deal_count"] == 1
    assert steps["other_exits"]["deal_count"] == 0
    assert steps["end"] == {"step": "end", "deal_count": 1, "amount": "1000.00"}
    assert result["identity_holds"] is True
    assert result["start_from_snapshot"] is False


def test_metric_csv_has_header_row(data):
    output = StringIO()
    call_command("kpi_report", "--org", "acme", "--period", "2017-Q2", "--metric", "funnel", "--format", "csv", stdout=output)

    lines = output.getvalue().splitlines()
    assert lines[0] == "stage,kind,reached,conversion_to_next"
    assert lines[5] == "Won,won,1,"


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2017-04-30..2017-04-01", "the end date is before the start date"),
        ("2017-02-30..2017-03-01", "is not a calendar date"),
        ("2017-04-01..", "use YYYY-MM-DD..YYYY-MM-DD"),
    ],
)
def test_invalid_range_rejected(data, period, message):
    with pytest.raises(CommandError, match=message):
        report("--period", period, "--metric", "funnel")


def test_range_without_metric_rejected(data):
    with pytest.raises(CommandError, match="A date range works only with --metric"):
        report("--period", "2017-04-01..2017-04-30", "--by", "rep")


def test_unknown_metric_rejected(data):
    with pytest.raises(CommandError, match="Invalid --metric 'speed'"):
        report("--period", "2017-Q2", "--metric", "speed")
