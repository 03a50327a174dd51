"""Drop the foreign key constraint of the deal reference; see pipelines migration 0011."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dashboards', '0006_pipeline_snapshot_stage_optional'),
        ('pipelines', '0010_importrun_message_data'),
    ]

    operations = [
        migrations.AlterField(
            model_name='pipelinesnapshot',
            name='deal',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='pipeline_snapshots', to='pipelines.deal', verbose_name='deal'),
        ),
    ]
