"""Stage funnel of a cohort: skipped stages, backward moves, won deals and a stage nobody reached.

Pipeline Sales: Lead(1) → Qualified(2) → Proposal(3) → Negotiation(4), then
Won and Lost. Acme's time zone is Europe/Berlin; all times are 12:00 UTC.

Cohort Q2 2017 (deals created April to June):
- A: Lead 04-03 → Proposal 04-20 (skips Qualified) → Won 05-15: reached all.
- B: Lead 04-05 → Qualified 04-10 → Proposal 04-25 → Qualified 05-02
  (backwards): highest open order 3, still reached Proposal.
- C: Lead 04-07 → Lost 04-30: highest 1.
- D: created directly in Qualified 05-03: highest 2, Lead counts as reached.
- E: created 03-15 (Q1), Lead → Negotiation: outside the cohort.
reached: Lead 4 (A, B, C, D), Qualified 3 (A, B, D), Proposal 2 (A, B),
Negotiation 1 (A), Won 1 (A).
conversion: Lead→Qualified 3/4 = 0.75, Qualified→Proposal 2/3,
Proposal→Negotiation 1/2 = 0.5, Negotiation→Won 1/1 = 1.

Cohort Q3 2017: G Lead 07-03, H created in Qualified 07-04.
reached: Lead 2, Qualified 1, Proposal 0, Negotiation 0, Won 0.
conversion: Lead→Qualified 1/2 = 0.5, Qualified→Proposal 0/1 = 0,
Proposal→Negotiation none (nobody reached Proposal), Negotiation→Won none.
"""

from decimal import Decimal

import pytest
from django_scopes import scope

from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.funnel import funnel_deals_reached, funnel_rows
from spm.fiscal import parse_period
from tests.analytics_data import deal_with_history, sales_stages, utc


@pytest.fixture
def stages(org):
    return sales_stages(org)


@pytest.fixture
def cohort_deals(org, member, stages):
    return {
        "A": deal_with_history(member, stages, [("Lead", utc(4, 3)), ("Proposal", utc(4, 20)), ("Won", utc(5, 15))]),
        "B": deal_with_history(
            member,
            stages,
            [("Lead", utc(4, 5)), ("Qualified", utc(4, 10)), ("Proposal", utc(4, 25)), ("Qualified", utc(5, 2))],
        ),
        "C": deal_with_history(member, stages, [("Lead", utc(4, 7)), ("Lost", utc(4, 30))]),
        "D": deal_with_history(member, stages, [("Qualified", utc(5, 3))]),
        "E": deal_with_history(member, stages, [("Lead", utc(3, 15)), ("Negotiation", utc(4, 2))]),
        "G": deal_with_history(member, stages, [("Lead", utc(7, 3))]),
        "H": deal_with_history(member, stages, [("Qualified", utc(7, 4))]),
    }


def rows_for(org, stages, label):
    window = Window.of(parse_period(label, 1), org)
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        return funnel_rows(deals, window=window, pipeline=stages["Lead"].pipeline, won_label="Won")


def test_funnel_counts_skipped_and_backward_moves(org, stages, cohort_deals):
    rows = rows_for(org, stages, "2017-Q2")

    assert [row.label for row in rows] == ["Lead", "Qualified", "Proposal", "Negotiation", "Won"]
    assert [row.reached for row in rows] == [4, 3, 2, 1, 1]


def test_funnel_conversions(org, stages, cohort_deals):
    rows = rows_for(org, stages, "2017-Q2")

    assert rows[0].conversion == Decimal("0.75")
    assert rows[1].conversion == Decimal(2) / Decimal(3)
    assert rows[2].conversion == Decimal("0.5")
    assert rows[3].conversion == Decimal("1")
    assert rows[4].conversion is None


def test_funnel_stage_nobody_reached_has_no_conversion(org, stages, cohort_deals):
    rows = rows_for(org, stages, "2017-Q3")

    assert [row.reached for row in rows] == [2, 1, 0, 0, 0]
    assert rows[0].conversion == Decimal("0.5")
    assert rows[1].conversion == Decimal("0")
    assert rows[2].conversion is None
    assert rows[3].conversion is None


def test_funnel_drilldown_lists_reached_deals(org, stages, cohort_deals):
    window = Window.of(parse_period("2017-Q2", 1), org)
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        reached_qualified = set(funnel_deals_reached(deals, window=window, pipeline=stages["Lead"].pipeline, stage=stages["Qualified"]))
        won = set(funnel_deals_reached(deals, window=window, pipeline=stages["Lead"].pipeline, stage=None))

    assert reached_qualified == {cohort_deals["A"], cohort_deals["B"], cohort_deals["D"]}
    assert won == {cohort_deals["A"]}


def test_funnel_counts_only_visible_members(org, stages, cohort_deals, other_rep):
    deal_with_history(other_rep, stages, [("Lead", utc(4, 8))])
    window = Window.of(parse_period("2017-Q2", 1), org)
    with scope(organization=org):
        everyone = deal_universe(organization=org, visible_member_ids=None)
        only_other = deal_universe(organization=org, visible_member_ids={other_rep.pk})
        all_rows = funnel_rows(everyone, window=window, pipeline=stages["Lead"].pipeline, won_label="Won")
        other_rows = funnel_rows(only_other, window=window, pipeline=stages["Lead"].pipeline, won_label="Won")

    assert all_rows[0].reached == 5
    assert [row.reached for row in other_rows] == [1, 0, 0, 0, 0]
