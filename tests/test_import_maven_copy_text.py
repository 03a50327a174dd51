"""Maven deal values with the characters that COPY's text format escapes: backslash, tab, newline, carriage return.

On PostgreSQL the staged rows reach the database as lines of COPY's text format
(pipelines.importers.bulk), so these values must arrive unchanged, and a text that
reads like COPY's NULL marker stays a text.
"""

import shutil
import sys
from decimal import Decimal

import pytest
from django.db import connection
from django_scopes import scope

from pipelines.importers import bulk
from pipelines.models import Deal
from tests.test_import_maven import (
    PIPELINE_FILE,
    SMALL_EXPORT,
    append_lines,
    run_import,
)
from tests.test_import_maven_batches import merge_path_force

# Each opportunity id is quoted in the CSV, so it may hold a tab, a line break or a quote.
ODD_IDS = ["BACK\\SLASH", "TAB\tID", "LINE\nBREAK", "RETURN\rID", "\\N", "QUOTE\"ID"]


@pytest.fixture
def export(tmp_path):
    return shutil.copytree(SMALL_EXPORT, tmp_path / "export")


def test_copy_text_escapes():
    assert bulk.copy_text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert bulk.copy_text("\\N") == "\\\\N"
    assert bulk.copy_text("Acme · GmbH") == "Acme · GmbH"


def odd_rows_append(folder) -> None:
    lines = []
    for index, external_id in enumerate(ODD_IDS):
        quoted = '"' + external_id.replace('"', '""') + '"'
        lines.append(f"{quoted},Zane Levy,GTX Basic,\"Tab\tCorp\",Won,2017-02-0{index + 1},2017-04-20,1234.50")
    append_lines(folder, PIPELINE_FILE, *lines)
    append_lines(folder, "accounts.csv", '"Tab\tCorp",software,1998,10.00,12,Germany,')


def odd_deals(org) -> dict[str, tuple[str, Decimal, Decimal]]:
    with scope(organization=org):
        deals = Deal.objects.filter(external_id__in=ODD_IDS)
        return {deal.external_id: (deal.name, deal.amount, deal.base_amount) for deal in deals}


@pytest.mark.parametrize("merge", [False, True], ids=["new-organization", "merge"])
def test_escaped_values_stored_unchanged(org, export, merge):
    odd_rows_append(export)
    if merge:
        if connection.vendor != "postgresql":
            pytest.skip("the merge path exists on PostgreSQL only")
        merge_path_force()

    result = run_import(org, export)

    assert result.errors == []
    assert odd_deals(org) == {
        external_id: ("GTX Basic · Tab\tCorp", Decimal("1234.50"), Decimal("1234.50")) for external_id in ODD_IDS
    }


def test_escaped_values_rerun_unchanged(org, export):
    odd_rows_append(export)
    run_import(org, export)

    result = run_import(org, export)

    assert result.errors == []
    assert result.counts["deals"].unchanged == 6 + len(ODD_IDS)
    assert result.counts["deals"].created == 0
    assert result.counts["deals"].updated == 0


def test_switch_interval_overlapping_loads_restore():
    """Two imports in threads of one process whose loads overlap, and that finish in the order they started."""
    original = sys.getswitchinterval()
    first = bulk._switch_interval(bulk.WRITER_SWITCH_INTERVAL)
    second = bulk._switch_interval(bulk.WRITER_SWITCH_INTERVAL)
    try:
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)

        # The interval is stored in whole microseconds, so it reads back as 9.999999999999999e-05.
        assert sys.getswitchinterval() == pytest.approx(bulk.WRITER_SWITCH_INTERVAL, rel=1e-9)

        second.__exit__(None, None, None)

        assert sys.getswitchinterval() == pytest.approx(original, rel=1e-9)
    finally:
        sys.setswitchinterval(original)


def test_switch_interval_restored_on_error():
    original = sys.getswitchinterval()

    with pytest.raises(ValueError, match="^failed$"), bulk._switch_interval(bulk.WRITER_SWITCH_INTERVAL):
        raise ValueError("failed")

    assert sys.getswitchinterval() == pytest.approx(original, rel=1e-9)
