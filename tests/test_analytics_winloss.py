"""Win/loss groups, activity types on won deals, and the snapshot tasks.

Q2 2017, Europe/Berlin, times 12:00 UTC. member owns:
- X won 500.00 (product P1), Y won 20,000.00 (P1), Z lost 5,000.00 (no
  product, lost reason "Price").
Product P1: won 2, lost 0, win rate 1; none: won 0, lost 1, win rate 0.
Size bands: under 1,000: X; 1,000 to under 10,000: Z; 10,000 to under
50,000: Y.
Activities (done): X 2 calls + 1 meeting, Y 1 meeting, Z 3 calls + 1 e-mail.
On won deals 4 (call 2, meeting 2); on lost deals 4 (call 3, e-mail 1); all 8.
Meeting: share on won 2/4 = 0.5, share on all 2/8 = 0.25, lift 2 (over-represented).
Call: share on won 2/4 = 0.5, on all 5/8 = 0.625, lift 0.8.
E-mail: share on won 0, lift 0. Task: no activities at all, lift None.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.analytics.activities import activity_mix_rows, activity_universe
from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.winloss import LOST_REASON, PRODUCT, SIZE_BAND, winloss_deals, winloss_rows
from dashboards.models import PipelineSnapshot
from dashboards.tasks import pipeline_snapshot_schedule, pipeline_snapshot_take
from pipelines.models import ActivityKind
from spm.fiscal import parse_period
from tests.analytics_data import add_activity, deal_with_history, sales_stages, utc
from tests.factories import ProductFactory


@pytest.fixture
def closed(org, member):
    stages = sales_stages(org)
    with scopes_disabled():
        product = ProductFactory(organization=org, name="P1")
    deals = {
        "X": deal_with_history(member, stages, [("Lead", utc(4, 1)), ("Won", utc(5, 1))], amount="500.00", product=product),
        "Y": deal_with_history(member, stages, [("Lead", utc(4, 2)), ("Won", utc(5, 2))], amount="20000.00", product=product),
        "Z": deal_with_history(
            member, stages, [("Lead", utc(4, 3)), ("Lost", utc(5, 3))], amount="5000.00", lost_reason="Price"
        ),
    }
    for kind, deal_key, count in (
        (ActivityKind.CALL, "X", 2),
        (ActivityKind.MEETING, "X", 1),
        (ActivityKind.MEETING, "Y", 1),
        (ActivityKind.CALL, "Z", 3),
        (ActivityKind.EMAIL, "Z", 1),
    ):
        for _ in range(count):
            add_activity(member, utc(4, 20), deal=deals[deal_key], kind=kind)
    return deals


@pytest.fixture
def q2(org):
    return Window.of(parse_period("2017-Q2", 1), org)


def test_winloss_by_product(org, closed, q2):
    with scope(organization=org):
        rows = winloss_rows(deal_universe(organization=org, visible_member_ids=None), window=q2, dimension=PRODUCT)

    assert [(row.label, row.won_count, row.lost_count) for row in rows] == [("P1", 2, 0), ("none", 0, 1)]
    assert rows[0].win_rate == Decimal("1")
    assert rows[0].won_amount == Decimal("20500.00")
    assert rows[1].win_rate == Decimal("0")


def test_winloss_by_size_band_and_reason(org, closed, q2):
    with scope(organization=org):
        deals = deal_universe(organization=org, visible_member_ids=None)
        bands = winloss_rows(deals, window=q2, dimension=SIZE_BAND)
        reasons = winloss_rows(deals, window=q2, dimension=LOST_REASON)
        band_two = set(winloss_deals(deals, window=q2, dimension=SIZE_BAND, key="2", status="closed"))

    assert [(row.key, row.won_count, row.lost_count) for row in bands] == [("1", 1, 0), ("2", 0, 1), ("3", 1, 0)]
    assert [(row.label, row.lost_count) for row in reasons] == [("Price", 1)]
    assert band_two == {closed["Z"]}


def test_activity_types_over_represented_on_won(org, closed, q2):
    with scope(organization=org):
        rows = {
            row.kind: row
            for row in activity_mix_rows(
                activity_universe(organization=org, visible_member_ids=None),
                deal_universe(organization=org, visible_member_ids=None),
                window=q2,
            )
        }

    assert rows["meeting"].lift == Decimal("2")
    assert rows["meeting"].is_over_represented is True
    assert rows["call"].lift == Decimal("0.8")
    assert rows["call"].is_over_represented is False
    assert rows["email"].lift == Decimal("0")
    assert rows["task"].lift is None


def test_snapshot_task_runs_once_per_day(org, member):
    stages = sales_stages(org)
    deal_with_history(member, stages, [("Lead", utc(3, 1))])

    backfill = pipeline_snapshot_take.delay(organization_id=org.pk, day="2017-04-01").get()
    first_today = pipeline_snapshot_take.delay(organization_id=org.pk).get()
    second_today = pipeline_snapshot_take.delay(organization_id=org.pk).get()
    with scopes_disabled():
        days = sorted(set(PipelineSnapshot.objects.values_list("snapshot_on", flat=True)))

    assert backfill == 1
    assert first_today == 1
    assert second_today == 0
    assert days[0] == dt.date(2017, 4, 1)
    assert len(days) == 2


def test_snapshot_schedule_enqueues_each_organization(org, other_org):
    assert pipeline_snapshot_schedule.delay().get() == 2
