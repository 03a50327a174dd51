"""The Maven deal import split into batches of two rows.

On PostgreSQL each batch is written by a worker thread while the next one is parsed,
and the Prospecting rows, which have no date, are merged after the last batch. The
outcomes must equal those of one batch, so some single-batch tests run again here.
"""

import threading

import pytest
from django.db import DataError, connection
from django_scopes import scope

from pipelines import partitions
from pipelines.importers import bulk, maven_deals
from pipelines.models import Deal, DealStageChange
from tests.test_import_maven import (  # noqa: F401 - collected again under the batch size below
    PIPELINE_FILE,
    export,
    replace_line,
    run_import,
    test_changed_row_updates_only_that_deal,
    test_duplicate_row_keeps_first,
    test_earlier_import_resolves_names,
    test_prospecting_dated_at_export_end,
    test_rerun_changes_nothing,
    test_rewrite_keeps_recorded_moves,
    test_small_export_counts,
)


@pytest.fixture(autouse=True)
def two_row_batches(monkeypatch):
    monkeypatch.setattr(maven_deals, "ROW_BATCH", 2)


def merge_path_force():
    """Make the import merge, as into an organization created before this transaction (pipelines.partitions)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, '', true)", [partitions.CREATED_SETTING])


def partition_index_names(org) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN (%s, %s) ORDER BY indexname",
            [partitions.partition_name(table, org.pk) for table in partitions.PARTITIONED_TABLES],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the worker thread writes on PostgreSQL only")
def test_failed_batch_rolls_back_import(org, monkeypatch):
    """An error in the worker's second batch reaches the caller as Django's error, and no deal stays."""
    merge_path_force()
    merge = bulk._BatchWriter._merge
    calls = []

    def merge_failing_second(self, cursor, table, keys, created_default):
        calls.append(table)
        if len(calls) == 2:
            cursor.execute("SELECT 1 / 0")
        return merge(self, cursor, table, keys, created_default)

    monkeypatch.setattr(bulk._BatchWriter, "_merge", merge_failing_second)

    with pytest.raises(DataError, match="division by zero"):
        run_import(org)

    assert len(calls) == 2
    with scope(organization=org):
        assert Deal.objects.count() == 0
        assert DealStageChange.objects.count() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the worker thread writes on PostgreSQL only")
def test_failed_batch_reported_over_parser_query(org, export, monkeypatch):
    """The parser's name lookup after a failed batch fails in the aborted transaction; the batch's error is raised."""
    run_import(org, export)
    # Cancity now comes from the earlier import, looked up when the third batch is parsed.
    replace_line(export, "accounts.csv", "Cancity,retail,2001,718.62,2448,Philipines,\r\n", "")
    (export / PIPELINE_FILE).write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\r\n"
        "LOST0001,Anna Snelling,GTXPro,Codehow,Lost,2017-01-05,2017-03-15,0\r\n"
        "ENG00001,Zane Levy,MG Special,Acme Corporation,Engaging,2017-06-10,,\r\n"
        "ENG00002,Zane Levy,GTX Pro,,Engaging,2017-07-01,,\r\n"
        "PRO00001,Anna Snelling,GTX Basic,,Prospecting,,,\r\n"
        "WON00001,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,588\r\n"
        "WON00002,Anna Snelling,GTXPro,Acme Corporation,Won,2017-02-01,2017-04-20,4700\r\n"
    )
    failed = threading.Event()
    merge = bulk._BatchWriter._merge
    prefetch = maven_deals.DealRowParser.prefetch
    merges, prefetches = [], []

    def merge_failing_second(self, cursor, table, keys, created_default):
        merges.append(keys)
        if len(merges) == 2:
            try:
                cursor.execute("SELECT 1 / 0")
            finally:
                failed.set()
        return merge(self, cursor, table, keys, created_default)

    def prefetch_after_failure(self, batch):
        prefetches.append(batch)
        if len(prefetches) == 3:
            assert failed.wait(timeout=30)
        return prefetch(self, batch)

    monkeypatch.setattr(bulk._BatchWriter, "_merge", merge_failing_second)
    monkeypatch.setattr(maven_deals.DealRowParser, "prefetch", prefetch_after_failure)
    merge_path_force()

    with pytest.raises(DataError, match="division by zero"):
        run_import(org, export)

    assert merges == [["LOST0001", "ENG00001"], ["ENG00002"]]
    assert len(prefetches) == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")
def test_failed_fresh_batch_keeps_partition_indexes(org, monkeypatch):
    """A failed batch of a new organization's load rolls back the dropped indexes with the rows."""
    indexes = partition_index_names(org)
    batch_write = bulk._FreshPartitionWriter.batch_write
    calls = []

    def batch_write_failing_second(self, rows):
        calls.append(rows)
        if len(calls) == 2:
            with self.raw_connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        return batch_write(self, rows)

    monkeypatch.setattr(bulk._FreshPartitionWriter, "batch_write", batch_write_failing_second)

    with pytest.raises(DataError, match="division by zero"):
        run_import(org)

    assert len(calls) == 2
    assert len(indexes) == len(partitions.DEAL_INDEXES) + len(partitions.MOVE_INDEXES)
    assert partition_index_names(org) == indexes
    with scope(organization=org):
        assert Deal.objects.count() == 0
        assert DealStageChange.objects.count() == 0
