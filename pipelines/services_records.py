"""The record import core: CRM records as plain dicts, validated and written like a file import.

The REST API and the CRM sync hand records to `records_import`. It checks each value with
the parsers of the file importers (`pipelines.importers.formats`) and rejects a bad record
with the same `RowRejected` reasons. The good records go through the same writers as a
file import: `PeopleDirectory` for people, `bulk_upsert` for accounts and activities, and
`deals_write` for deals and their stage history. Everything is matched by external id,
so sending the same records twice changes nothing the second time. One call is one
transaction, writes one `import.finished` audit entry and, when anything changed,
schedules the same KPI recompute after commit as `crm_import`.

Record fields follow. Values are JSON scalars, and dates and times are ISO 8601 strings.
A time without an offset is wall-clock time in the organization's time zone, and a date
alone is 12:00 UTC of that day, as in file imports.

pipelines
    name (required), stages: list of {name (required), kind: open/won/lost (default
    from the name, e.g. "Closed Won" is won), probability: 0–100}. Missing stages are
    created in list order, with won and lost stages last. Existing stages keep their
    order, kind and probability, because an admin may have tuned them.
people
    external_id (required, the person's id in the source), email, name, role: rep or
    manager (default rep; admins stay admins, and nobody becomes admin this way),
    manager (the manager's external id), team (name; the team's manager is the first
    person with role manager whose record names that team), territory (name),
    active_from, active_to (dates). A person is matched by external id, then e-mail,
    then name; unknown people become users without a password. A role sent for an
    admin, and a name other than the stored one of an existing account (an account can
    belong to several organizations), are not applied; `record_warnings` lists each
    such value, and the rest of the record is written.
accounts
    external_id (required), name (default: the external id), sector, country,
    year_established, employees (whole numbers), annual_revenue_amount (millions),
    parent (the parent account's external id, in this call or stored before).
deals
    external_id (required), name, owner (the owner's external id or name) and/or
    owner_email (one is required; an unknown owner becomes a rep), pipeline (name;
    default: the organization's default pipeline, else "Sales"), stage (name), status
    (open, won or lost; it decides over the stage's kind), entry_stage (the stage the
    deal entered when it was created; default: its stage, or the open stage named
    beside a won/lost status), amount, currency (ISO code; default: the call's
    currency), probability (0–100), created_at (required), closed_at (required for
    won and lost deals without stage_changes), expected_close_on (date), lost_reason,
    deal_source, account (external id, else name), product (name; created when
    missing), custom_fields (object; merged into the stored one), deleted (bool),
    deleted_at. Without stage_changes a deal is a snapshot: it gets the implied moves
    "entered entry_stage at created_at" and "closed at closed_at", and a later snapshot
    in another stage appends one move. `deleted: true` on a stored deal sets only its
    `deleted_at` (rows are never deleted); `deleted` false or missing clears it.
stage_changes
    deal (the deal's external id, in this call or stored before under the same
    source), stage (name, in the deal's pipeline), changed_at (required). Moves are
    only appended; a move already stored (same deal, stage and instant) is skipped. The
    latest move decides the deal's stage, status and closed_at, so a move back to an
    earlier stage reopens a won deal. A move on an earlier day than the deal's
    created_at is rejected, and one earlier on the creation day becomes its created_at.
activities
    external_id (required), kind (call, email, meeting, task or note), owner and/or
    owner_email (as for deals), occurred_at (required), deal (external id), account
    (external id, else name), type_name, subject, outcome, is_done (default true),
    is_captured (default false), duration_minutes.
"""

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from integrations.webhooks.events import import_finished_emit
from pipelines.importers.record_writer import RecordError, RecordsImportResult, RecordsWriter
from pipelines.services import kpi_recompute_schedule
from spm.audit import IMPORT_FINISHED, audit_record
from spm.currencies import is_currency_code
from spm.models import Organization, User

__all__ = ["RECORD_ENTITIES", "RecordError", "RecordsImportResult", "RecordsSourceError", "records_import"]

logger = logging.getLogger(__name__)

RECORD_ENTITIES = ("pipelines", "people", "accounts", "deals", "stage_changes", "activities")


class RecordsSourceError(Exception):
    """The call as a whole cannot run: the source or currency is invalid."""


def records_import(
    *,
    organization: Organization,
    source: str,
    pipelines: Iterable[Mapping] = (),
    people: Iterable[Mapping] = (),
    accounts: Iterable[Mapping] = (),
    deals: Iterable[Mapping] = (),
    stage_changes: Iterable[Mapping] = (),
    activities: Iterable[Mapping] = (),
    currency: str | None = None,
    actor: User | None = None,
    label: str = "",
    today: dt.date | None = None,
) -> RecordsImportResult:
    """Validate and upsert records of `source` in one transaction and return the counts and rejections.

    `source` names the system the external ids belong to (e.g. "api", "hubspot"); deals
    and activities are matched by (source, external id). `currency` is the default ISO
    code of deal amounts (default: the organization's base currency). `today` is the
    date at which open deals are converted to the base currency (default: today in the
    organization's time zone). `label` is stored in the audit entry (e.g. "api"). A
    rejected record is listed in `record_errors` and skipped, and the others are kept. A
    value that a written record carried but the import did not apply is listed in
    `record_warnings`.
    Raises RecordsSourceError for an invalid source or currency. See the module
    docstring for the record fields.
    """
    source = (source or "").strip()
    if not source or len(source) > 32:
        raise RecordsSourceError(
            gettext("Invalid source %(source)r; give the name of the source system, at most 32 characters.")
            % {"source": source}
        )
    currency = (currency or organization.currency).upper()
    if not is_currency_code(currency):
        raise RecordsSourceError(
            gettext("Currency %(currency)s is not a three-letter ISO code such as EUR or USD.") % {"currency": currency}
        )
    if today is None:
        today = timezone.localdate(timezone=organization.tzinfo)
    started = time.monotonic()

    with transaction.atomic():
        writer = RecordsWriter(
            organization=organization, source=source, currency=currency, today=today, label=label or source
        )
        writer.write_pipelines(list(pipelines))
        writer.write_people(list(people))
        writer.write_accounts(list(accounts))
        writer.write_deals(list(deals), list(stage_changes))
        writer.write_activities(list(activities))
        result = writer.result
        result.duration_seconds = time.monotonic() - started

        audit_record(
            organization=organization,
            actor=actor,
            action=IMPORT_FINISHED,
            object_type="import",
            object_id=source,
            after=result.as_dict(),
        )
        import_finished_emit(organization_id=organization.pk, summary=result.as_dict())
        # Nothing changed: the snapshots already match the data.
        if result.has_changes:
            kpi_recompute_schedule(organization_id=organization.pk)

    logger.info(
        "Records imported organization_id=%s source=%s deals_created=%s deals_updated=%s rejected=%s seconds=%.2f",
        organization.pk,
        source,
        result.counts["deals"].created,
        result.counts["deals"].updated,
        len(result.record_errors),
        result.duration_seconds,
    )
    return result
