"""Partition deals and stage changes by organization (see pipelines.partitions).

Each organization's deals and stage changes move into its own partitions, which a
trigger on spm_organization creates and drops with the organization. A foreign key
cannot point at a partitioned table unless the key includes organization_id, so the
deal references of activities, win scores, forecast categories and pipeline snapshots
lose theirs (here and in dashboards 0007 and goals 0006). The statement-level triggers
of pipelines.reference_checks check those references instead. SQLite keeps plain tables.

The rows are copied once, so the migration takes time in proportion to the data: about
a minute for a million deals. Going back is not supported.
"""

import django.db.models.deletion
from django.db import migrations, models

from pipelines.partitions import partitioning_install


class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0007_deal_reference_checked"),
        ("goals", "0006_deal_reference_checked"),
        ("pipelines", "0010_importrun_message_data"),
        ("spm", "0008_organization_kpi_recompute_deferred_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="activity",
            name="deal",
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="activities", to="pipelines.deal", verbose_name="deal"),
        ),
        migrations.AlterField(
            model_name="dealscore",
            name="deal",
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name="win_scores", to="pipelines.deal", verbose_name="deal"),
        ),
        migrations.RunPython(partitioning_install),
    ]
