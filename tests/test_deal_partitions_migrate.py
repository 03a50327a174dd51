"""Going back from the partitioned deal tables (pipelines migrations 0011 to 0013), PostgreSQL only."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")


def applied_pipelines_migrations() -> set[str]:
    return {name for app, name in MigrationRecorder(connection).applied_migrations() if app == "pipelines"}


def function_options(name: str) -> list[str] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = %s", [name])
        return cursor.fetchone()[0]


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
        assert function_options("pipelines_activity_references_check") is None
    finally:
        call_command("migrate", "pipelines", verbosity=0)

    assert "0013_reference_checks_custom_plans" in applied_pipelines_migrations()
    assert function_options("pipelines_activity_references_check") == ["plan_cache_mode=force_custom_plan"]
