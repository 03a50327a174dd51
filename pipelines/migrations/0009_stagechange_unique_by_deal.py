"""Key the unique move index by deal instead of organization and deal, and drop the deal index.

The deal implies the organization, so (deal, to_stage, changed_at) enforces the same
rule, and with the deal first the index also serves every lookup by deal. Each stage
change then maintains three indexes instead of four: inserting the 184,958 implied
moves of a 100,000-deal import took 1.53 s instead of 1.98 s with the 1M-deal bench
tenant loaded (2-core machine, PostgreSQL 15, 2026-12-05, one run each).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pipelines', '0008_statement_reference_checks'),
        ('spm', '0006_audit_retention_days'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='dealstagechange',
            name='pipelines_stagechange_unique_move',
        ),
        migrations.AlterField(
            model_name='dealstagechange',
            name='deal',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='stage_changes', to='pipelines.deal', verbose_name='deal'),
        ),
        migrations.AddConstraint(
            model_name='dealstagechange',
            constraint=models.UniqueConstraint(fields=('deal', 'to_stage', 'changed_at'), name='pipelines_stagechange_unique_move'),
        ),
    ]
