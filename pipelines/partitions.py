"""Per-organization partitions of the deal and stage-change tables on PostgreSQL.

pipelines_deal and pipelines_dealstagechange are partitioned by LIST (organization_id).
Each organization's rows live in its own two tables, pipelines_deal_o<id> and
pipelines_dealstagechange_o<id>. A trigger on spm_organization creates them with the
organization and drops them with it.

The reason is the first import of an organization's history. An index updated row by
row cost about 3 µs per row and index, so loading 100,000 deals and 185,000 stage
changes into the shared tables with their eleven indexes took 3.6 s. Loaded into tables
without indexes, whose indexes are built afterwards, the same rows took 1.4 s (2-core
machine, PostgreSQL 15, 2026-12-05). Only tables that no other organization reads allow
that, see pipelines.importers.bulk.

The partitioned parents have no indexes. A partition whose index is attached to an
index of its parent cannot drop it, and a unique index of the parent would have to
include organization_id anyway. Each partition gets the indexes below instead, and every
query names the parent: a condition `organization_id = X` restricts it to one partition.
PostgreSQL 15 gives an identity column's value only to rows inserted through the
parent, so the ids come from a sequence that is every partition's column default.

NOTE: the Meta indexes and unique constraints of Deal and DealStageChange describe these
per-partition indexes to Django. A migration that changes them must change DEAL_INDEXES
or MOVE_INDEXES and rebuild the partitions' indexes; Django's own AddIndex would create
an index on the parent that every partition then inherits.
"""

PARTITIONED_TABLES = ("pipelines_deal", "pipelines_dealstagechange")

# Each index as (suffix, SQL). `{table}` is the partition; the index or constraint is
# named `{table}_{suffix}`.
DEAL_INDEXES = (
    ("pkey", "ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY (id)"),
    # Imports merge deals by source and external id (pipelines.importers.bulk, bulk_upsert).
    ("unique_external", "ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE (organization_id, source, external_id)"),
    # A rep's own deal list.
    ("owner", "CREATE INDEX {name} ON {table} (organization_id, owner_id)"),
    # integrations.capture.matching: an account's open deals for a captured e-mail or meeting.
    ("account", "CREATE INDEX {name} ON {table} (organization_id, account_id)"),
    # dashboards.services._calendar_build: MIN/MAX(closed_at) from the index ends instead of a
    # scan, and the incremental recompute's "left since X" filter (closed_at >= X).
    ("closed_at", "CREATE INDEX {name} ON {table} (organization_id, closed_at)"),
    # dashboards.services._closed_by_period and the incremental won and lost statements read
    # the closed deals from the index alone (index-only scans).
    (
        "closed_cover",
        "CREATE INDEX {name} ON {table} (organization_id, status, closed_at)"
        " INCLUDE (created_at, base_amount, owner_id, territory_id) WHERE deleted_at IS NULL",
    ),
    # dashboards.services._open_by_period and the incremental open-count statement.
    (
        "created_cover",
        "CREATE INDEX {name} ON {table} (organization_id, created_at)"
        " INCLUDE (closed_at, base_amount, owner_id, territory_id) WHERE deleted_at IS NULL",
    ),
)
MOVE_INDEXES = (
    ("pkey", "ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY (id)"),
    # Re-imports append only new history: one move per deal, target stage and instant.
    (
        "unique_move",
        "ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE (organization_id, deal_id, to_stage_id, changed_at)",
    ),
    # A deal's history, and Django's cascade when deals are deleted (`deal_id IN (...)`).
    ("deal", "CREATE INDEX {name} ON {table} (deal_id)"),
    # Time-in-stage and conversion read a cohort's moves ordered in time.
    ("changed", "CREATE INDEX {name} ON {table} (organization_id, changed_at)"),
)
TABLE_INDEXES = {"pipelines_deal": DEAL_INDEXES, "pipelines_dealstagechange": MOVE_INDEXES}

# The transaction-local setting that lists the organizations whose partitions this
# transaction created, as ",<id>,<id>". No other session can see such partitions before the
# commit, so the bulk import may drop and rebuild their indexes without blocking anyone.
CREATED_SETTING = "spm.partitions_created"


def partition_name(table: str, organization_id: int) -> str:
    """Return the name of `organization_id`'s partition of `table`."""
    return f"{table}_o{int(organization_id)}"


def _index_statements(table: str, organization_id: int) -> list[tuple[str, str]]:
    """Return (name, SQL) of the indexes of `organization_id`'s partition of `table`."""
    partition = partition_name(table, organization_id)
    statements = []
    for suffix, template in TABLE_INDEXES[table]:
        name = f"{partition}_{suffix}"
        statements.append((name, template.format(table=partition, name=name)))
    return statements


def _checks_sql(table: str, partition: str) -> list[str]:
    """Return the statements that put `table`'s reference checks on `partition` (see pipelines.reference_checks).

    A statement that names a partition fires the partition's statement triggers and not
    the parent's, so each partition carries the checks too.
    """
    return [
        f"CREATE TRIGGER {partition}_references_insert AFTER INSERT ON {partition}"
        f" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_references_check()",
        f"CREATE TRIGGER {partition}_references_update AFTER UPDATE ON {partition}"
        f" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
        f" EXECUTE FUNCTION {table}_references_check()",
    ]


def indexes_build(cursor, organization_id: int) -> None:
    """Create the indexes and reference-check triggers of `organization_id`'s partitions."""
    for table in PARTITIONED_TABLES:
        for _name, statement in _index_statements(table, organization_id):
            cursor.execute(statement)
        for statement in _checks_sql(table, partition_name(table, organization_id)):
            cursor.execute(statement)


def indexes_drop(cursor, organization_id: int) -> None:
    """Drop the indexes and reference-check triggers of `organization_id`'s partitions.

    Only for partitions this transaction created: dropping an index locks its table
    ACCESS EXCLUSIVE until the commit.
    """
    for table in PARTITIONED_TABLES:
        partition = partition_name(table, organization_id)
        for event in ("insert", "update"):
            cursor.execute(f"DROP TRIGGER {partition}_references_{event} ON {partition}")
        for name, statement in _index_statements(table, organization_id):
            if statement.startswith("ALTER TABLE"):
                cursor.execute(f"ALTER TABLE {partition} DROP CONSTRAINT {name}")
            else:
                cursor.execute(f"DROP INDEX {name}")


def created_in_transaction(cursor, organization_id: int) -> bool:
    """Return whether the current transaction created `organization_id`'s partitions."""
    cursor.execute("SELECT current_setting(%s, true)", [CREATED_SETTING])
    created = cursor.fetchone()[0] or ""
    return f",{int(organization_id)}," in f"{created},"


def _function_sql() -> str:
    """Return the PL/pgSQL functions that create and drop an organization's partitions, and their triggers."""
    creates = []
    for table in PARTITIONED_TABLES:
        partition = f"{table}_o' || organization_id || '"
        creates.append(f"""
    IF to_regclass('{table}_o' || organization_id) IS NULL THEN
        EXECUTE 'CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)';
        -- ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which readers and writers of other
        -- organizations do not wait for. CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE.
        EXECUTE 'ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES IN (' || organization_id || ')';""")
        for _suffix, template in TABLE_INDEXES[table]:
            statement = template.format(table=partition, name=f"{partition}_{_suffix}")
            creates.append(f"\n        EXECUTE '{statement}';")
        for statement in _checks_sql(table, partition):
            creates.append(f"\n        EXECUTE '{statement}';")
        creates.append("\n    END IF;")
    drops = "".join(
        f"\n    EXECUTE 'DROP TABLE IF EXISTS {table}_o' || organization_id;" for table in PARTITIONED_TABLES
    )
    return f"""
CREATE FUNCTION pipelines_partitions_create(organization_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN{"".join(creates)}
    PERFORM set_config('{CREATED_SETTING}', coalesce(current_setting('{CREATED_SETTING}', true), '') || ',' || organization_id, true);
END
$$;

CREATE FUNCTION pipelines_partitions_drop(organization_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN{drops}
END
$$;

CREATE FUNCTION spm_organization_partitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pipelines_partitions_create(NEW.id);
    ELSE
        PERFORM pipelines_partitions_drop(OLD.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER spm_organization_partitions AFTER INSERT OR DELETE ON spm_organization
    FOR EACH ROW EXECUTE FUNCTION spm_organization_partitions();
"""


def partitioning_install(apps, schema_editor):
    """Turn pipelines_deal and pipelines_dealstagechange into partitioned tables, keeping every row and id.

    No foreign key constraint may point at either table any more. The reference-check
    triggers are created again, on the parents and on each partition.
    """
    from pipelines.reference_checks import all_checks_create, checks_drop

    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    checks_drop(apps, schema_editor)
    for table in PARTITIONED_TABLES:
        old = f"{table}_unpartitioned"
        execute(f"ALTER TABLE {table} RENAME TO {old}")
        # The new sequence takes the name of the old identity sequence.
        execute(f"ALTER SEQUENCE {table}_id_seq RENAME TO {old}_id_seq")
        execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING CONSTRAINTS) PARTITION BY LIST (organization_id)")
        execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
        execute(f"SELECT setval('{table}_id_seq', (SELECT coalesce(max(id), 0) + 1 FROM {old}), false)")
        execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
    execute(_function_sql(), params=None)
    all_checks_create(apps, schema_editor)
    execute("SELECT pipelines_partitions_create(id) FROM spm_organization ORDER BY id")
    for table in PARTITIONED_TABLES:
        old = f"{table}_unpartitioned"
        execute(f"INSERT INTO {table} SELECT * FROM {old}")
        execute(f"DROP TABLE {old}")
