"""Put organization_id last in the partition indexes that started with it (see pipelines.partitions).

Within a partition organization_id is the same in every row, so as the first key column
it only slowed the index builds of an organization's first import. The unique move key
now starts with deal_id and serves every lookup of the partitions' separate deal_id
index, which goes. Each partition's changed indexes are dropped and built again, under
the same names. With the 1,000,000-deal benchmark tenant (3.1 million moves) and one
organization of 100,000 deals, the migration took 5.5 s (2-core machine, PostgreSQL 15).
The deal queries of every organization wait until it commits.

On PostgreSQL the Meta indexes and constraints of Deal and DealStageChange only describe
the partition indexes, which this migration's RunPython rebuilds. On SQLite the tables are
not partitioned, and the Meta operations change real indexes. SQLite keeps the index of
the deal foreign key, which Django creates there. Going back rebuilds the indexes of
migration 0013.
"""

from django.db import migrations, models
from django.db.migrations.operations.base import Operation

from pipelines.partitions import TABLE_INDEXES, partition_indexes_replace

# The rebuilt indexes and constraints of each partition, by suffix. DEAL_INDEXES and
# MOVE_INDEXES no longer list "deal", so going forward only drops it.
REBUILT = {
    "pipelines_deal": ("owner", "account", "closed_at"),
    "pipelines_dealstagechange": ("unique_move", "deal", "changed"),
}
# The definitions of the rebuilt suffixes as of migration 0013, for going back.
INDEXES_0013 = {
    "pipelines_deal": (
        ("owner", "CREATE INDEX {name} ON {table} (organization_id, owner_id)"),
        ("account", "CREATE INDEX {name} ON {table} (organization_id, account_id)"),
        ("closed_at", "CREATE INDEX {name} ON {table} (organization_id, closed_at)"),
    ),
    "pipelines_dealstagechange": (
        (
            "unique_move",
            "ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE (organization_id, deal_id, to_stage_id, changed_at)",
        ),
        ("deal", "CREATE INDEX {name} ON {table} (deal_id)"),
        ("changed", "CREATE INDEX {name} ON {table} (organization_id, changed_at)"),
    ),
}


def _table_indexes_0013():
    """Return TABLE_INDEXES with the definitions of INDEXES_0013 in place of the current ones."""
    table_indexes = {}
    for table, indexes in TABLE_INDEXES.items():
        old = dict(INDEXES_0013[table])
        current = [(suffix, old.pop(suffix, template)) for suffix, template in indexes]
        table_indexes[table] = tuple(current) + tuple(old.items())
    return table_indexes


def indexes_rebuild(apps, schema_editor):
    partition_indexes_replace(schema_editor, TABLE_INDEXES, REBUILT)


def indexes_rebuild_0013(apps, schema_editor):
    partition_indexes_replace(schema_editor, _table_indexes_0013(), REBUILT)


class NotOnPostgreSQL(Operation):
    """Apply `operation` to the migration state everywhere, and to the database except on PostgreSQL.

    On PostgreSQL the partitions' indexes are not Django's (see the module docstring).
    """

    reduces_to_sql = False

    def __init__(self, operation):
        self.operation = operation

    def state_forwards(self, app_label, state):
        self.operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"{self.operation.describe()} (not on PostgreSQL)"


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0013_reference_checks_custom_plans"),
    ]

    operations = [
        NotOnPostgreSQL(migrations.RemoveIndex(model_name="deal", name="pipelines_deal_owner")),
        NotOnPostgreSQL(
            migrations.AddIndex(
                model_name="deal", index=models.Index(fields=["owner", "organization"], name="pipelines_deal_owner")
            )
        ),
        NotOnPostgreSQL(migrations.RemoveIndex(model_name="deal", name="pipelines_deal_account")),
        NotOnPostgreSQL(
            migrations.AddIndex(
                model_name="deal",
                index=models.Index(fields=["account", "organization"], name="pipelines_deal_account"),
            )
        ),
        NotOnPostgreSQL(
            migrations.RemoveConstraint(model_name="dealstagechange", name="pipelines_stagechange_unique_move")
        ),
        NotOnPostgreSQL(
            migrations.AddConstraint(
                model_name="dealstagechange",
                constraint=models.UniqueConstraint(
                    fields=["deal", "to_stage", "changed_at", "organization"], name="pipelines_stagechange_unique_move"
                ),
            )
        ),
        NotOnPostgreSQL(migrations.RemoveIndex(model_name="dealstagechange", name="pipelines_stagechange_changed")),
        NotOnPostgreSQL(
            migrations.AddIndex(
                model_name="dealstagechange",
                index=models.Index(fields=["changed_at", "organization"], name="pipelines_stagechange_changed"),
            )
        ),
        migrations.RunPython(indexes_rebuild, indexes_rebuild_0013),
    ]
