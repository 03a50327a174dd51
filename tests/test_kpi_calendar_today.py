"""KPI snapshots run to the period containing the organization's local today.

Deals open at a period's end count in that period although nothing happened in
it, so the periods after the last creation or close hold the open deals. The
clock is pinned, because the calendar's end depends on it.
"""

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.utils import timezone
from django_scopes import scopes_disabled

from dashboards.models import Grain, KpiSnapshot
from dashboards.selectors import deal_filter_open_at
from dashboards.services import kpi_snapshot_recompute
from dashboards.tasks import kpi_snapshot_calendar_extend_schedule
from pipelines.models import Deal, DealStatus
from spm.fiscal import parse_period
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def pin_now(monkeypatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)


@pytest.fixture
def book(org, monkeypatch):
    """Acme (Europe/Berlin), recomputed on 20 November 2024.

    Ann's deal of 100.00 is open since January 2024 and her 250.00 was won on 1 March.
    Ben's 40.50 is open since 15 March.
    """
    pin_now(monkeypatch, utc(2024, 11, 20, 12))
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org))
        ann = MembershipFactory(organization=org, user__name="Ann")
        ben = MembershipFactory(organization=org, user__name="Ben")
        DealFactory(owner=ann, stage=stage, status=DealStatus.OPEN, created_at=utc(2024, 1, 10, 12), amount=Decimal("100.00"))
        DealFactory(
            owner=ann,
            stage=stage,
            status=DealStatus.WON,
            created_at=utc(2024, 2, 5, 12),
            closed_at=utc(2024, 3, 1, 12),
            amount=Decimal("250.00"),
        )
        DealFactory(owner=ben, stage=stage, status=DealStatus.OPEN, created_at=utc(2024, 3, 15, 12), amount=Decimal("40.50"))
    kpi_snapshot_recompute(organization=org)
    return org


def report(period: str, by: str = "organization") -> list[dict]:
    out = io.StringIO()
    call_command("kpi_report", "--org", "acme", "--period", period, "--by", by, stdout=out)
    return [
        {key: row[key] for key in ("subject", "won_count", "open_count", "open_amount")}
        for row in json.loads(out.getvalue())["rows"]
    ]


def snapshot_rows(organization) -> list[dict]:
    with scopes_disabled():
        rows = KpiSnapshot.objects.filter(organization=organization)
        return sorted(
            (
                {key: value for key, value in model_to_dict(row).items() if key not in ("id", "computed_at")}
                for row in rows
            ),
            key=lambda row: (row["period_kind"], row["period_start"], row["grain"], row["subject_id"]),
        )


def organization_months(organization) -> list[dt.date]:
    with scopes_disabled():
        return sorted(
            KpiSnapshot.objects.filter(organization=organization, grain=Grain.ORGANIZATION, period_kind="month").values_list(
                "period_start", flat=True
            )
        )


@pytest.mark.parametrize(
    ("period", "won_count"), [("2024-Q4", 0), ("2024-10", 0), ("2024-11", 0), ("2024-Q3", 0), ("2024", 1)]
)
def test_running_and_quiet_periods_hold_open_deals(book, period, won_count):
    assert report(period) == [{"subject": "Acme", "won_count": won_count, "open_count": 2, "open_amount": "140.50"}]


def test_running_quarter_by_rep(book):
    assert report("2024-Q4", "rep") == [
        {"subject": "Ann", "won_count": 0, "open_count": 1, "open_amount": "100.00"},
        {"subject": "Ben", "won_count": 0, "open_count": 1, "open_amount": "40.50"},
    ]


def test_open_count_matches_drill_down(book):
    end_utc = parse_period("2024-Q4", 1).utc_bounds(book.tzinfo)[1]
    with scopes_disabled():
        listed = Deal.objects.filter(deal_filter_open_at(end_utc), organization=book).count()

    assert listed == 2


@pytest.mark.parametrize("period", ["2024-12", "2025-Q1", "2025"])
def test_periods_after_today_have_no_rows(book, period):
    assert report(period) == []


def test_calendar_ends_at_todays_month(book):
    assert organization_months(book) == [dt.date(2024, month, 1) for month in range(1, 12)]


def test_today_is_the_organizations_local_date(org, monkeypatch):
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org))
        DealFactory(
            owner=MembershipFactory(organization=org),
            stage=stage,
            status=DealStatus.OPEN,
            created_at=utc(2024, 10, 2, 12),
            amount=Decimal("10.00"),
        )
    # 23:30 UTC on 30 November is 00:30 on 1 December in Berlin.
    pin_now(monkeypatch, utc(2024, 11, 30, 23, 30))

    kpi_snapshot_recompute(organization=org)

    assert organization_months(org) == [dt.date(2024, 10, 1), dt.date(2024, 11, 1), dt.date(2024, 12, 1)]


def test_beat_runs_the_calendar_extension_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["kpi-snapshot-calendar"]

    assert entry["task"] == "dashboards.tasks.kpi_snapshot_calendar_extend_schedule"
    assert entry["schedule"].minute == {10}
    assert entry["schedule"].hour == set(range(24))


def test_scheduled_extension_adds_new_year_like_full(book, monkeypatch):
    pin_now(monkeypatch, utc(2025, 1, 2, 9))

    enqueued = kpi_snapshot_calendar_extend_schedule.delay().get()
    extended = snapshot_rows(book)
    january = report("2025-01")
    kpi_snapshot_recompute(organization=book)

    assert enqueued == 1
    assert january == [{"subject": "Acme", "won_count": 0, "open_count": 2, "open_amount": "140.50"}]
    assert report("2025-Q1") == january
    assert report("2025") == january
    assert report("2024-12") == january
    assert extended == snapshot_rows(book)


def test_dashboard_defaults_to_last_quarter_with_close(client, book, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # Q1 2024 had the last close; Q4 2024, the running quarter, has open deals only.
    assert '<option value="2024-Q1" data-start="2024-01-01" selected>' in content
    assert '<option value="2024-Q4" data-start="2024-10-01">' in content


def test_dashboard_defaults_to_running_quarter_after_close(client, book, admin_member, stage_won_now):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<option value="2024-Q4" data-start="2024-10-01" selected>' in content


@pytest.fixture
def stage_won_now(book):
    """A deal of 10.00 created and won on 1 October 2024, in the running quarter."""
    with scopes_disabled():
        owner = MembershipFactory(organization=book, user__name="Cleo")
        DealFactory(
            owner=owner,
            stage=Deal.objects.filter(organization=book).first().stage,
            status=DealStatus.WON,
            created_at=utc(2024, 10, 1, 9),
            closed_at=utc(2024, 10, 1, 12),
            amount=Decimal("10.00"),
        )
    kpi_snapshot_recompute(organization=book)
