"""Rebuild the KPI cover indexes as partial indexes over the deals not deleted in the CRM.

Every KPI query filters on `deleted_at IS NULL` since deleted deals left the KPIs. With
that extra column the two cover indexes of 0004 no longer served index-only scans, and the
planner fell back to bitmap heap scans. A partial index whose predicate matches the query's
keeps the scans index-only. SQLite keeps the plain key indexes of 0004.
"""

from django.db import migrations

INDEXES = (
    # dashboards.services._closed_by_period and the incremental won/lost statements.
    (
        "dashboards_deal_closed_cover",
        "(organization_id, status, closed_at)",
        " INCLUDE (created_at, base_amount, owner_id, territory_id)",
    ),
    # dashboards.services._open_by_period and the incremental open-count statement.
    (
        "dashboards_deal_created_cover",
        "(organization_id, created_at)",
        " INCLUDE (closed_at, base_amount, owner_id, territory_id)",
    ),
)


def indexes_rebuild(predicate: str):
    def rebuild(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name, columns, include in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
            schema_editor.execute(f"CREATE INDEX {name} ON pipelines_deal {columns}{include}{predicate}")

    return rebuild


class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0004_kpi_query_indexes"),
        ("pipelines", "0006_deal_deleted_at"),
    ]

    operations = [
        migrations.RunPython(indexes_rebuild(" WHERE deleted_at IS NULL"), indexes_rebuild("")),
    ]
