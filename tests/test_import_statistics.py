"""Large imports have the tables they wrote analyzed after commit (pipelines.services.table_statistics_refresh_schedule)."""

from pathlib import Path
from unittest import mock

import pytest
from django.db import connection
from django_scopes import scope

from pipelines.models import Deal
from pipelines.importers.base import EntityCounts, ImportResult
from pipelines.services import crm_import, table_statistics_refresh_schedule
from pipelines.tasks import table_statistics_refresh
from tests.test_import_maven import SMALL_EXPORT, TODAY

# The small export by hand: 4 agents and 2 managers (6 people), 2 teams, 2 territories,
# 3 accounts, 3 products, 6 deals, and 9 implied moves (6 first stages, 3 closes).


def import_small(org, path: Path = SMALL_EXPORT):
    with scope(organization=org):
        return crm_import(organization=org, source="maven", path=path, today=TODAY)


@pytest.mark.parametrize(
    ("threshold", "tables"),
    [
        # people (6), deals (6) and stage changes (9) reach 6 rows.
        (6, ["pipelines_deal", "pipelines_dealstagechange", "pipelines_pipeline", "pipelines_stage", "spm_membership", "spm_user"]),
        # Only the 9 stage changes reach 7.
        (7, ["pipelines_dealstagechange"]),
    ],
)
def test_tables_over_threshold_are_scheduled(org, django_capture_on_commit_callbacks, threshold, tables):
    with (
        mock.patch("pipelines.services.STATISTICS_REFRESH_ROWS", threshold),
        mock.patch("pipelines.tasks.table_statistics_refresh.delay") as delay,
        mock.patch("dashboards.tasks.kpi_snapshot_recompute"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        import_small(org)

    delay.assert_called_once_with(tables=tables)


def test_small_import_schedules_no_refresh(org, django_capture_on_commit_callbacks):
    # 9 stage changes are far below the 1,000 rows of the default threshold.
    with mock.patch("pipelines.tasks.table_statistics_refresh.delay") as delay, django_capture_on_commit_callbacks():
        import_small(org)

    delay.assert_not_called()


def test_unchanged_rerun_schedules_no_refresh(org, django_capture_on_commit_callbacks):
    import_small(org)

    with (
        mock.patch("pipelines.services.STATISTICS_REFRESH_ROWS", 1),
        mock.patch("pipelines.tasks.table_statistics_refresh.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        import_small(org)

    delay.assert_not_called()


def test_activities_and_unlisted_entities(db, django_capture_on_commit_callbacks):
    """Pipedrive counts activities, which have their own table; an entity without tables adds none."""
    result = ImportResult(source="pipedrive", path="", currency="EUR")
    result.counts["activities"] = EntityCounts(created=1_000)
    result.counts["notes"] = EntityCounts(created=5_000)

    with (
        mock.patch("pipelines.tasks.table_statistics_refresh.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        table_statistics_refresh_schedule(result)

    delay.assert_called_once_with(tables=["pipelines_activity"])


def test_unknown_table_is_not_analyzed(db):
    assert table_statistics_refresh.apply(kwargs={"tables": ["pipelines_deal; DROP TABLE spm_user", "pipelines_deal"]}).get() == [
        "pipelines_deal"
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads pg_class.reltuples")
def test_refresh_counts_the_imported_deals(org, django_capture_on_commit_callbacks):
    """ANALYZE counts the rows the import added. The planner estimates row counts from pg_class.reltuples."""
    with (
        mock.patch("pipelines.services.STATISTICS_REFRESH_ROWS", 6),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        import_small(org)

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'pipelines_deal'::regclass")
        (estimate,) = cursor.fetchone()
    with scope(organization=org):
        assert Deal.all_objects.count() == 6
    assert estimate == 6
