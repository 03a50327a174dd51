"""Statement-level reference checks of deals and stage changes on PostgreSQL.

Deals and stage changes carry no per-row foreign key constraints on their references
(see pipelines.models.Deal). These triggers check them instead, once per INSERT or
UPDATE statement, over the distinct values of the statement's rows:

- every referenced row must exist and belong to the row's organization;
- the referenced rows are locked FOR KEY SHARE, as a foreign key check locks them;
- an UPDATE checks only the rows whose references changed, as a foreign key does;
- deleting a referenced row (AFTER DELETE, per statement) fails while a deal or stage
  change still refers to it.

Pipelines migrations 0008, 0009, 0011 and 0013 install them. SQLite gets no triggers.
"""

# (table, its referencing columns as (column, referenced table)). Every referenced table
# except spm_organization has organization_id, which must equal the referencing row's.
REFERENCES = (
    (
        "pipelines_deal",
        (
            ("organization_id", "spm_organization"),
            ("owner_id", "spm_membership"),
            ("account_id", "pipelines_account"),
            ("pipeline_id", "pipelines_pipeline"),
            ("stage_id", "pipelines_stage"),
            ("product_id", "pipelines_product"),
            ("territory_id", "goals_territory"),
        ),
    ),
    (
        "pipelines_dealstagechange",
        (
            ("organization_id", "spm_organization"),
            ("deal_id", "pipelines_deal"),
            ("from_stage_id", "pipelines_stage"),
            ("to_stage_id", "pipelines_stage"),
        ),
    ),
)
# The deal references of other tables (pipelines migration 0011). pipelines_deal is
# partitioned (pipelines.partitions), and a foreign key cannot point at a partitioned
# table without organization_id in the key.
DEAL_REFERENCES = tuple(
    (table, (("organization_id", "spm_organization"), ("deal_id", "pipelines_deal")))
    for table in ("pipelines_activity", "pipelines_dealscore", "goals_dealforecastcategory", "dashboards_pipelinesnapshot")
)
TENANT_TABLE = "spm_organization"
# Partitioned by organization_id: a lookup by id alone would probe every organization's
# partition, so the checks join on the organization too.
PARTITIONED_TABLES = ("pipelines_deal", "pipelines_dealstagechange")


def _array_name(column: str) -> str:
    """Return the PL/pgSQL variable that contains the statement's distinct values of `column`."""
    return f"{column}s"


def _missing_raise_sql(column: str, parent: str, value: str, organization: str) -> str:
    """Return the PL/pgSQL that raises foreign_key_violation when the preceding SELECT INTO found a missing row."""
    return f"""            IF FOUND THEN
                RAISE EXCEPTION 'insert or update on table "%" violates reference check: {column} = % has no row in {parent} of organization %',
                    TG_TABLE_NAME, {value}, {organization}
                    USING ERRCODE = 'foreign_key_violation';
            END IF;"""


def _single_tenant_check_sql(column: str, parent: str) -> str:
    """Return the PL/pgSQL that locks and checks `column`'s values when all rows share one organization."""
    other_tenant = "" if parent == TENANT_TABLE else " OR p.organization_id <> statement_organization_id"
    # Joined on the primary key alone where possible: with the organization in the join
    # condition, stale statistics of a new organization led the planner to a nested loop
    # over its rows. A partitioned table needs it to read one partition only.
    join = "p.id = r.value"
    if parent in PARTITIONED_TABLES:
        join, other_tenant = "p.organization_id = statement_organization_id AND p.id = r.value", ""
    values = _array_name(column)
    return f"""
        IF {values} IS NOT NULL THEN
            -- A join rather than `p.id = ANY (array)`: a generic plan scans the table and searches the
            -- array linearly for each row, which took minutes for 100,000 deal ids.
            PERFORM 1 FROM unnest({values}) AS r(value) JOIN {parent} AS p ON {join}
            ORDER BY p.id FOR KEY SHARE OF p;
            SELECT r.value INTO missing_id
            FROM unnest({values}) AS r(value) LEFT JOIN {parent} AS p ON {join}
            WHERE p.id IS NULL{other_tenant}
            LIMIT 1;
{_missing_raise_sql(column, parent, "missing_id", "statement_organization_id")}
        END IF;"""


def _pair_check_sql(column: str, parent: str, rows: str) -> str:
    """Return the PL/pgSQL that locks and checks each distinct (organization, `column`) pair of `rows` (a FROM item)."""
    other_tenant = "" if parent == TENANT_TABLE else " OR p.organization_id <> r.organization_id"
    join = "p.id = r.value"
    if parent in PARTITIONED_TABLES:
        join, other_tenant = "p.organization_id = r.organization_id AND p.id = r.value", ""
    return f"""
        SELECT array_agg(d.value), array_agg(d.organization_id) INTO referenced_ids, referencing_organization_ids
        FROM (SELECT DISTINCT {column} AS value, organization_id FROM {rows} WHERE {column} IS NOT NULL) AS d;
        IF referenced_ids IS NOT NULL THEN
            PERFORM 1 FROM unnest(referenced_ids, referencing_organization_ids) AS r(value, organization_id)
            JOIN {parent} AS p ON {join}
            ORDER BY p.id FOR KEY SHARE OF p;
            SELECT r.value, r.organization_id INTO missing
            FROM unnest(referenced_ids, referencing_organization_ids) AS r(value, organization_id)
            LEFT JOIN {parent} AS p ON {join}
            WHERE p.id IS NULL{other_tenant}
            LIMIT 1;
{_missing_raise_sql(column, parent, "missing.value", "missing.organization_id")}
        END IF;"""


def _changed_rows_sql(columns) -> str:
    """Return a FROM item of the updated rows whose references changed, from the UPDATE's transition tables."""
    new_values = ", ".join(f"n.{column}" for column, _parent in columns)
    old_values = ", ".join(f"o.{column}" for column, _parent in columns)
    return (
        f"(SELECT n.* FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id"
        f" WHERE ({new_values}) IS DISTINCT FROM ({old_values})) AS changed_rows"
    )


def _plan_mode_sql(columns) -> str:
    """Return the function option that plans each run for its organization, when `columns` refer to a partitioned table.

    After five runs PL/pgSQL may keep a generic plan, in which statement_organization_id
    is a parameter. PostgreSQL 15 locks every partition of such a plan before it prunes
    them at run time: each checked statement locked every organization's deal partition
    and its indexes, 16 locks per organization. A custom plan reads and locks one partition.
    """
    if any(parent in PARTITIONED_TABLES for _column, parent in columns):
        return " SET plan_cache_mode = force_custom_plan"
    return ""


def plan_mode_set(apps, schema_editor):
    """Give the existing check functions that read a partitioned table the option of `_plan_mode_sql` (pipelines migration 0013)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, columns in REFERENCES + DEAL_REFERENCES:
        if _plan_mode_sql(columns):
            schema_editor.execute(f"ALTER FUNCTION {table}_references_check() SET plan_cache_mode = force_custom_plan")


def plan_mode_reset(apps, schema_editor):
    """Undo `plan_mode_set`."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, columns in REFERENCES + DEAL_REFERENCES:
        if _plan_mode_sql(columns):
            schema_editor.execute(f"ALTER FUNCTION {table}_references_check() RESET plan_cache_mode")


def _child_function_sql(table: str, columns) -> str:
    """Return the function that checks the references of the rows one INSERT or UPDATE on `table` wrote.

    An INSERT checks every new row. An UPDATE checks only the rows whose references
    changed, so saving a deal's name or amount neither locks nor reads its stage,
    owner and the rest. One scan collects the distinct values of every column. When
    all rows share one organization, as every import and form does, each column is
    checked against that organization. Otherwise each (organization, value) pair is.
    """
    declarations = "".join(f"\n    {_array_name(column)} bigint[];" for column, _parent in columns)
    aggregates = ",\n        ".join(
        f"array_agg(DISTINCT {column}) FILTER (WHERE {column} IS NOT NULL)" for column, _parent in columns
    )
    targets = ", ".join(_array_name(column) for column, _parent in columns)
    changed_rows = _changed_rows_sql(columns)
    single = "".join(_single_tenant_check_sql(column, parent) for column, parent in columns)
    inserted_pairs = "".join(_pair_check_sql(column, parent, "new_rows") for column, parent in columns)
    changed_pairs = "".join(_pair_check_sql(column, parent, changed_rows) for column, parent in columns)
    # old_rows exists only for the UPDATE trigger. PL/pgSQL plans a statement when it first
    # runs it, so the INSERT trigger never plans the UPDATE branches.
    return f"""
CREATE FUNCTION {table}_references_check() RETURNS trigger LANGUAGE plpgsql{_plan_mode_sql(columns)} AS $$
DECLARE{declarations}
    statement_organization_id bigint;
    referenced_ids bigint[];
    referencing_organization_ids bigint[];
    missing record;
    missing_id bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT {aggregates}
        INTO {targets}
        FROM {changed_rows};
    ELSE
        SELECT {aggregates}
        INTO {targets}
        FROM new_rows;
    END IF;
    -- No rows, or an UPDATE that changed no reference.
    IF organization_ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(organization_ids) = 1 THEN
        statement_organization_id := organization_ids[1];{single}
    ELSIF TG_OP = 'UPDATE' THEN{changed_pairs}
    ELSE{inserted_pairs}
    END IF;
    RETURN NULL;
END
$$"""


def _parent_function_sql(parent: str, children) -> str:
    """Return the function that fails a delete from `parent` while a row of `children` still refers to it."""
    checks = []
    for table, column in children:
        if parent == TENANT_TABLE:
            join = f"c.{column} = o.id"
        else:
            join = f"c.organization_id = o.organization_id AND c.{column} = o.id"
        checks.append(f"""
    IF EXISTS (SELECT 1 FROM {table} AS c JOIN old_rows AS o ON {join}) THEN
        RAISE EXCEPTION 'delete on table "%" violates reference check: rows of {table} still refer to it through {column}',
            TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;""")
    return f"""
CREATE FUNCTION {parent}_references_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{"".join(checks)}
    RETURN NULL;
END
$$"""


def _parents(references) -> dict[str, list[tuple[str, str]]]:
    """Return {referenced table: [(referencing table, column), ...]}."""
    parents: dict[str, list[tuple[str, str]]] = {}
    for table, columns in references:
        for column, parent in columns:
            parents.setdefault(parent, []).append((table, column))
    return parents


def _checks_create(schema_editor, references) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, columns in references:
        # No parameters: the function bodies contain % placeholders of RAISE.
        schema_editor.execute(_child_function_sql(table, columns), params=None)
        for event, transition_tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            schema_editor.execute(
                f"CREATE TRIGGER {table}_references_{event.lower()} AFTER {event} ON {table}"
                f" REFERENCING {transition_tables} FOR EACH STATEMENT EXECUTE FUNCTION {table}_references_check()"
            )
    for parent, children in _parents(references).items():
        schema_editor.execute(_parent_function_sql(parent, children), params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {parent}_references_keep AFTER DELETE ON {parent}"
            f" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {parent}_references_keep()"
        )


def _checks_drop(schema_editor, references) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for parent in _parents(references):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {parent}_references_keep ON {parent}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {parent}_references_keep()")
    for table, _columns in references:
        for event in ("insert", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_references_{event} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_references_check()")


# Migrations 0008 and 0009 install the checks of deals and stage changes only; 0011 adds
# the deal references of other tables.
def checks_create(apps, schema_editor):
    _checks_create(schema_editor, REFERENCES)


def checks_drop(apps, schema_editor):
    _checks_drop(schema_editor, REFERENCES)


def checks_replace(apps, schema_editor):
    """Drop and create every trigger and function again, so a database migrated earlier gets the current ones."""
    checks_drop(apps, schema_editor)
    checks_create(apps, schema_editor)


def all_checks_create(apps, schema_editor):
    _checks_create(schema_editor, REFERENCES + DEAL_REFERENCES)
