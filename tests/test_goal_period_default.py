"""Goal pages default to the latest quarter with data when today's quarter has none."""

import datetime as dt

from django_scopes import scope, scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from goals.views_scorecards import default_goal_period, period_choices
from pipelines.models import DealStatus
from spm.fiscal import fiscal_quarter
from tests.attainment_data import deal_create, rep_create, stages_create, utc

TODAY = dt.date(2026, 12, 4)


def _org_with_2017_data(org):
    with scopes_disabled():
        stages = stages_create(org)
        anna = rep_create(org, "Anna")
        deal_create(anna, stages, DealStatus.WON, "3000.00", closed_at=utc(5, 2), created_at=utc(4, 2))
    with scope(organization=org):
        kpi_snapshot_recompute(organization=org)


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
