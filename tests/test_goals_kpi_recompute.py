"""Goals writes that move KPI credit schedule the organization's KPI recompute.

Team snapshots credit a deal to its owner's current team, so a team move changes them, and a
new fiscal calendar moves every period. Each schedule also bumps the deal data version.
"""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot, PeriodKind
from dashboards.services import kpi_snapshot_recompute
from goals import services
from goals.imports import people_import
from pipelines.models import DealStatus
from tests.attainment_data import utc
from tests.factories import DealFactory, TeamFactory, TerritoryFactory

MOVE_DAY = dt.date(2017, 10, 1)
TODAY = dt.date(2026, 12, 5)


@pytest.fixture
def south(org):
    with scopes_disabled():
        return TeamFactory(organization=org, name="South")


@pytest.fixture
def won_deal(org, member, stages):
    """A deal that the North rep won in 2017-Q4, with snapshots computed while the rep was in North."""
    with scopes_disabled():
        deal = DealFactory(
            owner=member,
            stage=stages[DealStatus.WON],
            status=DealStatus.WON,
            amount=Decimal("1000.00"),
            created_at=utc(10, 2),
            closed_at=utc(11, 15),
        )
    kpi_snapshot_recompute(organization=org)
    return deal


def team_year_won(org) -> dict[int, Decimal]:
    with scopes_disabled():
        rows = KpiSnapshot.objects.filter(
            organization=org, grain=Grain.TEAM, period_kind=PeriodKind.YEAR, period_start=dt.date(2017, 1, 1)
        )
        return {row.subject_id: row.won_amount for row in rows if row.won_amount}


def test_team_move_recomputes_team_snapshots(org, team, member, south, won_deal, django_capture_on_commit_callbacks):
    assert team_year_won(org) == {team.pk: Decimal("1000.00")}

    with scope(organization=org), django_capture_on_commit_callbacks(execute=True):
        services.assignment_change(
            membership=member, actor=None, team=south, territory=member.territory, valid_from=MOVE_DAY, today=TODAY
        )

    assert team_year_won(org) == {south.pk: Decimal("1000.00")}


def test_territory_move_schedules_recompute(org, member, django_capture_on_commit_callbacks):
    with scopes_disabled():
        bavaria = TerritoryFactory(organization=org, name="Bavaria")

    with (
        scope(organization=org),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute.delay") as delay,
        mock.patch("dashboards.services.deal_data_version_bump") as bump,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.assignment_change(
            membership=member, actor=None, team=member.team, territory=bavaria, valid_from=MOVE_DAY, today=TODAY
        )

    delay.assert_called_once_with(organization_id=org.pk)
    bump.assert_called_once_with(organization_id=org.pk)


def test_unchanged_assignment_schedules_nothing(org, member, django_capture_on_commit_callbacks):
    with (
        scope(organization=org),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute.delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        result = services.assignment_change(
            membership=member, actor=None, team=member.team, territory=member.territory, valid_from=MOVE_DAY, today=TODAY
        )

    assert result is None
    assert callbacks == []
    delay.assert_not_called()


def test_fiscal_calendar_change_bumps_deal_data_version(org, django_capture_on_commit_callbacks):
    with (
        scope(organization=org),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute.delay") as delay,
        mock.patch("dashboards.services.deal_data_version_bump") as bump,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.organization_settings_update(organization=org, actor=None, changes={"fiscal_year_start_month": 4})

    delay.assert_called_once_with(organization_id=org.pk)
    bump.assert_called_once_with(organization_id=org.pk)


def test_people_upload_moves_schedule_one_recompute(org, member, other_rep, django_capture_on_commit_callbacks):
    text = "name,email,team\n,rep@acme.example,South\n,rep2@acme.example,South\n"

    with (
        scope(organization=org),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv", today=TODAY)

    assert (result.updated, result.rejected) == (2, 0)
    delay.assert_called_once_with(organization_id=org.pk)
