"""Plan the reference checks that read a partitioned table for each statement's organization.

With a generic plan, PostgreSQL 15 locked every organization's deal partition and its
indexes for each checked statement (see pipelines.reference_checks._plan_mode_sql).
"""

from django.db import migrations

from pipelines.reference_checks import plan_mode_reset, plan_mode_set


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0012_partitions_kept_on_delete"),
    ]

    operations = [
        migrations.RunPython(plan_mode_set, plan_mode_reset),
    ]
