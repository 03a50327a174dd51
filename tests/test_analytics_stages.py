"""Time in stage, stage-to-stage velocity and stalled deals.

Pipeline Sales: Lead(1), Qualified(2), Proposal(3), Negotiation(4), Won, Lost;
period Q2 2017 in Europe/Berlin; every time is 12:00 UTC, so day differences
are whole.

History:
- T1: Lead 04-01 → Qualified 04-11 → Lead 04-15 (back) → Qualified 04-20 →
  Proposal 05-10 (still there).
  Stays: Lead 10 d, Qualified 4 d, Lead 5 d, Qualified 20 d; Proposal open.
- T2: created directly in Proposal 03-20 → Won 04-09. Stay: Proposal 20 d,
  ended in Q2; no stay in Lead or Qualified.
- T3: Lead 03-01 → Qualified 03-21 → Lost 07-05. Lead ended in Q1 and
  Qualified in Q3: nothing in Q2.
- T4: Lead 04-02 → Qualified 04-23 (still there). Stay: Lead 21 d.

Time in stage, Q2:
- Lead: stays 10, 5, 21 → 3 stays, 2 deals, mean 12, median 10.
- Qualified: stays 4, 20 → 2 stays, 1 deal, mean 12, median 12.
- Proposal: stay 20 → mean 20, median 20.
- Negotiation: no stay → None.

Velocity, Q2 (first entry into s → first later entry into a higher open
stage or Won, counted when that later entry is in Q2):
- Lead: T1 04-01 → 04-11 = 10, T4 04-02 → 04-23 = 21 → 2 deals, mean 15.5.
- Qualified: T1 first entry 04-11 → Proposal 05-10 = 29 → 1 deal, mean 29.
  (T3's move into Lost is no progress.)
- Proposal: T2 03-20 → Won 04-09 = 20 → 1 deal, mean 20.
- Negotiation: none.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.stages import stalled_deals, stalled_rows, time_in_stage_deals, time_in_stage_rows
from dashboards.analytics.velocity import stage_velocity_deals, stage_velocity_rows
from spm.fiscal import parse_period
from tests.analytics_data import add_activity, deal_with_history, sales_stages, utc


@pytest.fixture
def stages(org):
    return sales_stages(org, thresholds={"Lead": 10, "Qualified": 14})


@pytest.fixture
def history(org, member, stages):
    return {
        "T1": deal_with_history(
            member,
            stages,
            [
                ("Lead", utc(4, 1)),
                ("Qualified", utc(4, 11)),
                ("Lead", utc(4, 15)),
                ("Qualified", utc(4, 20)),
                ("Proposal", utc(5, 10)),
            ],
        ),
        "T2": deal_with_history(member, stages, [("Proposal", utc(3, 20)), ("Won", utc(4, 9))]),
        "T3": deal_with_history(member, stages, [("Lead", utc(3, 1)), ("Qualified", utc(3, 21)), ("Lost", utc(7, 5))]),
        "T4": deal_with_history(member, stages, [("Lead", utc(4, 2)), ("Qualified", utc(4, 23))]),
    }


@pytest.fixture
def q2(org):
    return Window.of(parse_period("2017-Q2", 1), org)


def test_time_in_stage_counts_every_stay(org, stages, history, q2):
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        rows = time_in_stage_rows(deals, window=q2, pipeline=stages["Lead"].pipeline)

    lead, qualified, proposal, negotiation = rows
    assert [row.stage.name for row in rows] == ["Lead", "Qualified", "Proposal", "Negotiation"]
    assert (lead.stay_count, lead.deal_count) == (3, 2)
    assert lead.days_mean == Decimal("12")
    assert lead.days_median == Decimal("10")
    assert (qualified.stay_count, qualified.deal_count) == (2, 1)
    assert qualified.days_mean == Decimal("12")
    assert qualified.days_median == Decimal("12")
    assert proposal.stay_count == 1
    assert proposal.days_mean == Decimal("20")
    assert negotiation.stay_count == 0
    assert negotiation.days_mean is None
    assert negotiation.days_median is None


def test_time_in_stage_drilldown_lists_deals(org, stages, history, q2):
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        lead_deals = set(time_in_stage_deals(deals, window=q2, stage=stages["Lead"]))
        proposal_deals = set(time_in_stage_deals(deals, window=q2, stage=stages["Proposal"]))

    assert lead_deals == {history["T1"], history["T4"]}
    assert proposal_deals == {history["T2"]}


def test_stage_velocity_from_first_entry(org, stages, history, q2):
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        rows = stage_velocity_rows(deals, window=q2, pipeline=stages["Lead"].pipeline)
        lead_deals = set(stage_velocity_deals(deals, window=q2, stage=stages["Lead"]))

    lead, qualified, proposal, negotiation = rows
    assert (lead.deal_count, lead.days_mean) == (2, Decimal("15.5"))
    assert (qualified.deal_count, qualified.days_mean) == (1, Decimal("29"))
    assert (proposal.deal_count, proposal.days_mean) == (1, Decimal("20"))
    assert (negotiation.deal_count, negotiation.days_mean) == (0, None)
    assert lead_deals == {history["T1"], history["T4"]}


# Stalled deals at NOW = 2017-06-30 12:00 UTC; thresholds Lead 10 days, Qualified 14, Proposal none.
NOW = utc(6, 30)


@pytest.fixture
def idle_deals(org, member, stages):
    deals = {
        # Idle 20 days in Lead: stalled.
        "S1": deal_with_history(member, stages, [("Lead", utc(6, 10))]),
        # Done activity 5 days ago: not stalled.
        "S2": deal_with_history(member, stages, [("Lead", utc(6, 10))]),
        # Planned activity due after NOW: exempt.
        "S3": deal_with_history(member, stages, [("Lead", utc(6, 10))]),
        # A planned activity that was due before NOW and not done is no touch: stalled.
        "S4": deal_with_history(member, stages, [("Lead", utc(6, 10))]),
        # 10 days in Qualified, threshold 14: not stalled.
        "S5": deal_with_history(member, stages, [("Lead", utc(6, 1)), ("Qualified", utc(6, 20))]),
        # Proposal has no threshold: never stalled.
        "S6": deal_with_history(member, stages, [("Proposal", utc(1, 2))]),
        # Exactly 10 days idle is not longer than 10: not stalled.
        "S7": deal_with_history(member, stages, [("Lead", utc(6, 20))]),
        # Won deals are not open: not stalled.
        "S8": deal_with_history(member, stages, [("Lead", utc(1, 2)), ("Won", utc(2, 1))]),
    }
    add_activity(member, utc(6, 25), deal=deals["S2"])
    add_activity(member, utc(7, 5), deal=deals["S3"], is_done=False)
    add_activity(member, utc(6, 20), deal=deals["S4"], is_done=False)
    return deals


def test_stalled_respects_threshold_and_planned_activity(org, stages, idle_deals):
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        stalled = set(stalled_deals(deals, now=NOW))
        rows = stalled_rows(deals, now=NOW)

    assert stalled == {idle_deals["S1"], idle_deals["S4"]}
    assert [(row.stage.name, row.deal_count, row.base_amount) for row in rows] == [("Lead", 2, Decimal("2000.00"))]


def test_stalled_ignores_touches_after_now(org, stages, idle_deals, member):
    # A move one day after NOW does not count at NOW.
    with scopes_disabled():
        idle_deals["S1"].stage_changes.create(
            organization=org, from_stage=stages["Lead"], to_stage=stages["Qualified"], changed_at=NOW + dt.timedelta(days=1)
        )
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        stalled = set(stalled_deals(deals, now=NOW))

    assert idle_deals["S1"] in stalled
