"""Goal pages open on today's quarter, or on the latest quarter with a won or lost deal when today's has no such deal and no quota."""

import datetime as dt

from django_scopes import scope, scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from goals.selectors import default_goal_period
from goals.views_scorecards import period_choices
from pipelines.models import DealStatus
from spm.fiscal import fiscal_quarter
from tests.attainment_data import deal_create, quota_create, rep_create, stages_create, utc

TODAY = dt.date(2026, 12, 4)


def _org_with_2017_data(org, *, open_deal=False):
    """Give `org` one deal won in 2017-Q2 and, with `open_deal`, one created then and still open."""
    with scopes_disabled():
        stages = stages_create(org)
        anna = rep_create(org, "Anna")
        deal_create(anna, stages, DealStatus.WON, "3000.00", closed_at=utc(5, 2), created_at=utc(4, 2))
        if open_deal:
            deal_create(anna, stages, DealStatus.OPEN, "500.00", created_at=utc(4, 3))
    with scope(organization=org):
        kpi_snapshot_recompute(organization=org)
    return anna


def test_default_is_latest_quarter_with_data(org):
    _org_with_2017_data(org)

    with scope(organization=org):
        period = default_goal_period(org, TODAY)

    assert period == fiscal_quarter(2017, 2, 1)


def test_default_without_data_is_todays_quarter(org):
    with scope(organization=org):
        period = default_goal_period(org, TODAY)

    assert period == fiscal_quarter(2026, 4, 1)


def test_picker_offers_periods_with_data(org):
    _org_with_2017_data(org)

    with scope(organization=org):
        labels = [period.label for period in period_choices(org, TODAY)]

    assert "2017-Q2" in labels
    assert "2026-Q4" in labels
    assert labels.index("2026-Q4") < labels.index("2017-Q2")


def test_leaderboard_page_opens_on_data_quarter(client, org, admin_member):
    _org_with_2017_data(org)
    client.force_login(admin_member.user)

    response = client.get("/o/acme/leaderboard/")

    assert response.status_code == 200
    assert response.context["period"] == fiscal_quarter(2017, 2, 1)


def test_open_deal_keeps_default_on_last_closed_quarter(org):
    # The open deal gives today's quarter KPI rows, but nothing was won or lost in it.
    _org_with_2017_data(org, open_deal=True)

    with scope(organization=org):
        period = default_goal_period(org, TODAY)

    assert period == fiscal_quarter(2017, 2, 1)


def test_quota_for_todays_quarter_keeps_it_default(org):
    anna = _org_with_2017_data(org, open_deal=True)
    with scopes_disabled():
        quota_create(anna, "1000.00", period=fiscal_quarter(2026, 4, 1))

    with scope(organization=org):
        period = default_goal_period(org, TODAY)

    assert period == fiscal_quarter(2026, 4, 1)


def test_leaderboard_with_open_deals_opens_on_data_quarter(client, org, admin_member):
    _org_with_2017_data(org, open_deal=True)
    client.force_login(admin_member.user)

    response = client.get("/o/acme/leaderboard/")

    assert response.context["period"] == fiscal_quarter(2017, 2, 1)
