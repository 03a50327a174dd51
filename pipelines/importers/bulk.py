"""PostgreSQL bulk path of the deal import: COPY into a staging table, then a merge per batch.

`deals_merge` writes what `bulk_upsert` plus `stage_history_sync` plus
`deal_close_state_refresh` would write for the deals a file creates, in a few
set-based statements per batch of rows:

1. COPY the batch's parsed rows into a temporary table (dropped at commit).
2. One INSERT ... ON CONFLICT DO UPDATE into pipelines_deal. Rows whose fields all
   equal the stored ones are not touched, so RETURNING lists exactly the created
   (`xmax = 0`) and updated deals. ON CONFLICT also merges a deal that another
   writer (the API, a sync) inserts while the import runs. A plain INSERT of the
   new rows after marking the existing ones was 0.75 s faster for 100,000 deals,
   but failed on such a deal with a unique violation.
3. For created deals, one INSERT ... SELECT of their implied moves. Their stage,
   status and `closed_at` were already set in step 2 from the same moves (the latest
   move decides), which is what `deal_close_state_refresh` derives for a deal whose
   history is only these moves.

A worker thread runs these statements for one batch while the caller's thread
parses the next, so reading the file and writing the rows overlap. The caller hands
each batch over as lines of COPY's text format (StagedBatch), so the worker thread
only sends them and waits for the database, and needs Python's interpreter lock
rarely while the caller's thread parses. Rows without a
creation time wait in a second temporary table until the last batch, because their
default time is only known once the whole file is read. Each batch's deals get ids
in file order, and the undated ones get theirs after every dated deal.

Deals that existed before keep the general path: the caller syncs their history and
refreshes them with the ORM functions, so moves a person recorded are respected.

An organization created in the same transaction (`import_crm --create`) has empty
partitions that no other session can see yet (pipelines.partitions). For it the
import drops the partitions' indexes, moves each staged batch into them with plain
INSERT ... SELECT statements, checks the references once, and builds the indexes at
the end. Building an index over the loaded rows is several times cheaper than
updating it row by row.
"""

import contextlib
import datetime as dt
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import IntegrityError, connection

from pipelines import partitions

# Columns of the staging table, in the order of a StagedBatch line.
STAGING_COLUMNS = (
    ("external_id", "text"),
    ("name", "text"),
    ("owner_id", "bigint"),
    ("account_id", "bigint"),
    ("product_id", "bigint"),
    ("territory_id", "bigint"),
    ("stage_id", "bigint"),
    ("status", "text"),
    ("amount", "numeric"),
    ("base_amount", "numeric"),
    ("created_at", "timestamptz"),
    ("expected_close_on", "date"),
    ("closed_at", "timestamptz"),
    ("is_list_price", "boolean"),
    ("first_stage_id", "bigint"),
    ("close_stage_id", "bigint"),
    ("line", "integer"),
)

# COPY's text format: fields separated by tabs, NULL written as \N, and in a text value the
# backslash, tab, newline and carriage return escaped with a backslash.
NULL = "\\N"
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """Return the text `value` as one field of COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_TEXT_ESCAPES)
    return value


@dataclass
class StagedBatch:
    """One batch of staged rows as lines of COPY's text format, each the STAGING_COLUMNS and a newline.

    Rows with a creation time go to `dated`, the others to `undated` (see the module
    doc), and each list of keys contains the rows' external ids in line order.
    """

    dated: list[str] = field(default_factory=list)
    dated_keys: list[str] = field(default_factory=list)
    undated: list[str] = field(default_factory=list)
    undated_keys: list[str] = field(default_factory=list)


# Fields the file states; a deal whose stored values equal these is unchanged.
_COMPARED = ("name", "owner_id", "account_id", "product_id", "pipeline_id", "stage_id", "territory_id",
             "currency", "amount", "base_amount", "created_at", "expected_close_on")  # fmt: skip

# Into the organization's partition (pipelines.partitions): ON CONFLICT needs the unique
# constraint as its arbiter, and the partitioned parent has none.
_MERGE_SQL = """
INSERT INTO {partition} AS pipelines_deal (
    organization_id, source, external_id, name, owner_id, account_id, product_id, pipeline_id, stage_id,
    territory_id, currency, amount, base_amount, probability, status, created_at, expected_close_on,
    closed_at, lost_reason, deal_source, custom_fields, updated_at
)
SELECT %(organization_id)s, %(source)s, s.external_id, s.name, s.owner_id, s.account_id, s.product_id,
    %(pipeline_id)s, s.stage_id, s.territory_id, %(currency)s, s.amount, s.base_amount, NULL, s.status,
    COALESCE(s.created_at, %(created_default)s), s.expected_close_on, s.closed_at, '', '',
    CASE WHEN s.is_list_price THEN '{{"amount_source": "list_price"}}'::jsonb ELSE '{{}}'::jsonb END, now()
FROM {table} s
ORDER BY s.line
ON CONFLICT (organization_id, source, external_id) DO UPDATE SET
    {updates},
    custom_fields = (pipelines_deal.custom_fields - 'amount_source') || EXCLUDED.custom_fields,
    updated_at = now()
WHERE ({current}) IS DISTINCT FROM ({excluded})
    OR ((pipelines_deal.custom_fields - 'amount_source') || EXCLUDED.custom_fields) IS DISTINCT FROM pipelines_deal.custom_fields
RETURNING id, external_id, (xmax = 0) AS created
"""

# Implied moves of the created deals, in one statement: the first stage at creation, then
# the close. Rows are inserted ordered by deal and move, so ids follow time within each
# deal. The created deals come as arrays of (id, external id) from the merge's RETURNING,
# so the statement reads the staged rows alone and never the organization's deals.
_MOVES_SQL = """
INSERT INTO {target} (organization_id, deal_id, from_stage_id, to_stage_id, changed_at, is_implied)
SELECT %(organization_id)s, c.id, m.from_stage_id, m.to_stage_id, m.changed_at, true
FROM unnest(%(created_ids)s::bigint[], %(created_keys)s::text[]) AS c(id, external_id)
JOIN {table} s ON s.external_id = c.external_id
CROSS JOIN LATERAL (VALUES
    (1, NULL::bigint, s.first_stage_id, COALESCE(s.created_at, %(created_default)s)),
    (2, s.first_stage_id, s.close_stage_id, s.closed_at)
) AS m(number, from_stage_id, to_stage_id, changed_at)
WHERE m.number = 1 OR s.close_stage_id IS NOT NULL
ORDER BY c.id, m.number
"""


# The staged rows of the batch being merged, and the rows without a creation time that
# wait for the last batch. Both are dropped at commit.
_BATCH_TABLE = "import_deal_staging"
_UNDATED_TABLE = "import_deal_undated"


@dataclass
class MergeOutcome:
    # Deal id by key. The load of a new organization's empty partitions creates every
    # deal and leaves it empty: the caller needs the ids of deals that existed only.
    ids: dict[str, int] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    unchanged: set[str] = field(default_factory=set)
    moves_created: int = 0
    # The staged implied moves (from stage id, to stage id, time) of every deal that existed before.
    existing_moves: dict[str, list[tuple[int | None, int, dt.datetime]]] = field(default_factory=dict)


def deals_merge(
    *,
    organization_id: int,
    source: str,
    pipeline_id: int,
    currency: str,
    batches: Iterable[StagedBatch],
    created_default: Callable[[], dt.datetime],
) -> MergeOutcome:
    """Stage `batches` of rows and merge them into pipelines_deal; see the module doc.

    `batches` is consumed in the calling thread while the previous batch is written
    in a worker thread, on the same database connection. The caller's queries between
    batches wait for the worker's statement to finish.

    A staged row without `created_at` gets `created_default()`, called once after
    the last row is staged.

    PostgreSQL only; the caller owns the transaction. Returns the deal ids (see
    MergeOutcome.ids), the keys created, updated and unchanged, and how many moves
    were written for the created deals.
    """
    connection.ensure_connection()
    # The worker thread must not touch Django's connection wrapper, which belongs to this
    # thread. The psycopg connection underneath serializes the two threads' statements.
    raw_connection = connection.connection
    parameters = {"organization_id": organization_id, "source": source, "pipeline_id": pipeline_id, "currency": currency}
    # The writer's raw psycopg errors become Django's (IntegrityError, DataError, ...), as
    # the ORM's would.
    with connection.wrap_database_errors:
        fresh = _partitions_fresh(raw_connection, organization_id)
        writer = (_FreshPartitionWriter if fresh else _BatchWriter)(raw_connection, parameters)
        writer.tables_create()
        pending: Future | None = None
        with _switch_interval(WRITER_SWITCH_INTERVAL), ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="deal-merge"
        ) as executor:
            try:
                for batch in batches:
                    if pending is not None:
                        pending.result()
                    pending = executor.submit(writer.batch_write, batch)
            except Exception:
                # A failed batch aborts the transaction, so the parser's next query fails too.
                # The batch's error is the cause to report.
                if pending is not None and pending.done() and pending.exception() is not None:
                    raise pending.exception() from None
                raise
            if pending is not None:
                pending.result()

        writer.undated_write(created_default())
        return writer.outcome_finish()


# While the parser's thread runs, the writer's thread gets the interpreter lock back after
# each statement only when the switch interval (5 ms by default) has passed. For a
# 100,000-deal import that waiting made the batches take 1.36 s instead of 1.04 s with
# 0.1 ms (2 cores, PostgreSQL 15, 2026-12-05).
WRITER_SWITCH_INTERVAL = 0.0001


# Imports whose load runs in this process (threads of a worker or server), and the switch
# interval from before the first of them.
_switch_interval_lock = threading.Lock()
_switch_interval_users = 0
_switch_interval_previous = 0.0


@contextlib.contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """Set Python's thread switch interval to `seconds` until exit, then restore the one from before.

    The interval is the process's, so other threads switch sooner too while it is set.
    Loads that overlap in one process share the setting, and the last one to exit
    restores the interval from before the first, whatever order they exit in.
    """
    global _switch_interval_users, _switch_interval_previous
    with _switch_interval_lock:
        if _switch_interval_users == 0:
            _switch_interval_previous = sys.getswitchinterval()
            sys.setswitchinterval(seconds)
        _switch_interval_users += 1
    try:
        yield
    finally:
        with _switch_interval_lock:
            _switch_interval_users -= 1
            if _switch_interval_users == 0:
                sys.setswitchinterval(_switch_interval_previous)


class _BatchWriter:
    """Writer of one import's merge statements on a raw psycopg connection. It collects the MergeOutcome."""

    def __init__(self, raw_connection, parameters: dict):
        self.raw_connection = raw_connection
        self.parameters = parameters
        self.outcome = MergeOutcome()
        self.keys: list[str] = []
        self.undated_keys: list[str] = []
        columns = ", ".join(name for name, _kind in STAGING_COLUMNS)
        self.copy_sql = {table: f"COPY {table} ({columns}) FROM STDIN" for table in (_BATCH_TABLE, _UNDATED_TABLE)}

    def tables_create(self) -> None:
        names = ", ".join(f"{name} {kind}" for name, kind in STAGING_COLUMNS)
        with self.raw_connection.cursor() as cursor:
            for table in (_BATCH_TABLE, _UNDATED_TABLE):
                # A second import in the same transaction finds the first one's table.
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute(f"CREATE TEMPORARY TABLE {table} ({names}) ON COMMIT DROP")
            # The merge sorts the staged rows by line; in memory rather than spilled to disk.
            cursor.execute("SET LOCAL work_mem = '64MB'")

    def batch_write(self, batch: StagedBatch) -> None:
        """Merge the batch's dated rows and set its undated ones aside for `undated_write`."""
        self.keys += batch.dated_keys
        self.keys += batch.undated_keys
        with self.raw_connection.cursor() as cursor:
            if batch.undated:
                self._copy(cursor, _UNDATED_TABLE, batch.undated)
                self.undated_keys += batch.undated_keys
            if batch.dated:
                cursor.execute(f"TRUNCATE {_BATCH_TABLE}")
                self._copy(cursor, _BATCH_TABLE, batch.dated)
                self._dated_write(cursor, batch.dated_keys)

    def _dated_write(self, cursor, keys: list[str]) -> None:
        """Write the batch's dated rows, staged in _BATCH_TABLE under `keys`, into the deal tables."""
        self._merge(cursor, _BATCH_TABLE, keys, created_default=None)

    def undated_write(self, created_default: dt.datetime) -> None:
        """Merge the rows without a creation time, which get `created_default`."""
        if not self.undated_keys:
            return
        with self.raw_connection.cursor() as cursor:
            self._merge(cursor, _UNDATED_TABLE, self.undated_keys, created_default=created_default)

    def outcome_finish(self) -> MergeOutcome:
        """Look up the ids of the unchanged deals, drop the staging tables and return the outcome."""
        outcome = self.outcome
        with self.raw_connection.cursor() as cursor:
            # Unchanged deals were not returned; their ids come from the table.
            missing = [key for key in self.keys if key not in outcome.ids]
            if missing:
                cursor.execute(
                    "SELECT d.external_id, d.id FROM pipelines_deal d JOIN unnest(%s::text[]) AS wanted(key)"
                    " ON wanted.key = d.external_id WHERE d.organization_id = %s AND d.source = %s",
                    [missing, self.parameters["organization_id"], self.parameters["source"]],
                )
                outcome.ids.update(dict(cursor.fetchall()))
            cursor.execute(f"DROP TABLE {_BATCH_TABLE}, {_UNDATED_TABLE}")
        outcome.unchanged = set(self.keys) - outcome.created - outcome.updated
        return outcome

    def _copy(self, cursor, table: str, lines: list[str]) -> None:
        # One write of the whole batch: psycopg only encodes and sends it. Formatting rows here
        # (write_row) took this thread's share of the interpreter lock from the parser's thread.
        with cursor.copy(self.copy_sql[table]) as copy:
            copy.write("".join(lines))

    def _merge(self, cursor, table: str, keys: list[str], created_default: dt.datetime | None) -> None:
        """Merge the rows with `keys` staged in `table`, write the created deals' moves and read back the others' moves."""
        outcome = self.outcome
        parameters = {**self.parameters, "created_default": created_default}
        # The statistics of the join key are all the moves statement needs.
        cursor.execute(f"ANALYZE {table} (external_id)")

        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _COMPARED)
        current = ", ".join(f"pipelines_deal.{name}" for name in _COMPARED)
        excluded = ", ".join(f"EXCLUDED.{name}" for name in _COMPARED)
        partition = partitions.partition_name("pipelines_deal", self.parameters["organization_id"])
        cursor.execute(
            _MERGE_SQL.format(partition=partition, table=table, updates=updates, current=current, excluded=excluded),
            parameters,
        )
        created_ids, created_keys = [], []
        for deal_id, external_id, is_created in cursor.fetchall():
            outcome.ids[external_id] = deal_id
            if is_created:
                outcome.created.add(external_id)
                created_ids.append(deal_id)
                created_keys.append(external_id)
            else:
                outcome.updated.add(external_id)

        if created_ids:
            cursor.execute(
                _MOVES_SQL.format(table=table, target="pipelines_dealstagechange"),
                {**parameters, "created_ids": created_ids, "created_keys": created_keys},
            )
            outcome.moves_created += cursor.rowcount

        # Updated and unchanged deals existed before: the caller syncs their history.
        existing = set(keys).difference(created_keys)
        outcome.existing_moves.update(_existing_moves(cursor, table, existing, created_default))


def _partitions_fresh(raw_connection, organization_id: int) -> bool:
    """Return whether this transaction created the organization's partitions and they are still empty."""
    with raw_connection.cursor() as cursor:
        if not partitions.created_in_transaction(cursor, organization_id):
            return False
        checks = " AND ".join(
            f"NOT EXISTS (SELECT 1 FROM {partitions.partition_name(table, organization_id)})"
            for table in partitions.PARTITIONED_TABLES
        )
        cursor.execute(f"SELECT {checks}")
        return cursor.fetchone()[0]


# The fresh path's statements. A staged batch row carries its deal id, drawn from the deal
# sequence as COPY stores it, so ids follow the file and the moves need no join. The
# undated rows get theirs from the column default, after every dated deal.
_FRESH_DEALS_SQL = """
INSERT INTO {target} (
    {id_column}organization_id, source, external_id, name, owner_id, account_id, product_id, pipeline_id,
    stage_id, territory_id, currency, amount, base_amount, probability, status, created_at, expected_close_on,
    closed_at, lost_reason, deal_source, custom_fields, updated_at
)
SELECT {id_value}%(organization_id)s, %(source)s, s.external_id, s.name, s.owner_id, s.account_id, s.product_id,
    %(pipeline_id)s, s.stage_id, s.territory_id, %(currency)s, s.amount, s.base_amount, NULL, s.status,
    COALESCE(s.created_at, %(created_default)s), s.expected_close_on, s.closed_at, '', '',
    CASE WHEN s.is_list_price THEN '{{"amount_source": "list_price"}}'::jsonb ELSE '{{}}'::jsonb END, now()
FROM {table} s
"""
_FRESH_MOVES_SQL = """
INSERT INTO {move_partition} (organization_id, deal_id, from_stage_id, to_stage_id, changed_at, is_implied)
SELECT %(organization_id)s, s.id, m.from_stage_id, m.to_stage_id, m.changed_at, true
FROM {table} s
CROSS JOIN LATERAL (VALUES
    (1, NULL::bigint, s.first_stage_id, s.created_at),
    (2, s.first_stage_id, s.close_stage_id, s.closed_at)
) AS m(number, from_stage_id, to_stage_id, changed_at)
WHERE m.number = 1 OR s.close_stage_id IS NOT NULL
ORDER BY s.id, m.number
"""
# The staged columns that refer to other tables, checked once at the end (the partitions
# have no reference-check triggers while they load).
_REFERENCE_COLUMNS = {
    "owner_id": "spm_membership",
    "account_id": "pipelines_account",
    "product_id": "pipelines_product",
    "territory_id": "goals_territory",
    "stage_id": "pipelines_stage",
    "first_stage_id": "pipelines_stage",
    "close_stage_id": "pipelines_stage",
}


class _FreshPartitionWriter(_BatchWriter):
    """Writer into the empty partitions of an organization created in this transaction; see the module doc.

    The dated rows of each batch go into the partitions, which have no indexes or
    triggers until the end, and the undated rows follow after the last batch. Then the
    references of all rows are checked and locked, and the partitions get their indexes
    and triggers.
    """

    def __init__(self, raw_connection, parameters: dict):
        super().__init__(raw_connection, parameters)
        organization_id = parameters["organization_id"]
        self.deal_partition = partitions.partition_name("pipelines_deal", organization_id)
        self.move_partition = partitions.partition_name("pipelines_dealstagechange", organization_id)
        self.references: dict[str, set[int]] = {column: set() for column in _REFERENCE_COLUMNS}

    def tables_create(self) -> None:
        super().tables_create()
        with self.raw_connection.cursor() as cursor:
            # Each staged row draws its deal id as COPY stores it, in file order.
            cursor.execute(f"ALTER TABLE {_BATCH_TABLE} ADD COLUMN id bigint DEFAULT nextval('pipelines_deal_id_seq')")
            partitions.indexes_drop(cursor, self.parameters["organization_id"])

    def _dated_write(self, cursor, keys: list[str]) -> None:
        """Move the staged dated rows into the partitions with their drawn ids, and their implied moves."""
        parameters = {**self.parameters, "created_default": None}
        cursor.execute(
            _FRESH_DEALS_SQL.format(table=_BATCH_TABLE, target=self.deal_partition, id_column="id, ", id_value="s.id, "),
            parameters,
        )
        cursor.execute(_FRESH_MOVES_SQL.format(table=_BATCH_TABLE, move_partition=self.move_partition), self.parameters)
        self.outcome.moves_created += cursor.rowcount
        self._references_collect(cursor, _BATCH_TABLE)

    def undated_write(self, created_default: dt.datetime) -> None:
        """Insert the rows without a creation time into the partitions, after every dated deal."""
        if not self.undated_keys:
            return
        parameters = {**self.parameters, "created_default": created_default}
        with self.raw_connection.cursor() as cursor:
            cursor.execute(
                _FRESH_DEALS_SQL.format(table=_UNDATED_TABLE, target=self.deal_partition, id_column="", id_value="")
                + "ORDER BY s.line RETURNING id, external_id",
                parameters,
            )
            created_ids, created_keys = [], []
            for deal_id, external_id in cursor.fetchall():
                created_ids.append(deal_id)
                created_keys.append(external_id)
            cursor.execute(
                _MOVES_SQL.format(table=_UNDATED_TABLE, target=self.move_partition),
                {**parameters, "created_ids": created_ids, "created_keys": created_keys},
            )
            self.outcome.moves_created += cursor.rowcount
            self._references_collect(cursor, _UNDATED_TABLE)

    def outcome_finish(self) -> MergeOutcome:
        """Check the references, build the indexes and drop the staging tables. Every key was created."""
        with self.raw_connection.cursor() as cursor:
            self._references_check(cursor)
            partitions.indexes_build(cursor, self.parameters["organization_id"])
            cursor.execute(f"DROP TABLE {_BATCH_TABLE}, {_UNDATED_TABLE}")
        self.outcome.created = set(self.keys)
        return self.outcome

    def _references_collect(self, cursor, table: str) -> None:
        """Add the distinct references of the rows staged in `table` to `self.references`, read by the database."""
        columns = list(_REFERENCE_COLUMNS)
        aggregates = ", ".join(f"array_agg(DISTINCT {column}) FILTER (WHERE {column} IS NOT NULL)" for column in columns)
        cursor.execute(f"SELECT {aggregates} FROM {table}")
        for column, values in zip(columns, cursor.fetchone(), strict=True):
            self.references[column].update(values or ())

    def _references_check(self, cursor) -> None:
        """Lock the rows the loaded deals and moves refer to, as the triggers would, and fail on a missing one."""
        organization_id = self.parameters["organization_id"]
        by_table: dict[str, set[int]] = {}
        for column, parent in _REFERENCE_COLUMNS.items():
            by_table.setdefault(parent, set()).update(self.references[column])
        by_table.setdefault("pipelines_pipeline", set()).add(self.parameters["pipeline_id"])
        for parent, values in by_table.items():
            if not values:
                continue
            cursor.execute(
                f"SELECT p.id FROM {parent} AS p WHERE p.id = ANY(%s) AND p.organization_id = %s"
                " ORDER BY p.id FOR KEY SHARE",
                [sorted(values), organization_id],
            )
            missing = values.difference(row[0] for row in cursor.fetchall())
            if missing:
                raise IntegrityError(
                    f'insert on table "pipelines_deal" violates reference check: {min(missing)} has no row'
                    f" in {parent} of organization {organization_id}"
                )


def _existing_moves(
    cursor, table: str, keys: set[str], created_default: dt.datetime | None
) -> dict[str, list[tuple[int | None, int, dt.datetime]]]:
    """Read the implied moves of the staged deals `keys` back from `table`, for the history sync."""
    if not keys:
        return {}
    cursor.execute(
        f"SELECT external_id, first_stage_id, close_stage_id, COALESCE(created_at, %s), closed_at"
        f" FROM {table} WHERE external_id = ANY(%s)",
        [created_default, sorted(keys)],
    )
    moves = {}
    for key, first_stage_id, close_stage_id, created_at, closed_at in cursor.fetchall():
        moves[key] = [(None, first_stage_id, created_at)]
        if close_stage_id is not None:
            moves[key].append((first_stage_id, close_stage_id, closed_at))
    return moves
