"""Daily pipeline snapshots, the pipeline as of a past date, the period waterfall and slipped deals.

Acme is in Europe/Berlin; every time is 12:00 UTC. Period Q2 2017 =
[2017-04-01, 2017-07-01) local. "Today" is 2017-08-01, so Q2 is over.

Deals (amounts in EUR):
- W1 100: created 03-01, open → start, end.
- W2 200: created 03-01, won 05-01 → start, won.
- W3 400: created 03-05, lost 06-01 → start, lost.
- W4 800: created 04-10, open → created, end.
- W5 1,600: created 04-12, won 06-10 → created, won.
- W6 3,200: created 05-01, lost 07-15 (after Q2) → created, end.
- W7 6,400: created 01-01, won 02-01 → none.
- W8 12,800: created 07-10 → none.
Waterfall (reconstructed, no snapshots): start 3 (700), created 3 (5,600),
won 2 (1,800), lost 1 (400), other exits 0, end 3 (4,100).
Identity: 3 + 3 − 2 − 1 − 0 = 3 and 700 + 5,600 − 1,800 − 400 − 0 = 4,100.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.snapshots import RECONSTRUCTED, SNAPSHOT, pipeline_as_of, pipeline_as_of_deals, snapshot_take
from dashboards.analytics.waterfall import (
    CREATED,
    END,
    LOST,
    OTHER,
    PUSHED_OUT,
    START,
    WON,
    slipped_deals,
    waterfall,
    waterfall_deals,
)
from dashboards.models import PipelineSnapshot
from pipelines.models import DealStatus
from spm.fiscal import parse_period
from tests.analytics_data import deal_with_history, sales_stages, utc

TODAY = dt.date(2017, 8, 1)


@pytest.fixture
def stages(org):
    return sales_stages(org)


@pytest.fixture
def deals(org, member, stages):
    return {
        "W1": deal_with_history(member, stages, [("Lead", utc(3, 1))], amount="100.00"),
        "W2": deal_with_history(member, stages, [("Lead", utc(3, 1)), ("Won", utc(5, 1))], amount="200.00"),
        "W3": deal_with_history(member, stages, [("Lead", utc(3, 5)), ("Lost", utc(6, 1))], amount="400.00"),
        "W4": deal_with_history(member, stages, [("Lead", utc(4, 10))], amount="800.00"),
        "W5": deal_with_history(member, stages, [("Lead", utc(4, 12)), ("Won", utc(6, 10))], amount="1600.00"),
        "W6": deal_with_history(member, stages, [("Lead", utc(5, 1)), ("Lost", utc(7, 15))], amount="3200.00"),
        "W7": deal_with_history(member, stages, [("Lead", utc(1, 1)), ("Won", utc(2, 1))], amount="6400.00"),
        "W8": deal_with_history(member, stages, [("Lead", utc(7, 10))], amount="12800.00"),
    }


@pytest.fixture
def q2(org):
    return Window.of(parse_period("2017-Q2", 1), org)


def read_waterfall(org, window):
    with scope(organization=org):
        return waterfall(deal_universe(organization=org, visible_member_ids=None), window=window, today=TODAY)


def test_waterfall_steps_by_hand(org, deals, q2):
    result = read_waterfall(org, q2)

    assert (result.count(START), result.steps[START].base_amount) == (3, Decimal("700.00"))
    assert (result.count(CREATED), result.steps[CREATED].base_amount) == (3, Decimal("5600.00"))
    assert (result.count(WON), result.steps[WON].base_amount) == (2, Decimal("1800.00"))
    assert (result.count(LOST), result.steps[LOST].base_amount) == (1, Decimal("400.00"))
    assert result.count(OTHER) == 0
    assert (result.count(END), result.steps[END].base_amount) == (3, Decimal("4100.00"))
    assert result.start_from_snapshot is False
    assert result.end_from_snapshot is False


def test_waterfall_identity_holds(org, deals, q2):
    result = read_waterfall(org, q2)

    assert result.count(START) + result.count(CREATED) - result.count(WON) - result.count(LOST) - result.count(
        OTHER
    ) == result.count(END)
    assert result.identity_holds is True


def test_waterfall_other_exit_from_snapshot(org, deals, q2):
    # The snapshot of 04-01 holds W1, W2, W3. W1's creation date is then corrected to
    # after the period: it left the pipeline without being won or lost.
    with scope(organization=org):
        snapshot_take(organization=org, day=dt.date(2017, 4, 1))
    with scopes_disabled():
        deals["W1"].created_at = utc(7, 20)
        deals["W1"].save(update_fields=["created_at"])

    result = read_waterfall(org, q2)

    assert result.start_from_snapshot is True
    assert result.count(START) == 3
    assert result.count(OTHER) == 1
    assert result.count(END) == 2
    assert result.identity_holds is True
    with scope(organization=org):
        other = set(
            waterfall_deals(
                deal_universe(organization=org, visible_member_ids=None), window=q2, today=TODAY, step=OTHER
            )
        )
    assert other == {deals["W1"]}


def test_waterfall_drilldown_counts_match(org, deals, q2):
    result = read_waterfall(org, q2)
    with scope(organization=org):
        universe = deal_universe(organization=org, visible_member_ids=None)
        for step in (START, CREATED, WON, LOST, OTHER, END):
            listed = waterfall_deals(universe, window=q2, today=TODAY, step=step)
            assert listed.count() == result.count(step), step


def test_snapshot_takes_open_deals_at_midnight(org, deals):
    with scope(organization=org):
        inserted = snapshot_take(organization=org, day=dt.date(2017, 4, 1))
        deal_ids = set(PipelineSnapshot.objects.values_list("deal_id", flat=True))

    assert inserted == 3
    assert deal_ids == {deals["W1"].pk, deals["W2"].pk, deals["W3"].pk}


def test_snapshot_is_idempotent_per_day(org, deals):
    with scope(organization=org):
        snapshot_take(organization=org, day=dt.date(2017, 4, 1))
    with scopes_disabled():
        deals["W1"].base_amount = Decimal("999.00")
        deals["W1"].save(update_fields=["base_amount"])
    with scope(organization=org):
        second = snapshot_take(organization=org, day=dt.date(2017, 4, 1))
        rows = PipelineSnapshot.objects.filter(snapshot_on=dt.date(2017, 4, 1))
        count = rows.count()
        w1_amount = rows.get(deal=deals["W1"]).base_amount

    assert second == 0
    assert count == 3
    assert w1_amount == Decimal("100.00")


def test_snapshot_keeps_organizations_apart(org, other_org, deals, other_org_admin):
    with scope(organization=other_org):
        inserted = snapshot_take(organization=other_org, day=dt.date(2017, 4, 1))
    with scopes_disabled():
        count = PipelineSnapshot.objects.count()

    assert inserted == 0
    assert count == 0


def test_pipeline_as_of_reconstructs_before_first_snapshot(org, deals, stages, member):
    # W9 moved Lead → Proposal on 05-20: at the start of 05-01 it was in Lead.
    w9 = deal_with_history(member, stages, [("Lead", utc(4, 20)), ("Proposal", utc(5, 20))], amount="50.00")
    with scope(organization=org):
        universe = deal_universe(organization=org, visible_member_ids=None)
        result = pipeline_as_of(universe, organization=org, day=dt.date(2017, 5, 1))
        lead_deals = set(pipeline_as_of_deals(universe, organization=org, day=dt.date(2017, 5, 1), stage_id=stages["Lead"].pk))

    # Open at the start of 05-01: W1, W2 (won that day at 12:00), W3, W4, W5, W9, all in Lead.
    assert result.source == RECONSTRUCTED
    assert [(row.stage.name, row.deal_count, row.base_amount) for row in result.rows] == [
        ("Lead", 6, Decimal("3150.00"))
    ]
    assert w9 in lead_deals
    assert len(lead_deals) == 6


def test_pipeline_as_of_reads_snapshot(org, deals, stages):
    with scope(organization=org):
        snapshot_take(organization=org, day=dt.date(2017, 4, 1))
    with scopes_disabled():
        deals["W1"].base_amount = Decimal("999.00")
        deals["W1"].save(update_fields=["base_amount"])
    with scope(organization=org):
        result = pipeline_as_of(
            deal_universe(organization=org, visible_member_ids=None), organization=org, day=dt.date(2017, 4, 1)
        )

    assert result.source == SNAPSHOT
    assert [(row.stage.name, row.deal_count, row.base_amount) for row in result.rows] == [
        ("Lead", 3, Decimal("700.00"))
    ]


def test_slipped_needs_expected_close_in_period(org, deals, q2):
    # At the 04-01 snapshot W1 was expected to close on 06-15 and W4 did not exist yet.
    with scopes_disabled():
        deals["W1"].expected_close_on = dt.date(2017, 6, 15)
        deals["W1"].save(update_fields=["expected_close_on"])
        deals["W2"].expected_close_on = dt.date(2017, 5, 20)
        deals["W2"].save(update_fields=["expected_close_on"])
    with scope(organization=org):
        snapshot_take(organization=org, day=dt.date(2017, 4, 1))
    with scopes_disabled():
        deals["W1"].expected_close_on = dt.date(2017, 9, 30)
        deals["W1"].save(update_fields=["expected_close_on"])

    with scope(organization=org):
        universe = deal_universe(organization=org, visible_member_ids=None)
        slipped = set(slipped_deals(universe, window=q2, today=TODAY))
        result = waterfall(universe, window=q2, today=TODAY)

    # W1 slipped to September. W2 was expected in Q2 and won in Q2: not slipped.
    assert slipped == {deals["W1"]}
    assert result.count(PUSHED_OUT) == 1


def test_slipped_in_running_period_needs_a_move_out(org, deals, member, stages):
    running = Window.of(parse_period("2017-Q3", 1), org)
    today = dt.date(2017, 8, 15)
    late = deal_with_history(member, stages, [("Lead", utc(7, 1))], expected_close_on=dt.date(2017, 9, 1))
    kept = deal_with_history(member, stages, [("Lead", utc(7, 2))], expected_close_on=dt.date(2017, 9, 2))
    with scope(organization=org):
        snapshot_take(organization=org, day=dt.date(2017, 8, 1))
    with scopes_disabled():
        late.expected_close_on = dt.date(2017, 10, 15)
        late.save(update_fields=["expected_close_on"])

    with scope(organization=org):
        slipped = set(slipped_deals(deal_universe(organization=org, visible_member_ids=None), window=running, today=today))

    assert slipped == {late}
    assert kept not in slipped
    assert late.status == DealStatus.OPEN
