"""KPI recompute end to end: test process → Redis → a real Celery worker → PostgreSQL.

The `celery_worker` fixture (tests/conftest.py) starts the worker on the test
database; these tests skip without PostgreSQL and a reachable broker.

Scenario (organization Acme, Europe/Berlin, fiscal year = calendar year), all
deals owned by one rep of team North, no territory:

| deal | status | created (UTC)    | closed (UTC)     | base amount | cycle days |
| A    | won    | 2017-01-10 12:00 | 2017-02-14 12:00 | 1000.00     | 35         |
| B    | won    | 2017-01-20 12:00 | 2017-02-04 12:00 | 2500.50     | 15         |
| C    | lost   | 2017-01-05 12:00 | 2017-02-10 12:00 | 400.00      | –          |
| D    | open   | 2017-02-01 12:00 | –                | 750.25      | –          |

The snapshot calendar runs from January 2017 to the period containing today, and D
stays open, so the recompute writes every month, quarter and fiscal year from
January 2017 to today's for the organization, team and rep grains.
At the end of January (2017-01-31 23:00 UTC) A, B and C are open; from
February on only D is.
"""

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from dashboards.models import Grain, KpiSnapshot, PeriodKind
from dashboards.tasks import kpi_snapshot_recompute
from pipelines.models import DealStatus, StageKind
from spm.celery import app as celery_app
from spm.fiscal import MONTH, QUARTER, YEAR, periods_covering
from tests.factories import DealFactory, PipelineFactory, StageFactory

pytestmark = pytest.mark.worker

RESULT_TIMEOUT_SECONDS = 120
LOG_WAIT_SECONDS = 10


def utc(year, month, day, hour=12):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


@pytest.fixture
def deals(celery_worker, org, member):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        engaging = StageFactory(pipeline=pipeline, name="Engaging", order=1, kind=StageKind.OPEN)
        won = StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON, probability=100)
        lost = StageFactory(pipeline=pipeline, name="Lost", order=3, kind=StageKind.LOST, probability=0)
        common = {"owner": member, "source": "worker-test"}
        return {
            "A": DealFactory(
                **common, stage=won, status=DealStatus.WON, amount=Decimal("1000.00"),
                created_at=utc(2017, 1, 10), closed_at=utc(2017, 2, 14),
            ),
            "B": DealFactory(
                **common, stage=won, status=DealStatus.WON, amount=Decimal("2500.50"),
                created_at=utc(2017, 1, 20), closed_at=utc(2017, 2, 4),
            ),
            "C": DealFactory(
                **common, stage=lost, status=DealStatus.LOST, amount=Decimal("400.00"),
                created_at=utc(2017, 1, 5), closed_at=utc(2017, 2, 10),
            ),
            "D": DealFactory(
                **common, stage=engaging, status=DealStatus.OPEN, amount=Decimal("750.25"),
                created_at=utc(2017, 2, 1),
            ),
        }  # fmt: skip


def expected_row_count(organization) -> int:
    """Return 3 subjects × the months, quarters and years from January 2017 to the organization's local today."""
    today = timezone.localdate(timezone=organization.tzinfo)
    periods = sum(len(periods_covering(dt.date(2017, 1, 1), today, kind, 1)) for kind in (MONTH, QUARTER, YEAR))
    return 3 * periods


def recompute_through_worker(organization_id: int) -> dict:
    """Send the task through the broker and wait for the worker's result."""
    result = kpi_snapshot_recompute.delay(organization_id=organization_id)
    return result.get(timeout=RESULT_TIMEOUT_SECONDS)


def worker_log_mentions(log_path, text: str) -> bool:
    """Wait up to LOG_WAIT_SECONDS for `text` in the worker's log.

    The worker stores the result before it logs the task's success, so the
    line can appear shortly after `result.get()` returns.
    """
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while text not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def snapshot_rows(organization) -> dict[tuple[str, str, dt.date], tuple]:
    """Map (grain, period kind, period start) to the stored components and the row id."""
    with scopes_disabled():
        snapshots = KpiSnapshot.objects.filter(organization=organization)
        return {
            (row.grain, row.period_kind, row.period_start): (
                row.pk,
                row.subject_id,
                row.won_count,
                row.lost_count,
                row.won_amount,
                row.lost_amount,
                row.cycle_days_sum,
                row.cycle_days_median,
                row.open_count,
                row.open_amount,
            )
            for row in snapshots
        }


def test_recompute_runs_in_worker_process(celery_worker, deals, org):
    result = kpi_snapshot_recompute.delay(organization_id=org.pk)
    summary = result.get(timeout=RESULT_TIMEOUT_SECONDS)

    assert celery_app.conf.task_always_eager is False
    assert result.state == "SUCCESS"
    assert summary["organization_id"] == org.pk
    assert summary["rows_written"] == expected_row_count(org)
    assert summary["rows_deleted"] == 0
    assert worker_log_mentions(celery_worker["log_path"], f"[{result.id}] succeeded")


def test_worker_writes_exact_snapshot_values(deals, org, team, member):
    recompute_through_worker(org.pk)

    rows = snapshot_rows(org)
    assert len(rows) == expected_row_count(org)
    subjects = {Grain.ORGANIZATION: 0, Grain.TEAM: team.pk, Grain.REP: member.pk}
    january = dt.date(2017, 1, 1)
    february = dt.date(2017, 2, 1)
    for grain, subject_id in subjects.items():
        # Nothing closed in January; A, B and C were still open at its end.
        _pk, *january_values = rows[(grain, PeriodKind.MONTH, january)]
        assert january_values == [
            subject_id, 0, 0, Decimal("0"), Decimal("0"), Decimal("0"), None, 3, Decimal("3900.50")
        ]  # fmt: skip
        # A and B won (35 + 15 days, median 25), C lost, D open at the end.
        closed_values = [
            subject_id, 2, 1, Decimal("3500.50"), Decimal("400.00"), Decimal("50"), Decimal("25"), 1, Decimal("750.25")
        ]  # fmt: skip
        for kind, start in ((PeriodKind.MONTH, february), (PeriodKind.QUARTER, january), (PeriodKind.YEAR, january)):
            _pk, *values = rows[(grain, kind, start)]
            assert values == closed_values, (grain, kind)


def test_recompute_twice_keeps_same_rows(deals, org):
    first_summary = recompute_through_worker(org.pk)
    first_rows = snapshot_rows(org)
    second_summary = recompute_through_worker(org.pk)
    second_rows = snapshot_rows(org)

    assert first_summary["rows_written"] == expected_row_count(org)
    assert second_summary["rows_written"] == expected_row_count(org)
    assert second_summary["rows_deleted"] == 0
    assert second_rows == first_rows


def test_recompute_reflects_committed_change(deals, org):
    recompute_through_worker(org.pk)
    with scopes_disabled():
        deal = deals["D"]
        deal.status = DealStatus.WON
        deal.closed_at = utc(2017, 2, 21)
        deal.save(update_fields=["status", "closed_at"])

    recompute_through_worker(org.pk)

    rows = snapshot_rows(org)
    _pk, _subject, won_count, lost_count, won_amount, *_rest, open_count, open_amount = rows[
        (Grain.ORGANIZATION, PeriodKind.MONTH, dt.date(2017, 2, 1))
    ]
    assert won_count == 3
    assert lost_count == 1
    assert won_amount == Decimal("4250.75")
    assert open_count == 0
    assert open_amount == Decimal("0")
