"""Migrations of the partitioned deal tables (pipelines migrations 0011 to 0014)."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.recorder import MigrationRecorder
from django_scopes import scopes_disabled

from tests.factories import OrganizationFactory
from tests.test_deal_partitions import INDEX_DEFINITIONS, index_definitions

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")

# The partition indexes that migration 0014 changed, as migration 0013 left them.
INDEX_DEFINITIONS_0013 = INDEX_DEFINITIONS | {
    ("pipelines_deal", "owner"): "(organization_id, owner_id)",
    ("pipelines_deal", "account"): "(organization_id, account_id)",
    ("pipelines_deal", "closed_at"): "(organization_id, closed_at)",
    ("pipelines_dealstagechange", "unique_move"): "UNIQUE (organization_id, deal_id, to_stage_id, changed_at)",
    ("pipelines_dealstagechange", "deal"): "(deal_id)",
    ("pipelines_dealstagechange", "changed"): "(organization_id, changed_at)",
}


def applied_pipelines_migrations() -> set[str]:
    return {name for app, name in MigrationRecorder(connection).applied_migrations() if app == "pipelines"}


def function_options(name: str) -> list[str] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = %s", [name])
        return cursor.fetchone()[0]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_backward_migration_stops_before_0012():
    """The failed backward migration records only what it undid: 0013, whose plan option it reset."""
    try:
        with pytest.raises(IrreversibleError, match="0012_partitions_kept_on_delete"):
            call_command("migrate", "pipelines", "0010", verbosity=0)

        applied = applied_pipelines_migrations()
        assert "0011_deal_partitions" in applied
        assert "0012_partitions_kept_on_delete" in applied
        assert "0013_reference_checks_custom_plans" not in applied
        assert "0014_partition_index_keys" not in applied
        assert function_options("pipelines_activity_references_check") is None
    finally:
        call_command("migrate", "pipelines", verbosity=0)

    assert "0013_reference_checks_custom_plans" in applied_pipelines_migrations()
    assert function_options("pipelines_activity_references_check") == ["plan_cache_mode=force_custom_plan"]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_migration_0014_rebuilds_partition_indexes():
    """Going back to 0013 and forward again rebuilds every partition's indexes, and new organizations get them too."""
    with scopes_disabled():
        existing = OrganizationFactory(slug="existing")
    try:
        call_command("migrate", "pipelines", "0013", verbosity=0)
        with scopes_disabled():
            created_at_0013 = OrganizationFactory(slug="created-at-0013")

        assert index_definitions(existing.pk) == INDEX_DEFINITIONS_0013
        assert index_definitions(created_at_0013.pk) == INDEX_DEFINITIONS_0013
    finally:
        call_command("migrate", "pipelines", verbosity=0)
    with scopes_disabled():
        created_at_0014 = OrganizationFactory(slug="created-at-0014")

    assert index_definitions(existing.pk) == INDEX_DEFINITIONS
    assert index_definitions(created_at_0013.pk) == INDEX_DEFINITIONS
    assert index_definitions(created_at_0014.pk) == INDEX_DEFINITIONS


def meta_index_columns() -> dict[str, list[str]]:
    """Return the columns of the Meta indexes and constraints that migration 0014 changed, by name."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "pipelines_deal")
        constraints |= connection.introspection.get_constraints(cursor, "pipelines_dealstagechange")
    names = ("pipelines_deal_owner", "pipelines_deal_account", "pipelines_stagechange_unique_move",
             "pipelines_stagechange_changed")  # fmt: skip
    return {name: constraints[name]["columns"] for name in names}


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL has the partition indexes instead")
@pytest.mark.django_db(transaction=True)
def test_migration_0014_changes_sqlite_indexes():
    try:
        call_command("migrate", "pipelines", "0013", verbosity=0)

        assert meta_index_columns() == {
            "pipelines_deal_owner": ["organization_id", "owner_id"],
            "pipelines_deal_account": ["organization_id", "account_id"],
            "pipelines_stagechange_unique_move": ["organization_id", "deal_id", "to_stage_id", "changed_at"],
            "pipelines_stagechange_changed": ["organization_id", "changed_at"],
        }
    finally:
        call_command("migrate", "pipelines", verbosity=0)

    assert meta_index_columns() == {
        "pipelines_deal_owner": ["owner_id", "organization_id"],
        "pipelines_deal_account": ["account_id", "organization_id"],
        "pipelines_stagechange_unique_move": ["deal_id", "to_stage_id", "changed_at", "organization_id"],
        "pipelines_stagechange_changed": ["changed_at", "organization_id"],
    }
