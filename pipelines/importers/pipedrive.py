"""Importer for Pipedrive exports: the deal change log with its lookup files, or a deals list.

The change log (deal_changes.csv with stages.csv, users.csv, activity.csv,
activity_types.csv and optionally fields.csv) has one row per field change of a deal:
`add_time` (created), `stage_id` (a stage move), `user_id` (an owner change) and
`lost_reason`. Its timestamps have no time zone, so they are read as wall-clock times in
the organization's time zone. The mapping:

- users → members with the rep role, matched by e-mail address. A second user id with
  an e-mail address already listed is merged into the first and reported.
- stages.csv → open stages of the pipeline "Pipedrive" in stage_id order. Stages are
  matched by name without regard to case, because fields.csv spells "Qualified Lead"
  where stages.csv has "Qualified lead".
- add_time → created_at; a deal with two add_time rows keeps the earliest, and the
  other row is reported. A deal whose first stage_id row lies on an earlier day than
  add_time is rejected, because moving its creation back would shift its pipeline into
  an earlier KPI period. A stage_id row earlier on the add_time day becomes created_at.
- stage_id rows → recorded stage moves in time order; user_id → the owner is the last one.
- lost_reason → kept as the custom field `lost_reason` only; the deal stays open. The log
  has a lost_reason event for every deal, including deals that reached the last stage
  (Renewal/Expansion), and no won or lost status, so the event does not show that a deal
  was lost. Marking them lost would turn every deal into a loss.
- activity.csv → activities; the type's name in activity_types.csv gives the kind (a
  "Call" is a call), `done` gives is_done and `due_to` the time. A repeated activity id
  keeps its first row and reports the others.

The deals list is Pipedrive's "Export deals" file with `Deal - Title`, `Deal - Stage`,
`Deal - Status` (open, won, lost) and related columns; see `PipedriveDealsImport`.
"""

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext_noop

from pipelines.importers.base import (
    EntityCounts,
    ImportResult,
    ImportSourceError,
    Message,
    RowRejected,
    bulk_upsert,
    check_length,
    fetch_by_keys,
)
from pipelines.importers.deal_writer import (
    BaseAmountConverter,
    DealRecord,
    Move,
    PipelineStages,
    close_time_missing,
    deal_owners_assign,
    deal_stages_assign,
    deals_write,
    stage_entry_check,
)
from pipelines.importers.emails import email_check
from pipelines.importers.formats import (
    Table,
    close_time_settle,
    import_date_range,
    parse_bool,
    parse_day,
    parse_moment,
    parse_money,
    table_read,
    text_cell,
)
from pipelines.importers.people import MAX_NAME_LENGTH, PeopleDirectory, Person
from pipelines.models import Activity, ActivityKind, Deal, StageKind
from spm.currencies import is_currency_code
from spm.models import Organization

logger = logging.getLogger(__name__)

SOURCE = "pipedrive"
PIPELINE_NAME = "Pipedrive"
CHANGES_FILE = "deal_changes.csv"
STAGES_FILE = "stages.csv"
USERS_FILE = "users.csv"
ACTIVITY_FILE = "activity.csv"
ACTIVITY_TYPES_FILE = "activity_types.csv"
FIELDS_FILE = "fields.csv"
# The maximum length of Activity.type_name.
ACTIVITY_TYPE_NAME_MAX_LENGTH = 100
DEALS_COLUMNS = ("Deal - Title", "Deal - Stage", "Deal - Owner", "Deal - Status", "Deal - Creation date")
# Rows between two progress reports.
PROGRESS_STEP = 500


def pipedrive_import(
    *,
    organization: Organization,
    path: Path,
    currency: str,
    today: dt.date,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a Pipedrive export folder: the change log if deal_changes.csv is there, else a deals list."""
    options = options or {}
    importer = None
    if (path / CHANGES_FILE).is_file():
        importer = PipedriveChangeLogImport(organization=organization, folder=path, currency=currency, today=today, options=options)
    for candidate in sorted(path.iterdir()) if importer is None and path.is_dir() else []:
        if candidate.suffix.lower() in (".csv", ".xlsx", ".txt"):
            table = table_read(candidate, columns=("Deal - Title",))
            if "Deal - Title" in table.header:
                importer = PipedriveDealsImport(
                    organization=organization, table=table, folder=path, currency=currency, today=today, options=options
                )
                break
    if importer is not None:
        importer.result.progress = progress
        return importer.run()
    raise ImportSourceError(
        Message(gettext_noop(
            "No Pipedrive export found: expected deal_changes.csv (change log) or a deals export with the column "
            "\"Deal - Title\"."
        ))
    )


def activity_kind_from_type(name: str, key: str) -> str:
    """Map a CRM activity type (its name, else its key) to call, email, meeting, task or note; unknown → task."""
    for text in (name.casefold(), key.casefold()):
        if "call" in text or "anruf" in text or "telefon" in text:
            return ActivityKind.CALL
        if "mail" in text:
            return ActivityKind.EMAIL
        if "meeting" in text or "termin" in text or "demo" in text:
            return ActivityKind.MEETING
        if "note" in text or "notiz" in text:
            return ActivityKind.NOTE
        if "task" in text or "aufgabe" in text or "deadline" in text:
            return ActivityKind.TASK
    return ActivityKind.TASK


class PipedriveChangeLogImport:
    def __init__(self, *, organization: Organization, folder: Path, currency: str, today: dt.date, options: dict):
        self.organization = organization
        self.folder = folder
        self.currency = currency
        self.today = today
        self.allowed_days = import_date_range(today)
        self.time_zone = organization.tzinfo
        self.result = ImportResult(source=SOURCE, path=str(folder), currency=currency)
        self.result.counts["activities"] = EntityCounts()
        self.user_members: dict[str, object] = {}
        # users.csv line of each rejected user id, so rows naming that id can point there.
        self.rejected_user_lines: dict[str, int] = {}

    def run(self) -> ImportResult:
        # Read and check every file first, so a missing file or column fails before any write.
        changes = table_read(self.folder / CHANGES_FILE)
        changes.require_columns(("deal_id", "change_time", "changed_field_key", "new_value"))
        stages = table_read(self.folder / STAGES_FILE)
        stages.require_columns(("stage_id", "stage_name"))
        users = table_read(self.folder / USERS_FILE)
        users.require_columns(("id", "email"))
        activities = activity_types = None
        if (self.folder / ACTIVITY_FILE).is_file():
            activities = table_read(self.folder / ACTIVITY_FILE)
            activities.require_columns(("activity_id", "type", "assigned_to_user", "done", "due_to"))
            activity_types = table_read(self.folder / ACTIVITY_TYPES_FILE)
            activity_types.require_columns(("name", "type"))
        lost_reasons = self.lost_reason_labels()
        self.total = len(changes.rows) + len(users.rows) + (len(activities.rows) if activities else 0)
        self.done = 0

        self.import_users(users)
        stage_by_id = self.import_stages(stages)
        self.import_deals(changes, stage_by_id, lost_reasons)
        if activities is not None:
            self.import_activities(activities, activity_types)
        self.result.report_progress(self.total, self.total)
        return self.result

    def advance(self, rows: int) -> None:
        self.done += rows
        self.result.report_progress(min(self.done, self.total), self.total)

    def lost_reason_labels(self) -> dict[str, str]:
        """Return lost-reason option ids → labels from fields.csv, or {} when the file is absent."""
        path = self.folder / FIELDS_FILE
        if not path.is_file():
            return {}
        table = table_read(path)
        table.require_columns(("FIELD_KEY", "FIELD_VALUE_OPTIONS"))
        for line, row in table.rows:
            if row["FIELD_KEY"] != "lost_reason" or not row["FIELD_VALUE_OPTIONS"]:
                continue
            try:
                options = json.loads(row["FIELD_VALUE_OPTIONS"])
                return {str(option["id"]): str(option["label"]) for option in options}
            except (ValueError, KeyError, TypeError):
                self.result.reject(
                    "deals",
                    FIELDS_FILE,
                    line,
                    RowRejected("FIELD_VALUE_OPTIONS", row["FIELD_VALUE_OPTIONS"][:200], gettext_noop("invalid JSON list of options")),
                )
        return {}

    def import_users(self, table: Table) -> None:
        first_by_email: dict[str, tuple[str, int]] = {}
        aliases: dict[str, str] = {}
        people = []
        for line, row in table.rows:
            user_id = row.get("id", "")
            email = row.get("email", "").strip().lower()
            try:
                if not user_id:
                    raise RowRejected("id", user_id, gettext_noop("missing value"))
                email_check(email, "email", row.get("email", ""))
                check_length(row.get("name", ""), "name", MAX_NAME_LENGTH)
                if email in first_by_email:
                    first_id, first_line = first_by_email[email]
                    aliases[user_id] = first_id
                    raise RowRejected(
                        "email",
                        row.get("email", ""),
                        gettext_noop(
                            "duplicate e-mail address of user id %(id)s on line %(line)d; this user's deals and "
                            "activities go to that person"
                        ),
                        id=first_id,
                        line=first_line,
                    )
            except RowRejected as rejection:
                self.result.reject("people", USERS_FILE, line, rejection)
                if user_id and user_id not in aliases:
                    self.rejected_user_lines.setdefault(user_id, line)
                continue
            first_by_email[email] = (user_id, line)
            people.append(Person(key=email, email=email, name=row.get("name", "")))
        directory = PeopleDirectory(organization=self.organization, result=self.result)
        members = directory.ensure(people)
        for email, (user_id, line) in first_by_email.items():
            if email in members:
                self.user_members[user_id] = members[email]
            else:
                # The address belongs to an account outside this organization.
                self.result.reject("people", USERS_FILE, line, directory.conflict_rejection(email, "email"))
                self.rejected_user_lines.setdefault(user_id, line)
        for alias, user_id in aliases.items():
            if user_id in self.user_members:
                self.user_members[alias] = self.user_members[user_id]
            else:
                self.rejected_user_lines.setdefault(alias, self.rejected_user_lines[user_id])
        self.advance(len(table.rows))

    def user_unknown(self, column: str, user_id: str) -> RowRejected:
        """Return the rejection of a row naming `user_id`, which users.csv lacks or rejected."""
        if user_id in self.rejected_user_lines:
            return RowRejected(
                column,
                user_id,
                gettext_noop("the user with this id was rejected on line %(line)d of users.csv; fix that row first"),
                line=self.rejected_user_lines[user_id],
            )
        return RowRejected(column, user_id, gettext_noop("unknown user id; it is not in users.csv"))

    def import_stages(self, table: Table) -> dict[str, object]:
        parsed = []
        for line, row in table.rows:
            try:
                stage_id = row.get("stage_id", "")
                if not stage_id.isdigit():
                    raise RowRejected("stage_id", stage_id, gettext_noop("invalid whole number"))
                name = text_cell(row.get("stage_name", ""), "stage_name", 200)
                if not name:
                    raise RowRejected("stage_name", name, gettext_noop("missing value"))
            except RowRejected as rejection:
                self.result.reject("deals", STAGES_FILE, line, rejection)
                continue
            parsed.append((int(stage_id), name))
        pipeline_stages = PipelineStages(organization=self.organization, name=PIPELINE_NAME)
        return {str(stage_id): pipeline_stages.get(name, kind=StageKind.OPEN) for stage_id, name in sorted(parsed)}

    def import_deals(self, table: Table, stage_by_id: dict, lost_reasons: dict[str, str]) -> None:
        """Group the change log by deal and write one deal per deal_id with its recorded moves."""
        events: dict[str, list] = defaultdict(list)
        for line, row in table.rows:
            deal_id = row.get("deal_id", "")
            key = row.get("changed_field_key", "")
            value = row.get("new_value", "")
            try:
                if not deal_id:
                    raise RowRejected("deal_id", deal_id, gettext_noop("missing value"))
                changed_at = parse_moment(
                    row.get("change_time", ""), "change_time", time_zone=self.time_zone, allowed=self.allowed_days
                )
                if key == "add_time":
                    value = (parse_moment(value, "new_value", time_zone=self.time_zone, allowed=self.allowed_days), value)
                elif key == "stage_id":
                    if value not in stage_by_id:
                        raise RowRejected("new_value", value, gettext_noop("unknown stage id; it is not in stages.csv"))
                    value = stage_by_id[value]
                elif key == "user_id":
                    if value not in self.user_members:
                        raise self.user_unknown("new_value", value)
                    value = self.user_members[value]
            except RowRejected as rejection:
                self.result.reject("deals", CHANGES_FILE, line, rejection)
                continue
            events[deal_id].append((changed_at, line, key, value, row.get("change_time", "")))
            if line % PROGRESS_STEP == 0:
                self.advance(PROGRESS_STEP)

        records = []
        for deal_id, deal_events in events.items():
            deal_events.sort(key=lambda event: (event[0], event[1]))
            added = [event for event in deal_events if event[2] == "add_time"]
            added.sort(key=lambda event: event[3][0])
            for _changed_at, line, _key, (_moment, text), _time_text in added[1:]:
                rejection = RowRejected(
                    "new_value",
                    text,
                    gettext_noop("second add_time row of this deal; the earliest creation time (line %(line)d) is kept"),
                    line=added[0][1],
                )
                self.result.reject("deals", CHANGES_FILE, line, rejection)
            owners = [event[3] for event in deal_events if event[2] == "user_id"]
            moves = [Move(event[3].pk, event[0]) for event in deal_events if event[2] == "stage_id"]
            first_line = deal_events[0][1]
            if not owners or not moves:
                column = "user_id" if not owners else "stage_id"
                rejection = RowRejected(
                    "deal_id",
                    deal_id,
                    gettext_noop("the change log has no %(field)s row for this deal, so it cannot be imported"),
                    field=column,
                )
                self.result.reject("deals", CHANGES_FILE, first_line, rejection)
                continue
            created_at = added[0][3][0] if added else deal_events[0][0]
            if added:
                # Events are in time order, so the first stage_id row is the earliest move.
                _moved_at, move_line, _key, _stage, move_text = next(event for event in deal_events if event[2] == "stage_id")
                try:
                    stage_entry_check(
                        entered_at=moves[0].changed_at,
                        created_at=created_at,
                        time_zone=self.time_zone,
                        column="change_time",
                        value=move_text,
                        created_in=Message(gettext_noop("add_time on line %(line)d"), {"line": added[0][1]}),
                    )
                except RowRejected as rejection:
                    self.result.reject("deals", CHANGES_FILE, move_line, rejection)
                    continue
            # Moves on earlier days were rejected above, so this keeps the creation day.
            created_at = min(created_at, moves[0].changed_at)
            custom_fields = {}
            reasons = [event[3] for event in deal_events if event[2] == "lost_reason"]
            if reasons:
                custom_fields["lost_reason"] = lost_reasons.get(reasons[-1], reasons[-1])
            stage = next(event[3] for event in reversed(deal_events) if event[2] == "stage_id")
            records.append(
                DealRecord(
                    line=first_line,
                    external_id=deal_id,
                    values={
                        "name": "",
                        "owner_id": owners[-1].pk,
                        "territory_id": owners[-1].territory_id,
                        "pipeline_id": stage.pipeline_id,
                        "stage_id": stage.pk,
                        "currency": self.organization.currency,
                        "created_at": created_at,
                        "custom_fields": custom_fields,
                    },
                    moves=moves,
                )
            )
        self.advance(len(table.rows) % PROGRESS_STEP)
        deals_write(
            organization=self.organization,
            source=SOURCE,
            records=records,
            result=self.result,
            observed_at=timezone.now(),
        )

    def import_activities(self, table: Table, types: Table) -> None:
        type_names = {row["type"]: row.get("name", "") for _line, row in types.rows if row.get("type")}
        deal_ids = {row.get("deal_id", "") for _line, row in table.rows} - {""}
        deals = fetch_by_keys(Deal.all_objects.filter(organization=self.organization, source=SOURCE), "external_id", deal_ids)
        first_line: dict[str, int] = {}
        desired = {}

        for line, row in table.rows:
            activity_id = row.get("activity_id", "")
            try:
                if not activity_id:
                    raise RowRejected("activity_id", activity_id, gettext_noop("missing value"))
                if activity_id in first_line:
                    raise RowRejected(
                        "activity_id",
                        activity_id,
                        gettext_noop("duplicate activity id; the row on line %(line)d is kept and this one skipped"),
                        line=first_line[activity_id],
                    )
                type_key = row.get("type", "")
                if type_key not in type_names:
                    raise RowRejected("type", type_key, gettext_noop("unknown activity type; it is not in activity_types.csv"))
                if len(type_names[type_key]) > ACTIVITY_TYPE_NAME_MAX_LENGTH:
                    raise RowRejected(
                        "type",
                        type_key,
                        gettext_noop("the name of this activity type in activity_types.csv is too long; at most %(max_length)d characters"),
                        max_length=ACTIVITY_TYPE_NAME_MAX_LENGTH,
                    )
                owner = self.user_members.get(row.get("assigned_to_user", ""))
                if owner is None:
                    raise self.user_unknown("assigned_to_user", row.get("assigned_to_user", ""))
                occurred_at = parse_moment(row.get("due_to", ""), "due_to", time_zone=self.time_zone, allowed=self.allowed_days)
                is_done = parse_bool(row.get("done", ""), "done")
            except RowRejected as rejection:
                self.result.reject("activities", ACTIVITY_FILE, line, rejection)
                continue
            first_line[activity_id] = line
            deal = deals.get(row.get("deal_id", ""))
            desired[activity_id] = {
                "kind": activity_kind_from_type(type_names[type_key], type_key),
                "type_name": type_names[type_key],
                "owner_id": owner.pk,
                "deal_id": deal.pk if deal else None,
                "occurred_at": occurred_at,
                "is_done": is_done,
            }

        existing = fetch_by_keys(
            Activity.objects.filter(organization=self.organization, source=SOURCE), "external_id", desired
        )
        outcome = bulk_upsert(
            model=Activity,
            existing=existing,
            desired=desired,
            build=lambda key, values: Activity(organization=self.organization, source=SOURCE, external_id=key, **values),
        )

        counts = self.result.counts["activities"]
        counts.created += len(outcome.created)
        counts.updated += len(outcome.updated)
        counts.unchanged += len(outcome.unchanged)
        self.advance(len(table.rows))


class PipedriveDealsImport:
    """Pipedrive's deals export: one row per deal with its current stage and status, no history.

    `Deal - ID` is the key when present; without it the title is, so titles must then be
    unique. Won and lost deals move to the stages "Won" and "Lost" at `Deal - Won time` or
    `Deal - Lost time`. Amounts are in `Deal - Currency of value` (default: the file's currency).
    Only the pipelines and stages that accepted deals use are created.
    """

    def __init__(self, *, organization: Organization, table: Table, folder: Path, currency: str, today: dt.date, options: dict):
        self.organization = organization
        self.table = table
        self.currency = currency
        self.today = today
        self.date_order = options.get("date_order", "")
        self.allowed_days = import_date_range(today)
        self.time_zone = organization.tzinfo
        self.result = ImportResult(source=SOURCE, path=str(folder), currency=currency)

    def moment(self, row: dict, column: str) -> dt.datetime | None:
        value = row.get(column, "")
        if not value:
            return None
        return parse_moment(value, column, time_zone=self.time_zone, date_order=self.date_order, allowed=self.allowed_days)

    def run(self) -> ImportResult:
        table = self.table
        table.require_columns(DEALS_COLUMNS)
        key_column = "Deal - ID" if "Deal - ID" in table.header else "Deal - Title"
        pipelines: dict[str, PipelineStages] = {}
        converter = BaseAmountConverter(organization=self.organization, today=self.today)
        records = []
        first_line: dict[str, int] = {}
        for index, (line, row) in enumerate(table.rows, start=1):
            try:
                records.append(self.record(line, row, key_column, pipelines, converter, first_line))
            except RowRejected as rejection:
                self.result.reject("deals", table.file_name, line, rejection)
            if index % PROGRESS_STEP == 0:
                self.result.report_progress(index, len(table.rows))
        records = deal_owners_assign(
            directory=PeopleDirectory(organization=self.organization, result=self.result),
            records=records,
            column="Deal - Owner",
            reject=lambda record, rejection: self.result.reject("deals", table.file_name, record.line, rejection),
        )
        deal_stages_assign(records=records, pipelines=pipelines.values())
        for stages in pipelines.values():
            stages.order_closed_last()
        deals_write(
            organization=self.organization, source=SOURCE, records=records, result=self.result, observed_at=timezone.now()
        )
        self.result.report_progress(len(table.rows), len(table.rows))
        return self.result

    def record(self, line, row, key_column, pipelines, converter, first_line) -> DealRecord:
        external_id = text_cell(row.get(key_column, ""), key_column, 200)
        if not external_id:
            raise RowRejected(key_column, external_id, gettext_noop("missing value"))
        if external_id in first_line:
            raise RowRejected(
                key_column, external_id, gettext_noop("duplicate deal; first listed on line %(line)d"), line=first_line[external_id]
            )
        owner = row.get("Deal - Owner", "")
        if not owner:
            raise RowRejected("Deal - Owner", "", gettext_noop("missing value"))
        # A longer name would not fit Pipeline.name, and a cut one would not match on the next import.
        pipeline_name = text_cell(row.get("Deal - Pipeline", ""), "Deal - Pipeline", 200) or PIPELINE_NAME
        # Pipelines are matched ignoring case and surrounding spaces, as PipelineStages matches stored ones.
        pipeline_key = pipeline_name.strip().casefold()
        stages = pipelines.get(pipeline_key)
        if stages is None:
            stages = pipelines[pipeline_key] = PipelineStages(organization=self.organization, name=pipeline_name)
        stage_name = text_cell(row.get("Deal - Stage", ""), "Deal - Stage", 200)
        if not stage_name:
            raise RowRejected("Deal - Stage", stage_name, gettext_noop("missing value"))
        # Planned stages are created by `deal_stages_assign` only if the row is accepted.
        open_stage = stages.plan(stage_name, kind=StageKind.OPEN)
        status = row.get("Deal - Status", "").strip().casefold()
        created_at = self.moment(row, "Deal - Creation date")
        if created_at is None:
            raise RowRejected("Deal - Creation date", "", gettext_noop("missing value"))
        closed_at = None
        stage = open_stage
        if status in ("won", "gewonnen"):
            closed_at = self.moment(row, "Deal - Won time")
            if closed_at is None:
                raise close_time_missing(
                    column="Deal - Won time",
                    in_file="Deal - Won time" in self.table.header,
                    needs=Message(gettext_noop("a won deal needs its won time")),
                )
            stage = stages.plan("Won", kind=StageKind.WON)
        elif status in ("lost", "verloren"):
            closed_at = self.moment(row, "Deal - Lost time")
            if closed_at is None:
                raise close_time_missing(
                    column="Deal - Lost time",
                    in_file="Deal - Lost time" in self.table.header,
                    needs=Message(gettext_noop("a lost deal needs its lost time")),
                )
            stage = stages.plan("Lost", kind=StageKind.LOST)
        elif status not in ("open", "offen", ""):
            raise RowRejected("Deal - Status", row.get("Deal - Status", ""), gettext_noop("unknown status; expected open, won or lost"))
        if closed_at is not None:
            close_column = "Deal - Won time" if stage.kind == StageKind.WON else "Deal - Lost time"
            closed_at = close_time_settle(closed_at, created_at, close_text=row[close_column], time_zone=self.time_zone)
            if closed_at is None:
                raise RowRejected("Deal - Creation date", row["Deal - Creation date"], gettext_noop("created after the deal was closed"))

        currency = (row.get("Deal - Currency of value", "") or self.currency).upper()
        if not is_currency_code(currency):
            raise RowRejected("Deal - Currency of value", currency, gettext_noop("not an ISO 4217 currency code; use a code such as EUR, CHF or USD"))
        amount_text = row.get("Deal - Value", "")
        amount = parse_money(amount_text, "Deal - Value", currency=currency) if amount_text else None
        base_amount = converter.convert(
            amount, currency, closed_at.astimezone(self.time_zone).date() if closed_at else None, "Deal - Value", amount_text
        )
        expected_text = row.get("Deal - Expected close date", "")
        expected = (
            parse_day(expected_text, "Deal - Expected close date", date_order=self.date_order, allowed=self.allowed_days)
            if expected_text
            else None
        )
        first_line[external_id] = line
        return DealRecord(
            line=line,
            external_id=external_id,
            values={
                "name": text_cell(row.get("Deal - Title", ""), "Deal - Title", 300),
                "amount": amount,
                "currency": currency,
                "base_amount": base_amount,
                "created_at": created_at,
                "expected_close_on": expected,
                "lost_reason": text_cell(row.get("Deal - Lost reason", ""), "Deal - Lost reason", 300),
            },
            closed_at=closed_at,
            owner=Person(key=owner, name=owner),
            stages=stages,
            stage=stage,
            entry_stage=open_stage,
        )
