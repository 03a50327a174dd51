"""A sync from the fake HubSpot server keeps the dashboard current after a deal changes there.

Scenario (organization Acme, Europe/Berlin, EUR), HubSpot pipeline "Sales Pipeline":

| deal  | owner       | created (UTC)    | history                                   | amount |
| Alpha | Hanna Huber | 2025-01-06 09:00 | Qualified 01-10, Closed won 2025-02-03 10:00 | 1000   |
| Beta  | Jonas Keller| 2025-01-08 09:00 | Contract sent 2025-01-20                  | 2500   |
| Gamma | Hanna Huber | 2025-01-09 09:00 | Closed lost 2025-02-05 09:00              | 400.50 |

February 2025 after the first sync: won 1 deal for 1,000.00, lost 1 for 400.50, win rate
1/2. Then Beta is won in HubSpot on 2025-02-10: after the scheduled sync, February shows
2 won deals for 3,500.00 and a win rate of 2/3.
"""

import datetime as dt
import time
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot, PeriodKind
from integrations.sync.models import CrmConnection, CrmSyncRun, SyncStatus
from integrations.sync.tasks import crm_sync_schedule
from pipelines.models import Deal
from tests.fake_crm import (
    fixture_connection,  # noqa: F401 (pytest fixture, requested by name)
    fixture_server,  # noqa: F401 (pytest fixture, requested by name)
    hubspot_demo_deals,
    utc,
)
from tests.test_dashboard_views import tile

FEBRUARY = dt.date(2025, 2, 1)
WORKER_WAIT_SECONDS = 120


@pytest.fixture
def fake():
    return hubspot_demo_deals()


def february(org) -> KpiSnapshot:
    with scopes_disabled():
        return KpiSnapshot.objects.get(
            organization=org, grain=Grain.ORGANIZATION, period_kind=PeriodKind.MONTH, period_start=FEBRUARY
        )


def scheduled_sync(django_capture_on_commit_callbacks) -> None:
    """Run the beat job eagerly; the sync task and the KPI recompute it schedules run after commit."""
    with django_capture_on_commit_callbacks(execute=True):
        crm_sync_schedule.delay()


def test_dashboard_follows_deal_won_in_hubspot(
    client, org, admin_member, connection, fake, django_capture_on_commit_callbacks
):
    client.force_login(admin_member.user)
    scheduled_sync(django_capture_on_commit_callbacks)

    before = february(org)
    assert (before.won_count, before.won_amount) == (1, Decimal("1000.00"))
    assert (before.lost_count, before.lost_amount) == (1, Decimal("400.50"))
    content = client.get("/o/acme/dashboard/?period=2025-02").content.decode()
    assert tile(content, "won_count") == "1"
    assert tile(content, "won_amount") == "€1,000.00"
    assert tile(content, "win_rate") == "50.0%"

    fake.move_deal("2", "closedwon", utc(2025, 2, 10, 9))
    scheduled_sync(django_capture_on_commit_callbacks)

    after = february(org)
    assert (after.won_count, after.won_amount) == (2, Decimal("3500.00"))
    assert (after.lost_count, after.lost_amount) == (1, Decimal("400.50"))
    content = client.get("/o/acme/dashboard/?period=2025-02").content.decode()
    assert tile(content, "won_count") == "2"
    assert tile(content, "won_amount") == "€3,500.00"
    assert tile(content, "win_rate") == "66.7%"
    with scopes_disabled():
        runs = list(CrmSyncRun.objects.order_by("pk").values_list("trigger", "status"))
    assert runs == [("schedule", SyncStatus.SUCCEEDED), ("schedule", SyncStatus.SUCCEEDED)]


def test_schedule_skips_connection_without_pipelines(org, connection, django_capture_on_commit_callbacks):
    with scopes_disabled():
        CrmConnection.objects.filter(pk=connection.pk).update(pipeline_ids=[])

    with django_capture_on_commit_callbacks(execute=True):
        queued = crm_sync_schedule.delay().get()

    assert queued == 0
    with scopes_disabled():
        assert CrmSyncRun.objects.count() == 0


def test_schedule_skips_disabled_and_busy_connections(
    org, other_org, connection, server, django_capture_on_commit_callbacks
):
    with scopes_disabled():
        CrmConnection.objects.create(
            organization=other_org,
            provider="hubspot",
            base_url=server.base_url,
            access_token="x",
            pipeline_ids=["default"],
            is_enabled=False,
        )
        CrmConnection.objects.filter(pk=connection.pk).update(
            status=SyncStatus.RUNNING, last_run_at=dt.datetime.now(dt.timezone.utc)
        )

    queued = crm_sync_schedule.delay().get()

    assert queued == 0


@pytest.mark.worker
def test_worker_sync_updates_dashboard(celery_worker, org, connection, fake):
    """The same change through Redis and a real worker: the beat job, the sync run and the KPI recompute."""
    crm_sync_schedule.delay().get(timeout=WORKER_WAIT_SECONDS)
    first = _wait_for_snapshot(org, won_count=1)
    assert first.won_amount == Decimal("1000.00")

    fake.move_deal("2", "closedwon", utc(2025, 2, 10, 9))
    _wait_until_idle(connection)
    crm_sync_schedule.delay().get(timeout=WORKER_WAIT_SECONDS)
    second = _wait_for_snapshot(org, won_count=2)

    assert second.won_amount == Decimal("3500.00")
    assert (second.lost_count, second.lost_amount) == (1, Decimal("400.50"))
    with scope(organization=org):
        assert Deal.objects.get(external_id="2").closed_at == utc(2025, 2, 10, 9)


def _wait_until_idle(connection) -> None:
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while True:
        with scopes_disabled():
            status = CrmConnection.objects.get(pk=connection.pk).status
        if status not in (SyncStatus.QUEUED, SyncStatus.RUNNING):
            return
        assert time.monotonic() < deadline, f"sync still {status} after {WORKER_WAIT_SECONDS} s"
        time.sleep(0.2)


def _wait_for_snapshot(org, *, won_count: int) -> KpiSnapshot:
    """Wait until the worker's recompute wrote February with `won_count` won deals, and return the row."""
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while True:
        try:
            snapshot = february(org)
        except KpiSnapshot.DoesNotExist:
            snapshot = None
        if snapshot is not None and snapshot.won_count == won_count:
            return snapshot
        assert time.monotonic() < deadline, (
            f"February snapshot not at {won_count} won deals after {WORKER_WAIT_SECONDS} s"
        )
        time.sleep(0.2)
