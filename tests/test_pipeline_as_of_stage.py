"""Pipeline as of a date: the stage a deal was in, and the deals with no stage recorded yet.

Acme (Europe/Berlin), pipeline Sales. The day is 2017-04-01, the as-of day the
pipeline page picks for Q2 2017; its start is 2017-03-31 22:00 UTC. Times are 12:00 UTC.
- A (100): Lead 03-01 → Qualified 03-20: Qualified.
- B (200): created 03-05, first recorded move into Proposal on 04-10: no stage recorded yet.
- C (400): created 03-06, first recorded move Lead → Qualified on 04-12: Lead, the move's source.
- E (800): created 03-07 in Negotiation, never moved: Negotiation.
- F (1,600): created 04-03: not open yet.
- G (3,200): created 03-08, first recorded move into Qualified on 04-15, won 04-20: no stage recorded yet.
Open at the start of the day: A, B, C, E, G = 5 deals, 4,700.00.
"""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import translation
from django_scopes import scope, scopes_disabled

from dashboards.analytics.base import deal_universe
from dashboards.analytics.drilldown import (
    analysis_deals,
    analysis_label,
    analysis_parse,
)
from dashboards.analytics.snapshots import (
    RECONSTRUCTED,
    SNAPSHOT,
    pipeline_as_of,
    pipeline_as_of_deals,
    snapshot_take,
)
from dashboards.selectors import deal_filter_open_at
from pipelines.models import Deal, DealStageChange, DealStatus
from spm.fiscal import local_midnight
from tests.analytics_data import deal_with_history, sales_stages, utc
from tests.factories import DealFactory

DAY = dt.date(2017, 4, 1)


@pytest.fixture
def stages(org):
    return sales_stages(org)


def deal_with_late_history(owner, stages, created_at, moves, *, stage, amount, status=DealStatus.OPEN, closed_at=None):
    """Create a deal created at `created_at` whose recorded moves (from stage name or None, to stage name, time) start later."""
    with scopes_disabled():
        deal = DealFactory(
            owner=owner,
            stage=stages[stage],
            status=status,
            amount=Decimal(amount),
            created_at=created_at,
            closed_at=closed_at,
        )
        for from_name, to_name, changed_at in moves:
            DealStageChange.objects.create(
                organization=deal.organization,
                deal=deal,
                from_stage=stages[from_name] if from_name else None,
                to_stage=stages[to_name],
                changed_at=changed_at,
            )
        return deal


@pytest.fixture
def deals(org, member, stages):
    return {
        "A": deal_with_history(member, stages, [("Lead", utc(3, 1)), ("Qualified", utc(3, 20))], amount="100.00"),
        "B": deal_with_late_history(
            member, stages, utc(3, 5), [(None, "Proposal", utc(4, 10))], stage="Proposal", amount="200.00"
        ),
        "C": deal_with_late_history(
            member, stages, utc(3, 6), [("Lead", "Qualified", utc(4, 12))], stage="Qualified", amount="400.00"
        ),
        "E": deal_with_late_history(member, stages, utc(3, 7), [], stage="Negotiation", amount="800.00"),
        "F": deal_with_history(member, stages, [("Lead", utc(4, 3))], amount="1600.00"),
        "G": deal_with_late_history(
            member,
            stages,
            utc(3, 8),
            [(None, "Qualified", utc(4, 15)), ("Qualified", "Won", utc(4, 20))],
            stage="Won",
            amount="3200.00",
            status=DealStatus.WON,
            closed_at=utc(4, 20),
        ),
    }


EXPECTED_ROWS = [
    ("Lead", 1, Decimal("400.00")),
    ("Qualified", 1, Decimal("100.00")),
    ("Negotiation", 1, Decimal("800.00")),
    (None, 2, Decimal("3400.00")),
]


def as_of_rows(org):
    with scope(organization=org):
        result = pipeline_as_of(deal_universe(organization=org, visible_member_ids=None), organization=org, day=DAY)
    return result, [(row.stage.name if row.stage else None, row.deal_count, row.base_amount) for row in result.rows]


def deals_behind(org, stage_id):
    with scope(organization=org):
        universe = deal_universe(organization=org, visible_member_ids=None)
        return set(pipeline_as_of_deals(universe, organization=org, day=DAY, stage_id=stage_id))


def test_reconstructed_rows_by_stage(org, deals):
    result, rows = as_of_rows(org)

    assert result.source == RECONSTRUCTED
    assert rows == EXPECTED_ROWS


def test_total_equals_open_count(org, deals):
    result, _rows = as_of_rows(org)
    with scopes_disabled():
        open_count = Deal.objects.filter(deal_filter_open_at(local_midnight(DAY, org.tzinfo)), organization=org).count()

    assert open_count == 5
    assert result.deal_count == 5
    assert result.base_amount == Decimal("4700.00")


def test_drill_down_of_unrecorded_row(org, deals):
    with scope(organization=org):
        analysis = analysis_parse("as_of", "2017-04-01:none", None)
        listed = set(
            analysis_deals(
                deal_universe(organization=org, visible_member_ids=None), organization=org, analysis=analysis, period=None
            )
        )
    with translation.override("en"):
        label = analysis_label(analysis)

    assert listed == {deals["B"], deals["G"]}
    assert label == "Pipeline as of a date: No stage recorded yet, 2017-04-01"


def test_drill_down_of_stage_rows(org, deals, stages):
    assert deals_behind(org, stages["Lead"].pk) == {deals["C"]}
    assert deals_behind(org, stages["Qualified"].pk) == {deals["A"]}
    assert deals_behind(org, stages["Negotiation"].pk) == {deals["E"]}
    assert deals_behind(org, stages["Proposal"].pk) == set()
    assert deals_behind(org, None) == {deals["B"], deals["G"]}


def test_snapshot_agrees_with_reconstruction(org, deals):
    with scope(organization=org):
        inserted = snapshot_take(organization=org, day=DAY)
    result, rows = as_of_rows(org)

    assert inserted == 5
    assert result.source == SNAPSHOT
    assert rows == EXPECTED_ROWS
    assert deals_behind(org, None) == {deals["B"], deals["G"]}


def test_page_shows_unrecorded_row_with_drill_down(client, org, deals, admin_member):
    client.force_login(admin_member.user)

    with translation.override("en"):
        content = client.get("/o/acme/pipeline/?period=2017-Q2", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    table = content.split('data-table="as_of"')[1].split("</table>")[0]
    assert "No stage recorded yet" in table
    assert "key=2017-04-01:none" in table


def test_export_lists_unrecorded_row(client, org, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/?period=2017-Q2&table=as_of&format=csv", HTTP_ACCEPT_LANGUAGE="en")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))

    assert rows[1:] == [
        ["Sales", "Lead", "1", "400.00"],
        ["Sales", "Qualified", "1", "100.00"],
        ["Sales", "Negotiation", "1", "800.00"],
        ["", "No stage recorded yet", "2", "3400.00"],
    ]
