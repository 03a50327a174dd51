"""When a KPI recompute bumps the data version that keys cached dashboard fragments.

A worker's recompute commits its own transaction and bumps only after commit,
so no dashboard request renders the old rows under the new version. Inside a
caller's transaction the version is bumped at once as well, so the caller's own
reads before its commit miss the cache.
"""

from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, transaction
from django_scopes import scopes_disabled

from dashboards import services
from pipelines.models import DealStatus
from tests.attainment_data import utc
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def won_deal(member, stages):
    with scopes_disabled():
        return DealFactory(
            owner=member,
            stage=stages[DealStatus.WON],
            status=DealStatus.WON,
            amount=Decimal("100.00"),
            created_at=utc(4, 3),
            closed_at=utc(5, 8),
        )


@pytest.fixture
def bumps():
    """Record, for each data version bump, whether it ran inside a transaction."""
    calls = []
    original = services.kpi_data_version_bump

    def record(*, organization_id):
        calls.append(connection.in_atomic_block)
        return original(organization_id=organization_id)

    with mock.patch.object(services, "kpi_data_version_bump", side_effect=record):
        yield calls


def test_own_transaction_bumps_after_commit_only(org, won_deal, bumps):
    services.kpi_snapshot_recompute(organization=org)

    assert bumps == [False]


def test_incremental_own_transaction_bumps_after_commit_only(org, won_deal, bumps):
    services.kpi_snapshot_recompute(organization=org)
    bumps.clear()

    services.kpi_snapshot_recompute_deals(organization=org, deal_ids=[won_deal.pk], since=utc(5, 1))

    assert bumps == [False]


def test_caller_transaction_bumps_now_and_after_commit(org, won_deal, bumps):
    with transaction.atomic():
        services.kpi_snapshot_recompute(organization=org)
        assert bumps == [True]

    assert bumps == [True, False]
