"""Indexes on pipelines_deal that the KPI recompute queries need.

They are created with SQL rather than declared on the Deal model, because they
serve the KPI engine in this app, and PostgreSQL's INCLUDE columns have no
SQLite equivalent. SQLite gets the plain key columns. Each index starts with
organization_id, like every index on a tenant-owned table.
"""

from django.db import migrations

INDEXES = (
    # dashboards.services._calendar_build: MIN/MAX(closed_at) from the index ends instead of a
    # scan; the incremental recompute's "left since X" filter (closed_at >= X).
    ("dashboards_deal_closed_at", "(organization_id, closed_at)", ""),
    # dashboards.services._closed_by_period: won and lost deals of the touched periods read from
    # the index alone (index-only scan), with the columns that the sums, medians and subject
    # filters need.
    (
        "dashboards_deal_closed_cover",
        "(organization_id, status, closed_at)",
        " INCLUDE (created_at, base_amount, owner_id, territory_id)",
    ),
    # dashboards.services._open_by_period: deals created since the first touched month, per
    # subject and amount, from the index alone.
    (
        "dashboards_deal_created_cover",
        "(organization_id, created_at)",
        " INCLUDE (closed_at, base_amount, owner_id, territory_id)",
    ),
)


def indexes_create(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for name, columns, include in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON pipelines_deal {columns}{include if postgresql else ''}"
        )


def indexes_drop(apps, schema_editor):
    for name, _columns, _include in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0003_pipeline_snapshot"),
        ("pipelines", "0003_stage_stall_activity_fields"),
    ]

    operations = [migrations.RunPython(indexes_create, indexes_drop)]
