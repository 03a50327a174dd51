"""Per-organization partitions of deals and stage changes (pipelines.partitions), PostgreSQL only.

A new organization's first import loads its partitions without indexes and builds them
afterwards. Its rows must equal those of the merge path that every later import takes.
"""

import pytest
from django.db import IntegrityError, connection, transaction
from django_scopes import scope, scopes_disabled

from pipelines import partitions
from pipelines.importers import bulk
from pipelines.models import Deal, DealStageChange, Stage
from tests.factories import MembershipFactory, OrganizationFactory
from tests.test_import_maven import SMALL_EXPORT, run_import
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


def test_deleted_organization_drops_partitions(db):
    with scopes_disabled():
        organization = OrganizationFactory()
        organization_id = organization.pk
        organization.delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partitions.partition_name("pipelines_deal", organization_id)])
        assert cursor.fetchone()[0] is None


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
