"""Per-organization partitions of the deal and stage-change tables on PostgreSQL.

pipelines_deal and pipelines_dealstagechange are partitioned by LIST (organization_id).
Each organization's rows live in its own two tables, pipelines_deal_o<id> and
pipelines_dealstagechange_o<id>. A trigger on spm_organization creates them with the
organization.

The reason is the first import of an organization's history. An index updated row by
row cost about 3 µs per row and index, so loading 100,000 deals and 185,000 stage
changes into the shared tables with the eleven indexes they had then took 3.6 s. Loaded
into tables without indexes, whose indexes are built afterwards, the same rows took
1.4 s (2-core machine, PostgreSQL 15, 2026-12-05). Only tables that no other
organization reads allow that, see pipelines.importers.bulk.

Deleting an organization keeps its partitions, empty. Dropping or detaching a partition
in a transaction locks the parent ACCESS EXCLUSIVE until the commit. That lock waits for
the longest running transaction that reads deals, and every other organization's deal
queries wait behind it. `orphans_drop` (the `partitions_drop_orphans` command) drops
them later with DETACH PARTITION CONCURRENTLY, which takes SHARE UPDATE EXCLUSIVE on
the parent.

NOTE: creating an organization takes SHARE UPDATE EXCLUSIVE on both parents (ATTACH
PARTITION) until its transaction ends. Reads and writes of deals do not wait for it, but
a second transaction that creates an organization does: `import_crm --create` makes
every other organization's creation wait until the import commits.

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

import logging

logger = logging.getLogger(__name__)

PARTITIONED_TABLES = ("pipelines_deal", "pipelines_dealstagechange")

# Each index as (suffix, SQL). `{table}` is the partition; the index or constraint is
# named `{table}_{suffix}`.
#
# Within a partition organization_id is the same in every row. A key that starts with it
# gets no abbreviated keys, and every comparison of the index build falls through to the
# next column. With organization_id last, the builds of owner, account, closed_at and
# changed took 10-17% less time (least of 5 builds of a 100,000-deal import's partition,
# 2-core machine, PostgreSQL 15, pipelines migration 0014). organization_id stays in each
# key, and the queries named below compare it with `=`, so both orders find the same rows.
DEAL_INDEXES = (
    ("pkey", "ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY (id)"),
    # Imports merge deals by source and external id (pipelines.importers.bulk, bulk_upsert).
    # NOTE: organization_id first costs about 40 ms per 100,000 deals in the build, but
    # the API's deal list filtered by a source with few deals reads the (organization_id,
    # source) prefix of this index. With external_id first that scan reads the whole index
    # (25-33 ms instead of 0.03 ms at 1,000,000 deals).
    ("unique_external", "ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE (organization_id, source, external_id)"),
    # A rep's own deal list, and the reference check when a membership is deleted.
    ("owner", "CREATE INDEX {name} ON {table} (owner_id, organization_id)"),
    # integrations.capture.matching: an account's open deals for a captured e-mail or meeting,
    # and the reference check when an account is deleted.
    ("account", "CREATE INDEX {name} ON {table} (account_id, organization_id)"),
    # dashboards.services._calendar_build: MIN/MAX(closed_at) from the index ends instead of a
    # scan, and the incremental recompute's "left since X" filter (closed_at >= X).
    ("closed_at", "CREATE INDEX {name} ON {table} (closed_at, organization_id)"),
    # dashboards.services._closed_by_period and the incremental won and lost statements read
    # the closed deals from the index alone (index-only scans). The two cover indexes keep
    # organization_id first. With it last, the closed_cover build took 4% longer and the
    # created_cover build 6 ms (10%) less.
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
    # Re-imports append only new history: one move per deal, target stage and instant. With
    # deal_id first the index also serves a deal's history, the stage history sync of
    # imports (`deal_id IN (...)`), Django's cascade when deals are deleted (`deal_id IN
    # (...)` without organization_id) and the reference check when a deal is deleted.
    (
        "unique_move",
        "ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE (deal_id, to_stage_id, changed_at, organization_id)",
    ),
    # Time-in-stage and conversion read a cohort's moves ordered in time, and
    # dashboards.analytics.velocity the moves of a time window.
    ("changed", "CREATE INDEX {name} ON {table} (changed_at, organization_id)"),
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


def _keep_sql(partition: str) -> str:
    """Return the statement that fails a DELETE naming the deal partition `partition` while rows still refer to the deals.

    A DELETE through the parent fires the parent's trigger (pipelines.reference_checks)
    and not this one, so each deleted row is checked once.
    """
    return (
        f"CREATE TRIGGER {partition}_references_keep AFTER DELETE ON {partition}"
        f" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pipelines_deal_references_keep()"
    )


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


def _function_sql(table_indexes=None) -> str:
    """Return the PL/pgSQL function that creates an organization's partitions, and the trigger that calls it.

    The partitions get the indexes of `table_indexes`, by default TABLE_INDEXES.

    An organization only counts as created in this transaction (CREATED_SETTING) when
    its partitions did not exist before. A partition left by a deleted organization
    whose id comes again, after the sequence was reset, is visible to every session.
    """
    table_indexes = TABLE_INDEXES if table_indexes is None else table_indexes
    creates = []
    for table in PARTITIONED_TABLES:
        partition = f"{table}_o' || organization_id || '"
        creates.append(f"""
    IF to_regclass('{table}_o' || organization_id) IS NULL THEN
        created := true;
        EXECUTE 'CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)';
        -- ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which readers and writers of other
        -- organizations do not wait for. CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE.
        EXECUTE 'ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES IN (' || organization_id || ')';""")
        for _suffix, template in table_indexes[table]:
            statement = template.format(table=partition, name=f"{partition}_{_suffix}")
            creates.append(f"\n        EXECUTE '{statement}';")
        for statement in _checks_sql(table, partition):
            creates.append(f"\n        EXECUTE '{statement}';")
        if table == "pipelines_deal":
            creates.append(f"\n        EXECUTE '{_keep_sql(partition)}';")
        creates.append("\n    END IF;")
    return f"""
CREATE FUNCTION pipelines_partitions_create(organization_id bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    created boolean := false;
BEGIN{"".join(creates)}
    IF created THEN
        PERFORM set_config('{CREATED_SETTING}', coalesce(current_setting('{CREATED_SETTING}', true), '') || ',' || organization_id, true);
    END IF;
END
$$;

CREATE FUNCTION spm_organization_partitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pipelines_partitions_create(NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER spm_organization_partitions AFTER INSERT ON spm_organization
    FOR EACH ROW EXECUTE FUNCTION spm_organization_partitions();
"""


def functions_replace(apps, schema_editor):
    """Replace the partition functions and trigger of migration 0011 by the current ones (pipelines migration 0012).

    The trigger no longer drops a deleted organization's partitions, and every deal
    partition gets the DELETE reference check of `_keep_sql`.
    """
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute("DROP TRIGGER IF EXISTS spm_organization_partitions ON spm_organization")
    execute("DROP FUNCTION IF EXISTS spm_organization_partitions()")
    execute("DROP FUNCTION IF EXISTS pipelines_partitions_create(bigint)")
    execute("DROP FUNCTION IF EXISTS pipelines_partitions_drop(bigint)")
    execute(_function_sql(), params=None)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'pipelines_deal'::regclass ORDER BY c.relname"
        )
        deal_partitions = [row[0] for row in cursor.fetchall()]
    for partition in deal_partitions:
        execute(f"DROP TRIGGER IF EXISTS {partition}_references_keep ON {partition}")
        execute(_keep_sql(partition))


def _functions_install(schema_editor, table_indexes) -> None:
    """Replace the partition-creating function and its trigger by ones that build the indexes of `table_indexes`."""
    execute = schema_editor.execute
    execute("DROP TRIGGER IF EXISTS spm_organization_partitions ON spm_organization")
    execute("DROP FUNCTION IF EXISTS spm_organization_partitions()")
    execute("DROP FUNCTION IF EXISTS pipelines_partitions_create(bigint)")
    execute(_function_sql(table_indexes), params=None)


def partition_indexes_replace(schema_editor, table_indexes, suffixes: dict[str, tuple[str, ...]]) -> None:
    """Rebuild the indexes named by `suffixes` ({table: suffixes}) on every partition, as `table_indexes` defines them.

    Each partition's index or constraint `<partition>_<suffix>` is dropped if it exists,
    and created again if `table_indexes` lists the suffix. The function that creates the
    partitions of new organizations gets `table_indexes` too. Does nothing off PostgreSQL.

    Each dropped index locks its partition ACCESS EXCLUSIVE until the migration commits,
    so the organizations' deal queries wait for the whole rebuild.
    """
    if schema_editor.connection.vendor != "postgresql":
        return
    _functions_install(schema_editor, table_indexes)
    execute = schema_editor.execute
    with schema_editor.connection.cursor() as cursor:
        for table, table_suffixes in suffixes.items():
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
                [table],
            )
            partitions = [row[0] for row in cursor.fetchall()]
            templates = dict(table_indexes[table])
            for partition in partitions:
                for suffix in table_suffixes:
                    name = f"{partition}_{suffix}"
                    cursor.execute(
                        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s)",
                        [partition, name],
                    )
                    if cursor.fetchone()[0]:
                        execute(f"ALTER TABLE {partition} DROP CONSTRAINT {name}")
                    else:
                        execute(f"DROP INDEX IF EXISTS {name}")
                    if suffix in templates:
                        execute(templates[suffix].format(table=partition, name=name))


def orphans_drop(connection, kept_with_rows: list[str] | None = None) -> list[str]:
    """Detach and drop the empty partitions of deleted organizations; return the names of the dropped tables.

    The names of orphan partitions that still have rows, and so stay, are appended to `kept_with_rows`.

    `connection` must be in autocommit mode: DETACH PARTITION CONCURRENTLY cannot run in
    a transaction block. It waits for the transactions that may read the partition, and
    other sessions do not wait for it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.relname, c.relname, i.inhdetachpending FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE p.relname = ANY(%s) AND c.relname ~ '_o[0-9]+$'"
            " AND NOT EXISTS (SELECT 1 FROM spm_organization o"
            " WHERE c.relname = p.relname || '_o' || o.id)"
            " ORDER BY c.relname",
            [list(PARTITIONED_TABLES)],
        )
        dropped = []
        for parent, partition, pending in cursor.fetchall():
            # Rows can outlive their organization only where the reference checks were bypassed
            # (TRUNCATE, disabled triggers). They are left for a person to look at.
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {partition})")
            if cursor.fetchone()[0]:
                logger.warning("Partition of a deleted organization kept because it has rows table=%s", partition)
                if kept_with_rows is not None:
                    kept_with_rows.append(partition)
                continue
            # A DETACH ... CONCURRENTLY that was cancelled leaves the partition pending; FINALIZE completes it.
            mode = "FINALIZE" if pending else "CONCURRENTLY"
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {partition} {mode}")
            cursor.execute(f"DROP TABLE {partition}")
            dropped.append(partition)
    return dropped


def _sequence_continue_sql(sequence: str, old_table: str, old_sequence: str) -> str:
    """Return the statement that sets `sequence` to continue where `old_sequence` stopped.

    The old sequence may be past max(id) of `old_table` when the last rows were deleted
    or an insert rolled back. Their ids must not be given out again, because other
    tables, logs and links may still name them.
    """
    return (
        f"SELECT setval('{sequence}', greatest("
        f"(SELECT coalesce(max(id), 0) FROM {old_table}),"
        f" (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {old_sequence})) + 1, false)"
    )


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
        execute(_sequence_continue_sql(f"{table}_id_seq", old, f"{old}_id_seq"))
        execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
    execute(_function_sql(), params=None)
    all_checks_create(apps, schema_editor)
    execute("SELECT pipelines_partitions_create(id) FROM spm_organization ORDER BY id")
    for table in PARTITIONED_TABLES:
        old = f"{table}_unpartitioned"
        execute(f"INSERT INTO {table} SELECT * FROM {old}")
        execute(f"DROP TABLE {old}")
