"""PostgreSQL bulk path of the deal import: COPY into a staging table, then one merge.

`deals_merge` writes what `bulk_upsert` plus `stage_history_sync` plus
`deal_close_state_refresh` would write for the deals a file creates, in a few
set-based statements:

1. COPY the parsed rows into a temporary table (dropped at commit).
2. One INSERT ... ON CONFLICT DO UPDATE into pipelines_deal. Rows whose fields all
   equal the stored ones are not touched, so RETURNING lists exactly the created
   (`xmax = 0`) and updated deals.
3. For created deals, one INSERT ... SELECT of their implied moves. Their stage,
   status and `closed_at` were already set in step 2 from the same moves (the latest
   move decides), which is what `deal_close_state_refresh` derives for a deal whose
   history is only these moves.

Deals that existed before keep the general path: the caller syncs their history and
refreshes them with the ORM functions, so moves a person recorded are respected.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

# Columns of the staging table, in COPY order.
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

# Fields the file states; a deal whose stored values equal these is unchanged.
_COMPARED = ("name", "owner_id", "account_id", "product_id", "pipeline_id", "stage_id", "territory_id",
             "currency", "amount", "base_amount", "created_at", "expected_close_on")  # fmt: skip

_MERGE_SQL = """
INSERT INTO pipelines_deal (
    organization_id, source, external_id, name, owner_id, account_id, product_id, pipeline_id, stage_id,
    territory_id, currency, amount, base_amount, probability, status, created_at, expected_close_on,
    closed_at, lost_reason, deal_source, custom_fields, updated_at
)
SELECT %(organization_id)s, %(source)s, s.external_id, s.name, s.owner_id, s.account_id, s.product_id,
    %(pipeline_id)s, s.stage_id, s.territory_id, %(currency)s, s.amount, s.base_amount, NULL, s.status,
    s.created_at, s.expected_close_on, s.closed_at, '', '',
    CASE WHEN s.is_list_price THEN '{{"amount_source": "list_price"}}'::jsonb ELSE '{{}}'::jsonb END, now()
FROM import_deal_staging s
ORDER BY s.line
ON CONFLICT (organization_id, source, external_id) DO UPDATE SET
    {updates},
    custom_fields = (pipelines_deal.custom_fields - 'amount_source') || EXCLUDED.custom_fields,
    updated_at = now()
WHERE ({current}) IS DISTINCT FROM ({excluded})
    OR ((pipelines_deal.custom_fields - 'amount_source') || EXCLUDED.custom_fields) IS DISTINCT FROM pipelines_deal.custom_fields
RETURNING id, external_id, (xmax = 0) AS created
"""

# Implied moves of the created deals: the first stage at creation, then the close.
# Inserted in two statements so that ids follow time within each deal.
_MOVES_SQL = """
INSERT INTO pipelines_dealstagechange (organization_id, deal_id, from_stage_id, to_stage_id, changed_at, is_implied)
SELECT %(organization_id)s, d.id, {from_stage}, {to_stage}, {changed_at}, true
FROM import_deal_staging s
JOIN pipelines_deal d ON d.organization_id = %(organization_id)s AND d.source = %(source)s AND d.external_id = s.external_id
JOIN unnest(%(created_ids)s::bigint[]) AS created(id) ON created.id = d.id
WHERE true {condition}
ORDER BY d.id
"""


@dataclass
class MergeOutcome:
    ids: dict[str, int]
    created: set[str]
    updated: set[str]
    unchanged: set[str]
    moves_created: int


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    """One value in COPY's text format; the common types first, as this runs for every cell."""
    if value is None:
        return "\\N"
    kind = value.__class__
    if kind is str:
        return value.translate(_COPY_ESCAPES)
    if kind is bool:
        return "t" if value else "f"
    if kind is dt.datetime:
        return value.isoformat()
    return str(value)


def deals_merge(
    *,
    organization_id: int,
    source: str,
    pipeline_id: int,
    currency: str,
    rows: Iterable[tuple],
) -> MergeOutcome:
    """Stage `rows` (tuples in STAGING_COLUMNS order) and merge them into pipelines_deal; see the module doc.

    PostgreSQL only; the caller owns the transaction. Returns every key's deal id,
    the keys created, updated and unchanged, and how many moves were written for
    the created deals.
    """
    names = ", ".join(f"{name} {kind}" for name, kind in STAGING_COLUMNS)
    keys: list[str] = []
    with connection.cursor() as cursor:
        # A second import in the same transaction finds the first one's table.
        cursor.execute("DROP TABLE IF EXISTS import_deal_staging")
        cursor.execute(f"CREATE TEMPORARY TABLE import_deal_staging ({names}) ON COMMIT DROP")
        with cursor.cursor.copy(
            f"COPY import_deal_staging ({', '.join(name for name, _kind in STAGING_COLUMNS)}) FROM STDIN"
        ) as copy:
            buffer = []
            for row in rows:
                keys.append(row[0])
                buffer.append("\t".join(_copy_value(value) for value in row) + "\n")
                if len(buffer) >= 5000:
                    copy.write("".join(buffer))
                    buffer = []
            if buffer:
                copy.write("".join(buffer))
        cursor.execute("ANALYZE import_deal_staging")

        parameters = {
            "organization_id": organization_id,
            "source": source,
            "pipeline_id": pipeline_id,
            "currency": currency,
        }
        updates = ", ".join(f"{field} = EXCLUDED.{field}" for field in _COMPARED)
        current = ", ".join(f"pipelines_deal.{field}" for field in _COMPARED)
        excluded = ", ".join(f"EXCLUDED.{field}" for field in _COMPARED)
        cursor.execute(_MERGE_SQL.format(updates=updates, current=current, excluded=excluded), parameters)
        ids, created, updated = {}, set(), set()
        created_ids = []
        for deal_id, external_id, is_created in cursor.fetchall():
            ids[external_id] = deal_id
            if is_created:
                created.add(external_id)
                created_ids.append(deal_id)
            else:
                updated.add(external_id)

        moves_created = 0
        if created_ids:
            parameters["created_ids"] = created_ids
            cursor.execute(
                _MOVES_SQL.format(from_stage="NULL", to_stage="s.first_stage_id", changed_at="s.created_at", condition=""),
                parameters,
            )
            moves_created += cursor.rowcount
            cursor.execute(
                _MOVES_SQL.format(
                    from_stage="s.first_stage_id",
                    to_stage="s.close_stage_id",
                    changed_at="s.closed_at",
                    condition="AND s.close_stage_id IS NOT NULL",
                ),
                parameters,
            )
            moves_created += cursor.rowcount

        # Unchanged deals were not returned; their ids come from the table.
        missing = [key for key in keys if key not in ids]
        if missing:
            cursor.execute(
                "SELECT d.external_id, d.id FROM pipelines_deal d JOIN unnest(%s::text[]) AS wanted(key)"
                " ON wanted.key = d.external_id WHERE d.organization_id = %s AND d.source = %s",
                [missing, organization_id, source],
            )
            ids.update(dict(cursor.fetchall()))
        cursor.execute("DROP TABLE import_deal_staging")
    unchanged = set(keys) - created - updated
    return MergeOutcome(ids=ids, created=created, updated=updated, unchanged=unchanged, moves_created=moves_created)
