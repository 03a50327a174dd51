"""Deals deleted in the CRM keep their rows but leave KPIs, lists, drill-downs and stage history.

Scenario (Acme, Q2 2017): the rep won Alpha for 1,000.00 and Beta for 250.00; Beta is
then deleted in the CRM. The Q2 snapshot counts 1 won deal for 1,000.00, the won
drill-down and the deal list show Alpha only, Beta's detail page is a 404, and Beta's
stage changes leave the default manager. `Deal.all_objects` still finds Beta.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot
from dashboards.selectors import deal_list_for_metric
from dashboards.services import kpi_snapshot_recompute
from pipelines.models import Deal, DealStageChange, DealStatus
from spm.fiscal import parse_period
from tests.attainment_data import utc
from tests.factories import DealFactory, DealStageChangeFactory

Q2 = parse_period("2017-Q2", 1)


@pytest.fixture
def deals(org, member, stages):
    with scopes_disabled():
        made = {}
        for name, amount in (("Alpha", "1000.00"), ("Beta", "250.00")):
            deal = DealFactory(
                owner=member,
                name=name,
                stage=stages[DealStatus.WON],
                status=DealStatus.WON,
                amount=Decimal(amount),
                created_at=utc(4, 3),
                closed_at=utc(5, 8),
            )
            DealStageChangeFactory(deal=deal, from_stage=None, to_stage=stages[DealStatus.OPEN], changed_at=utc(4, 3))
            DealStageChangeFactory(
                deal=deal, from_stage=stages[DealStatus.OPEN], to_stage=stages[DealStatus.WON], changed_at=utc(5, 8)
            )
            made[name] = deal
        Deal.all_objects.filter(pk=made["Beta"].pk).update(deleted_at=dt.datetime(2017, 6, 1, tzinfo=dt.timezone.utc))
    return made


def test_deleted_deal_left_out_of_snapshots(org, deals):
    kpi_snapshot_recompute(organization=org)

    with scope(organization=org):
        row = KpiSnapshot.objects.get(period_kind="quarter", period_start=Q2.start, grain=Grain.ORGANIZATION)
    assert row.won_count == 1
    assert row.won_amount == Decimal("1000.00")


def test_deleted_deal_left_out_of_drill_down_and_history(org, deals):
    with scope(organization=org):
        won = deal_list_for_metric(organization=org, period=Q2, metric="won")

        assert [deal.name for deal in won] == ["Alpha"]
        assert set(DealStageChange.objects.values_list("deal__name", flat=True)) == {"Alpha"}
        assert DealStageChange.all_objects.filter(deal=deals["Beta"]).count() == 2
        assert Deal.all_objects.get(name="Beta").deleted_at is not None


def test_deleted_deal_hidden_in_deal_pages(client, org, admin_member, deals):
    client.force_login(admin_member.user)

    listing = client.get("/o/acme/deals/")
    detail = client.get(f"/o/acme/deals/{deals['Beta'].pk}/")

    assert "Alpha" in listing.content.decode()
    assert "Beta" not in listing.content.decode()
    assert detail.status_code == 404
