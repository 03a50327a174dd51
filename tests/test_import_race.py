"""A Maven file import racing an API batch that inserts the same deal (PostgreSQL bulk merge).

The bulk path merges the staged rows with INSERT ... ON CONFLICT DO UPDATE. When another
writer inserts a deal with the same (organization, source, external id) and has not
committed yet, the merge waits on the unique index. Once that writer commits, the merge
must update its row rather than fail with a unique violation. The deal then takes the
path of a deal that existed before, so its fields and implied history come from the
file and its implied moves are not written twice.
"""

import datetime as dt
import shutil
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction
from django_scopes import scope

from pipelines.models import Deal, DealStageChange
from pipelines.services import crm_import
from pipelines.services_records import records_import

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the bulk merge and its row locks exist on PostgreSQL only"
    ),
    # The API batch needs its own connection and a transaction that the import can wait for.
    pytest.mark.django_db(transaction=True),
]

SMALL_EXPORT = Path(__file__).parent / "data" / "maven_small"
PIPELINE_FILE = "sales_pipeline.csv"
TODAY = dt.date(2018, 1, 15)
RACED_KEY = "WON00002"
# Generous, so that a loaded machine does not fail the test. A passing run waits well under a second.
WAIT_TIMEOUT_SECONDS = 60
POLL_INTERVAL_SECONDS = 0.01

# WON00002 as an API client sends it: open in Engaging, with another name and amount than
# the file's won deal, and with fields that the file does not state.
API_DEAL = {
    "external_id": RACED_KEY,
    "name": "Acme expansion",
    "owner": "Anna Snelling",
    "stage": "Engaging",
    "created_at": "2017-02-01T12:00:00Z",
    "amount": "4000.00",
    "product": "GTX Pro",
    "account": "Acme Corporation",
    "probability": 60,
    "deal_source": "Referral",
    "custom_fields": {"crm_region": "DACH"},
}


def noon(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, 12, tzinfo=dt.UTC)


def history(org, external_id: str) -> list[tuple[str | None, str, dt.datetime, bool]]:
    with scope(organization=org):
        changes = (
            DealStageChange.objects.filter(deal__external_id=external_id)
            .select_related("from_stage", "to_stage")
            .order_by("changed_at", "pk")
        )
        return [
            (
                change.from_stage.name if change.from_stage else None,
                change.to_stage.name,
                change.changed_at,
                change.is_implied,
            )
            for change in changes
        ]


def counts_of(result) -> dict[str, tuple[int, int, int, int, int]]:
    return {
        entity: (counts.created, counts.updated, counts.unchanged, counts.deleted, counts.rejected)
        for entity, counts in result.counts.items()
    }


def file_import(org, path: Path):
    with scope(organization=org):
        return crm_import(organization=org, source="maven", path=path, today=TODAY)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class ApiBatchInTransaction(threading.Thread):
    """Send `API_DEAL` through `records_import` on a second connection and commit only once the import waits for it.

    The thread's transaction stays open until the backend `import_pid` is blocked by
    it, and `blocked_query` then contains that backend's statement. The thread fails
    after WAIT_TIMEOUT_SECONDS, or as soon as `import_finished` is set without the
    import having waited. In both cases it rolls back.
    """

    def __init__(self, org, import_pid: int):
        super().__init__(name="api-batch")
        self.org = org
        self.import_pid = import_pid
        self.inserted = threading.Event()
        self.import_finished = threading.Event()
        self.result = None
        self.deal_id: int | None = None
        self.blocked_query: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with scope(organization=self.org), transaction.atomic():
                self.result = records_import(organization=self.org, source="maven", deals=[API_DEAL], label="api")
                self.deal_id = Deal.objects.get(source="maven", external_id=RACED_KEY).pk
                self.inserted.set()
                self.blocked_query = self.import_wait()
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            self.inserted.set()
            # A connection left open would keep pytest-django from dropping the test database.
            connection.close()

    def import_wait(self) -> str:
        """Poll until the import's backend waits for this transaction, and return the statement it waits in."""
        deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
        with connection.cursor() as cursor:
            while True:
                # Within a transaction PostgreSQL (checked on 15) keeps its first read of
                # pg_stat_activity until the snapshot is cleared.
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT query FROM pg_stat_activity"
                    " WHERE pid = %s AND pg_backend_pid() = ANY(pg_blocking_pids(pid))",
                    [self.import_pid],
                )
                row = cursor.fetchone()
                if row is not None:
                    return row[0]
                if self.import_finished.is_set():
                    raise AssertionError("the import finished without waiting for the API batch's transaction")
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the import did not wait for the API batch's transaction within {WAIT_TIMEOUT_SECONDS} s"
                    )
                time.sleep(POLL_INTERVAL_SECONDS)


@pytest.fixture
def exports(tmp_path) -> tuple[Path, Path]:
    """Return (earlier, full) copies of the small export: the pipeline file of `earlier` lists only WON00001 and LOST0001."""
    full = tmp_path / "full"
    shutil.copytree(SMALL_EXPORT, full)
    earlier = tmp_path / "earlier"
    shutil.copytree(SMALL_EXPORT, earlier)
    with (full / PIPELINE_FILE).open(newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    assert lines[1].startswith("WON00001,")
    assert lines[2].startswith("LOST0001,")
    with (earlier / PIPELINE_FILE).open("w", newline="") as handle:
        handle.write("".join(lines[:3]))
    return earlier, full


def test_import_merges_deal_inserted_concurrently(org, exports):
    earlier, full = exports
    file_import(org, earlier)
    api_batch = ApiBatchInTransaction(org, backend_pid())

    api_batch.start()
    try:
        assert api_batch.inserted.wait(WAIT_TIMEOUT_SECONDS), "the API batch did not insert its deal in time"
        if api_batch.error is not None:
            raise api_batch.error
        try:
            result = file_import(org, full)
        finally:
            api_batch.import_finished.set()
    finally:
        api_batch.join(WAIT_TIMEOUT_SECONDS)

    assert api_batch.is_alive() is False
    assert api_batch.error is None
    # The import waited in the merge itself, on the API batch's uncommitted row.
    assert api_batch.blocked_query.lstrip().startswith("INSERT INTO pipelines_deal")
    assert counts_of(api_batch.result)["deals"] == (1, 0, 0, 0, 0)
    assert counts_of(api_batch.result)["stage_changes"] == (1, 0, 0, 0, 0)

    assert result.errors == []
    assert counts_of(result) == {
        "people": (0, 0, 6, 0, 0),
        "teams": (0, 0, 2, 0, 0),
        "territories": (0, 0, 2, 0, 0),
        "accounts": (0, 0, 3, 0, 0),
        "products": (0, 0, 3, 0, 0),
        # Created ENG00001, ENG00002 and PRO00001, updated the API's WON00002, left WON00001 and LOST0001.
        "deals": (3, 1, 2, 0, 0),
        # One move each for the three new deals, and two for WON00002 that replace the API's one.
        "stage_changes": (5, 0, 4, 1, 0),
    }

    with scope(organization=org):
        raced = Deal.objects.select_related("owner", "account", "product", "stage").get(
            source="maven", external_id=RACED_KEY
        )
        assert Deal.objects.filter(external_id=RACED_KEY).count() == 1
        assert Deal.objects.count() == 6
        assert DealStageChange.objects.count() == 9
    assert raced.pk == api_batch.deal_id
    # The fields the file states are the file's.
    assert raced.name == "GTX Pro · Acme Corporation"
    assert raced.owner.external_id == "Anna Snelling"
    assert raced.account.external_id == "Acme Corporation"
    assert raced.product.name == "GTX Pro"
    assert raced.stage.name == "Won"
    assert raced.amount == Decimal("4700.00")
    assert raced.base_amount == Decimal("4700.00")
    assert raced.currency == "EUR"
    assert raced.created_at == noon(2017, 2, 1)
    assert raced.expected_close_on == dt.date(2017, 4, 20)
    # Status and close time come from the implied history.
    assert raced.status == "won"
    assert raced.closed_at == noon(2017, 4, 20)
    # Fields that the file does not state keep the API's values, and custom fields are merged.
    assert raced.probability == 60
    assert raced.deal_source == "Referral"
    assert raced.custom_fields == {"crm_region": "DACH"}
    assert history(org, RACED_KEY) == [
        (None, "Engaging", noon(2017, 2, 1), True),
        ("Engaging", "Won", noon(2017, 4, 20), True),
    ]
    # The merge wrote the moves of the deals it created, once each.
    assert history(org, "ENG00001") == [(None, "Engaging", noon(2017, 6, 10), True)]
    assert history(org, "ENG00002") == [(None, "Engaging", noon(2017, 7, 1), True)]
    assert history(org, "PRO00001") == [(None, "Prospecting", noon(2017, 7, 1), True)]
