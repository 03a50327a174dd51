"""Check the references of deals and stage changes once per statement instead of once per row.

A bulk import writes each deal with seven references and each stage change with
four more. PostgreSQL checks a foreign key with one query per row and reference,
which cost about as much as inserting the rows: for 50,000 deals, 2.1 s of checks
against 2.6 s for the insert (2-core machine, PostgreSQL 15, 2026-12-05).
These references now carry no foreign key constraint. On PostgreSQL, statement-level
triggers check them instead, once per INSERT or UPDATE, over the distinct values of
the statement's rows:

- every referenced row must exist and belong to the row's organization, so a deal
  can no longer point at another tenant's stage (a foreign key cannot check that);
- the referenced rows are locked FOR KEY SHARE, as a foreign key check locks them,
  so a concurrent delete waits for this transaction and then fails its own check;
- deleting a referenced row (AFTER DELETE, per statement) fails while a deal or stage
  change still refers to it.

Django still applies `on_delete` (PROTECT, SET_NULL, CASCADE) before it deletes, so the
delete check only stops a raw or racing delete. Updating a referenced row's id or
organization is not checked: the product never changes either. SQLite gets no triggers.
Unused single-column indexes go with the constraints; the composite indexes that
start with organization_id serve the queries.
"""

import django.db.models.deletion
from django.db import migrations, models

from pipelines.reference_checks import checks_create, checks_drop


class Migration(migrations.Migration):

    dependencies = [
        ('goals', '0004_forecasting'),
        ('pipelines', '0007_win_model'),
        ('spm', '0006_audit_retention_days'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='deal',
            name='pipelines_deal_closed',
        ),
        migrations.RemoveIndex(
            model_name='deal',
            name='pipelines_deal_created',
        ),
        migrations.AlterField(
            model_name='deal',
            name='account',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deals', to='pipelines.account', verbose_name='account'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='organization',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, to='spm.organization', verbose_name='organization'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='owner',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='deals', to='spm.membership', verbose_name='owner'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='pipeline',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='deals', to='pipelines.pipeline', verbose_name='pipeline'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='product',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deals', to='pipelines.product', verbose_name='product'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='stage',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='deals', to='pipelines.stage', verbose_name='stage'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='territory',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deals', to='goals.territory', verbose_name='territory'),
        ),
        migrations.AlterField(
            model_name='dealstagechange',
            name='from_stage',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pipelines.stage', verbose_name='from stage'),
        ),
        migrations.AlterField(
            model_name='dealstagechange',
            name='organization',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, to='spm.organization', verbose_name='organization'),
        ),
        migrations.AlterField(
            model_name='dealstagechange',
            name='to_stage',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pipelines.stage', verbose_name='to stage'),
        ),
        migrations.AlterField(
            model_name='dealstagechange',
            name='deal',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='stage_changes', to='pipelines.deal', verbose_name='deal'),
        ),
        migrations.AddIndex(
            model_name='deal',
            index=models.Index(fields=['organization', 'account'], name='pipelines_deal_account'),
        ),
        migrations.RunPython(checks_create, checks_drop),
    ]
