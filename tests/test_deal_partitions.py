"""Per-organization partitions of deals and stage changes (pipelines.partitions), PostgreSQL only.

A new organization's first import loads its partitions without indexes and builds them
afterwards. Its rows must equal those of the merge path that every later import takes.
"""

import datetime as dt
import io
import shutil
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django_scopes import scope, scopes_disabled

from pipelines import partitions
from pipelines.importers import bulk, maven_deals
from pipelines.models import (
    Activity,
    ActivityKind,
    Deal,
    DealStageChange,
    ExchangeRate,
    Stage,
)
from tests.factories import (
    DealFactory,
    DealStageChangeFactory,
    MembershipFactory,
    OrganizationFactory,
)
from tests.test_import_maven import (
    PIPELINE_FILE,
    SMALL_EXPORT,
    append_lines,
    run_import,
)
from tests.test_import_maven_batches import merge_path_force, partition_index_names

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")

DEAL_FIELDS = ("external_id", "name", "owner__external_id", "account__name", "product__name", "stage__name",
               "territory__name", "currency", "amount", "base_amount", "probability", "status", "created_at",
               "expected_close_on", "closed_at", "lost_reason", "deal_source", "custom_fields", "updated_at",
               "deleted_at")  # fmt: skip
MOVE_FIELDS = ("deal__external_id", "from_stage__name", "to_stage__name", "changed_at", "is_implied")


def imported_rows(org) -> tuple[list, list]:
    """Return the organization's deals in id order and its moves in id order, without ids."""
    with scope(organization=org):
        deals = list(Deal.all_objects.order_by("id").values_list(*DEAL_FIELDS))
        moves = list(DealStageChange.all_objects.order_by("id").values_list(*MOVE_FIELDS))
    return deals, moves


def test_organization_gets_partitions(org):
    names = [partitions.partition_name(table, org.pk) for table in partitions.PARTITIONED_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhrelid::regclass::text = ANY(%s) ORDER BY 1",
            [names],
        )
        assert [row[0] for row in cursor.fetchall()] == sorted(names)
    assert len(partition_index_names(org)) == len(partitions.DEAL_INDEXES) + len(partitions.MOVE_INDEXES)


def parent_locks() -> list[tuple[str, str]]:
    """Return the (table, mode) locks this session holds on the partitioned parents."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relation::regclass::text, mode FROM pg_locks WHERE pid = pg_backend_pid()"
            " AND relation = ANY(ARRAY['pipelines_deal'::regclass, 'pipelines_dealstagechange'::regclass])"
            " ORDER BY 1, 2"
        )
        return cursor.fetchall()


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def test_deleted_organization_keeps_partitions_unlocked(db):
    """Deleting an organization takes no lock on the parents that other organizations' queries would wait for."""
    with scopes_disabled():
        organization = OrganizationFactory()
    organization_id = organization.pk
    with transaction.atomic():
        before = parent_locks()
        with scopes_disabled():
            organization.delete()
        after = parent_locks()

    # The modes of reads and row writes; SHARE UPDATE EXCLUSIVE and up would make others wait.
    row_modes = {"AccessShareLock", "RowShareLock", "RowExclusiveLock"}
    assert [lock for lock in after if lock not in before and lock[1] not in row_modes] == []
    assert table_exists(partitions.partition_name("pipelines_deal", organization_id))
    assert table_exists(partitions.partition_name("pipelines_dealstagechange", organization_id))


@pytest.mark.django_db(transaction=True)
def test_orphans_drop_removes_deleted_partitions():
    with scopes_disabled():
        remaining_organization = OrganizationFactory()
        deleted = OrganizationFactory()
        deleted_id = deleted.pk
        deleted.delete()

    dropped = partitions.orphans_drop(connection)

    # Other tests' organizations, removed by the flush after each transactional test, may leave partitions too.
    assert partitions.partition_name("pipelines_deal", deleted_id) in dropped
    assert partitions.partition_name("pipelines_dealstagechange", deleted_id) in dropped
    assert partitions.partition_name("pipelines_deal", remaining_organization.pk) not in dropped
    assert not table_exists(partitions.partition_name("pipelines_deal", deleted_id))
    assert table_exists(partitions.partition_name("pipelines_deal", remaining_organization.pk))
    assert partitions.orphans_drop(connection) == []


@pytest.mark.django_db(transaction=True)
def test_orphans_drop_keeps_partition_with_rows():
    """Rows left by a deleted organization, here with the reference triggers disabled, are not dropped."""
    with scopes_disabled():
        deal = DealFactory()
    organization_id = deal.organization_id
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute("DELETE FROM spm_membership WHERE organization_id = %s", [organization_id])
            cursor.execute("DELETE FROM pipelines_stage WHERE organization_id = %s", [organization_id])
            cursor.execute("DELETE FROM pipelines_pipeline WHERE organization_id = %s", [organization_id])
            cursor.execute("DELETE FROM spm_organization WHERE id = %s", [organization_id])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")

    output = io.StringIO()
    with pytest.raises(CommandError, match="1 partition of a deleted organization still has rows and was kept."):
        call_command("partitions_drop_orphans", "--language", "en", stdout=output)

    deal_partition = partitions.partition_name("pipelines_deal", organization_id)
    # Other tests' organizations, removed by the flush after each transactional test, may leave partitions too.
    assert f"Dropped {partitions.partition_name('pipelines_dealstagechange', organization_id)}" in output.getvalue()
    assert f"Kept {deal_partition}: it still has rows of the deleted organization." in output.getvalue()
    assert table_exists(deal_partition)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE pipelines_deal")


def test_organization_with_leftover_partitions_not_fresh(db):
    """An organization whose id finds its partitions already there (sequence reset) does not count as created."""
    with scopes_disabled():
        organization = OrganizationFactory()
    organization_id = organization.pk
    with scopes_disabled():
        organization.delete()
    with connection.cursor() as cursor:
        # As if the deletion had committed and a new transaction began.
        cursor.execute("SELECT set_config(%s, '', true)", [partitions.CREATED_SETTING])
        with scopes_disabled():
            OrganizationFactory(id=organization_id)

        assert not partitions.created_in_transaction(cursor, organization_id)


def test_partition_delete_keeps_referenced_deal(org):
    """A DELETE that names a deal partition fails while a stage change refers to the deal, as one through the parent does."""
    with scopes_disabled():
        move = DealStageChangeFactory(deal=DealFactory(owner=MembershipFactory(organization=org)))
    partition = partitions.partition_name("pipelines_deal", org.pk)

    with (
        pytest.raises(IntegrityError, match="rows of pipelines_dealstagechange still refer"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {partition} WHERE id = %s", [move.deal_id])


def test_sequence_continue_skips_deleted_ids(db):
    """The migration's new sequence continues after the old one, not after max(id), when the last rows were deleted."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE sequence_old (id bigint GENERATED BY DEFAULT AS IDENTITY, name text)")
        cursor.execute("INSERT INTO sequence_old (name) VALUES ('a'), ('b'), ('c')")
        cursor.execute("DELETE FROM sequence_old WHERE id = 3")
        cursor.execute("SELECT pg_get_serial_sequence('sequence_old', 'id')")
        old_sequence = cursor.fetchone()[0]
        cursor.execute("CREATE TEMPORARY SEQUENCE sequence_new")

        cursor.execute(partitions._sequence_continue_sql("sequence_new", "sequence_old", old_sequence))
        cursor.execute("SELECT nextval('sequence_new')")

        assert cursor.fetchone()[0] == 4


def test_sequence_continue_after_max_id(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE sequence_old (id bigint GENERATED BY DEFAULT AS IDENTITY, name text)")
        cursor.execute("INSERT INTO sequence_old (id, name) VALUES (7, 'a')")
        cursor.execute("SELECT pg_get_serial_sequence('sequence_old', 'id')")
        old_sequence = cursor.fetchone()[0]
        cursor.execute("CREATE TEMPORARY SEQUENCE sequence_new")

        cursor.execute(partitions._sequence_continue_sql("sequence_new", "sequence_old", old_sequence))
        cursor.execute("SELECT nextval('sequence_new')")

        assert cursor.fetchone()[0] == 8


def test_fresh_load_equals_merge(org, other_org, monkeypatch):
    """The first import of a new organization and a merge into an older one write the same rows in the same order."""
    fresh_writes = []
    outcome_finish = bulk._FreshPartitionWriter.outcome_finish

    def outcome_finish_recorded(self):
        fresh_writes.append(self.parameters["organization_id"])
        return outcome_finish(self)

    monkeypatch.setattr(bulk._FreshPartitionWriter, "outcome_finish", outcome_finish_recorded)

    fresh = run_import(org)
    merge_path_force()
    merged = run_import(other_org)

    assert fresh_writes == [org.pk]
    assert fresh.counts["deals"].created == merged.counts["deals"].created == 6
    assert fresh.counts["stage_changes"].created == merged.counts["stage_changes"].created
    assert imported_rows(org) == imported_rows(other_org)
    assert len(partition_index_names(org)) == len(partitions.DEAL_INDEXES) + len(partitions.MOVE_INDEXES)


def test_fresh_load_then_reimport_changes_nothing(org):
    run_import(org)

    again = run_import(org)

    assert again.counts["deals"].created == 0
    assert again.counts["deals"].updated == 0
    assert again.counts["deals"].unchanged == 6


def test_fresh_load_rejects_foreign_stage(org, other_org):
    """The fresh path's reference check fails a stage of another organization, as the triggers would."""
    with scopes_disabled():
        foreign_stage = Stage.objects.filter(organization=other_org).first() or _stage_create(other_org)
    writer = bulk._FreshPartitionWriter(
        connection.connection, {"organization_id": org.pk, "source": "maven", "pipeline_id": 0, "currency": "EUR"}
    )
    writer.references["stage_id"].add(foreign_stage.pk)

    with transaction.atomic(), pytest.raises(IntegrityError, match=f"{foreign_stage.pk} has no row in pipelines_stage"):
        with connection.cursor() as cursor:
            writer._references_check(cursor.cursor)


def _stage_create(organization) -> Stage:
    from pipelines.models import Pipeline

    MembershipFactory(organization=organization)
    pipeline = Pipeline.objects.create(organization=organization, name="Sales")
    return Stage.objects.create(organization=organization, pipeline=pipeline, name="Lead", order=1, probability=10)


def test_import_counts_with_fresh_load(org):
    result = run_import(org)

    with scope(organization=org):
        assert Deal.objects.count() == result.counts["deals"].created
        assert DealStageChange.objects.count() == result.counts["stage_changes"].created
    assert SMALL_EXPORT.exists()


def deal_partition_locks() -> set[tuple[str, str]]:
    """Return the (partition, mode) locks this session holds on deal partitions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relation::regclass::text, mode FROM pg_locks WHERE pid = pg_backend_pid()"
            " AND relation::regclass::text ~ '^pipelines_deal_o[0-9]+$'"
        )
        return set(cursor.fetchall())


def test_reference_check_locks_own_partition(org, other_org):
    """A generic plan would lock every organization's deal partition; the check locks its own only."""
    with scopes_disabled():
        deal = DealFactory(owner=MembershipFactory(organization=org))
        DealFactory(owner=MembershipFactory(organization=other_org))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")

    before = deal_partition_locks()
    with transaction.atomic(), scopes_disabled():
        Activity.objects.create(
            organization=org,
            owner=deal.owner,
            deal=deal,
            source="test",
            external_id="A1",
            kind=ActivityKind.CALL,
            occurred_at=deal.created_at,
        )
    locked = {partition for partition, _mode in deal_partition_locks() - before}

    # The check locks the referenced deal FOR KEY SHARE: RowShareLock on its partition.
    assert locked == {partitions.partition_name("pipelines_deal", org.pk)}


# pg_indexes.indexdef of each partition index without "CREATE ... INDEX <name> ON <partition>
# USING btree", by table and suffix. organization_id is last in every key that the cover
# indexes and the merge key do not fix (see pipelines.partitions).
INDEX_DEFINITIONS = {
    ("pipelines_deal", "pkey"): "UNIQUE (id)",
    ("pipelines_deal", "unique_external"): "UNIQUE (organization_id, source, external_id)",
    ("pipelines_deal", "owner"): "(owner_id, organization_id)",
    ("pipelines_deal", "account"): "(account_id, organization_id)",
    ("pipelines_deal", "closed_at"): "(closed_at, organization_id)",
    ("pipelines_deal", "closed_cover"): "(organization_id, status, closed_at)"
    " INCLUDE (created_at, base_amount, owner_id, territory_id) WHERE (deleted_at IS NULL)",
    ("pipelines_deal", "created_cover"): "(organization_id, created_at)"
    " INCLUDE (closed_at, base_amount, owner_id, territory_id) WHERE (deleted_at IS NULL)",
    ("pipelines_dealstagechange", "pkey"): "UNIQUE (id)",
    ("pipelines_dealstagechange", "unique_move"): "UNIQUE (deal_id, to_stage_id, changed_at, organization_id)",
    ("pipelines_dealstagechange", "changed"): "(changed_at, organization_id)",
}


def table_index_definitions(table: str, relation: str) -> dict[tuple[str, str], str]:
    """Return the indexes of `relation`, a partition or copy of `table`, as in INDEX_DEFINITIONS."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [relation])
        rows = cursor.fetchall()
    definitions = {}
    for name, definition in rows:
        prefix = f"INDEX {name} ON public.{relation} USING btree "
        unique = definition.startswith("CREATE UNIQUE ")
        key = definition.split(prefix, 1)[1]
        definitions[(table, name.removeprefix(f"{relation}_"))] = f"UNIQUE {key}" if unique else key
    return definitions


def index_definitions(organization_id: int) -> dict[tuple[str, str], str]:
    """Return the indexes of the organization's partitions, as in INDEX_DEFINITIONS."""
    definitions = {}
    for table in partitions.PARTITIONED_TABLES:
        definitions |= table_index_definitions(table, partitions.partition_name(table, organization_id))
    return definitions


def test_new_partitions_index_definitions(org):
    assert index_definitions(org.pk) == INDEX_DEFINITIONS


def test_partition_indexes_equal_templates(org):
    """The function that creates an organization's partitions builds the indexes that DEAL_INDEXES and MOVE_INDEXES define."""
    templates = {}
    with connection.cursor() as cursor:
        for table in partitions.PARTITIONED_TABLES:
            copy = f"{table}_template"
            cursor.execute(f"CREATE TABLE {copy} (LIKE {table})")
            for suffix, template in partitions.TABLE_INDEXES[table]:
                cursor.execute(template.format(table=copy, name=f"{copy}_{suffix}"))
            templates |= table_index_definitions(table, copy)

    assert index_definitions(org.pk) == templates


def test_fresh_load_builds_index_definitions(org, monkeypatch):
    """The first import drops and builds the partition indexes again, with the same definitions."""
    built = []
    indexes_build = partitions.indexes_build

    def indexes_build_recorded(cursor, organization_id):
        built.append(organization_id)
        indexes_build(cursor, organization_id)

    monkeypatch.setattr(partitions, "indexes_build", indexes_build_recorded)
    run_import(org)

    assert built == [org.pk]
    assert index_definitions(org.pk) == INDEX_DEFINITIONS


# Fields of a deal that the COPY path and the ORM path must both write. updated_at is left
# out because the ORM path sets it from Python's clock.
COMPARED_DEAL_FIELDS = tuple(name for name in DEAL_FIELDS if name != "updated_at")
# A product and an account whose deal name is longer than its 300 characters, with a
# backslash as the 300th character and a tab, a line break and non-ASCII letters before it.
LONG_PRODUCT = "Über\\Produkt " + "p" * 96
_ACCOUNT_START = "Zürich\tLine\nBreak "
LONG_ACCOUNT = _ACCOUNT_START + "a" * (299 - len(f"{LONG_PRODUCT} · {_ACCOUNT_START}")) + "\\tail"


def deals_and_moves(org) -> tuple[list, list]:
    """Return the organization's deals and moves, sorted by their values."""
    with scope(organization=org):
        deals = sorted(Deal.all_objects.values_list(*COMPARED_DEAL_FIELDS), key=repr)
        moves = sorted(DealStageChange.all_objects.values_list(*MOVE_FIELDS), key=repr)
    return deals, moves


def test_copy_load_equals_orm_path(org, other_org, tmp_path, monkeypatch):
    """Deals staged as COPY text get the values that the ORM path (deal_values, implied_moves) stores."""
    export = shutil.copytree(SMALL_EXPORT, tmp_path / "export")
    append_lines(export, "accounts.csv", f'"{LONG_ACCOUNT}",software,1998,10.00,12,Germany,')
    append_lines(export, "products.csv", f'"{LONG_PRODUCT}",GTX,99.90')
    append_lines(
        export,
        PIPELINE_FILE,
        f'"BACK\\SLASH",Moses Frase,GTX Basic,"{LONG_ACCOUNT}",Won,2017-02-01,2017-04-20,1234.5',
        f'"\\N",Moses Frase,"{LONG_PRODUCT}","{LONG_ACCOUNT}",Engaging,2017-02-02,,',
        f'"PROSP\\.",Moses Frase,GTX Basic,"{LONG_ACCOUNT}",Prospecting,,,',
    )
    with scopes_disabled():
        for organization in (org, other_org):
            ExchangeRate.objects.create(
                organization=organization, currency="USD", valid_from=dt.date(2016, 1, 1), rate=Decimal("0.9")
            )

    copied = run_import(org, export, currency="USD")
    monkeypatch.setattr(maven_deals, "connection", SimpleNamespace(vendor="sqlite"))
    stored = run_import(other_org, export, currency="USD")

    assert copied.errors == stored.errors == []
    assert copied.counts["deals"].created == stored.counts["deals"].created == 9
    copied_deals, copied_moves = deals_and_moves(org)
    stored_deals, stored_moves = deals_and_moves(other_org)
    assert copied_deals == stored_deals
    assert copied_moves == stored_moves
    with scope(organization=org):
        names = set(Deal.objects.filter(external_id__in=["BACK\\SLASH", "\\N", "PROSP\\."]).values_list("name", flat=True))
    assert names == {f"GTX Basic · {LONG_ACCOUNT}", f"{LONG_PRODUCT} · {LONG_ACCOUNT}"[:300]}
    assert f"{LONG_PRODUCT} · {LONG_ACCOUNT}"[299] == "\\"
