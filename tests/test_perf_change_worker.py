"""A stage move reaches the dashboard through a real worker: incremental recompute, then a new fragment.

Test process → after commit, Redis → Celery worker (`kpi_snapshot_recompute_deals`)
→ PostgreSQL rows and a new data version in the shared Redis cache → the next
dashboard request renders the changed number. Skips without PostgreSQL and a
broker, like tests/test_worker.py. No time is asserted; the loop only bounds
how long the test waits.

Scenario: rep of team North with two deals in 2017, one won (closed 2017-02-14)
and one open (created 2017-02-01). Moving the open deal to Won on 2017-03-10
turns Q1 2017's won count from 1 to 2.
"""

import datetime as dt
import re
import time
from decimal import Decimal

import pytest
from django.db import transaction
from django_scopes import scope, scopes_disabled

from dashboards.models import Grain, KpiSnapshot
from dashboards.services import kpi_snapshot_recompute
from pipelines.models import DealStatus, StageKind
from pipelines.services import deal_move_stage
from tests.factories import DealFactory, DealStageChangeFactory, PipelineFactory, StageFactory

pytestmark = pytest.mark.worker

WAIT_SECONDS = 60


def utc(year, month, day):
    return dt.datetime(year, month, day, 12, tzinfo=dt.timezone.utc)


def won_count_of(html: str) -> str:
    match = re.search(r'data-kpi="won_count">\s*(?:<a [^>]*>)?([^<]+)<', html)
    assert match is not None, "no won_count tile in the fragment"
    return match[1].strip()


@pytest.fixture
def book(celery_worker, org, member):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        engaging = StageFactory(pipeline=pipeline, name="Engaging", order=1, kind=StageKind.OPEN)
        won = StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON, probability=100)
        closed = DealFactory(
            owner=member, pipeline=pipeline, stage=won, status=DealStatus.WON, amount=Decimal("1000.00"),
            created_at=utc(2017, 1, 10), closed_at=utc(2017, 2, 14),
        )  # fmt: skip
        open_deal = DealFactory(
            owner=member, pipeline=pipeline, stage=engaging, status=DealStatus.OPEN, amount=Decimal("500.00"),
            created_at=utc(2017, 2, 1),
        )  # fmt: skip
        DealStageChangeFactory(deal=closed, from_stage=None, to_stage=engaging, changed_at=utc(2017, 1, 10))
        DealStageChangeFactory(deal=closed, from_stage=engaging, to_stage=won, changed_at=utc(2017, 2, 14))
        DealStageChangeFactory(deal=open_deal, from_stage=None, to_stage=engaging, changed_at=utc(2017, 2, 1))
    kpi_snapshot_recompute(organization=org)
    return {"open": open_deal, "won": won}


def test_stage_move_shows_on_dashboard(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1"
    before = client.get(url, HTTP_HX_REQUEST="true").content.decode()

    with scope(organization=org), transaction.atomic():
        deal_move_stage(deal=book["open"], to_stage=book["won"], changed_at=utc(2017, 3, 10))
    deadline = time.monotonic() + WAIT_SECONDS
    after = before
    while won_count_of(after) == won_count_of(before) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = client.get(url, HTTP_HX_REQUEST="true").content.decode()

    assert won_count_of(before) == "1"
    assert won_count_of(after) == "2"
    with scopes_disabled():
        quarter = KpiSnapshot.objects.get(
            organization=org, grain=Grain.ORGANIZATION, period_kind="quarter", period_start=dt.date(2017, 1, 1)
        )
    assert (quarter.won_count, quarter.won_amount, quarter.open_count) == (2, Decimal("1500.00"), 0)
