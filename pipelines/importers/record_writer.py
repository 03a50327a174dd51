"""The writer behind `pipelines.services_records.records_import`: checks records and writes them like a file import."""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext_noop

from goals.models import Team, Territory
from pipelines.importers.base import (
    EntityCounts,
    ImportResult,
    Message,
    RowError,
    RowRejected,
    bulk_upsert,
    chunked,
    fetch_by_keys,
    parse_int,
)
from pipelines.importers.deal_writer import (
    BaseAmountConverter,
    DealRecord,
    PipelineStages,
    PlannedMove,
    deal_owners_assign,
    deal_stages_assign,
    deals_write,
    stage_entry_check,
    stage_kind_from_name,
    stage_moves_append,
)
from pipelines.importers.emails import email_check
from pipelines.importers.formats import (
    close_time_settle,
    import_date_range,
    parse_percent,
)
from pipelines.importers.generic import STATUS_WORDS
from pipelines.importers.people import MAX_EXTERNAL_ID_LENGTH, PeopleDirectory, Person
from pipelines.importers.record_values import (
    bool_value,
    day_value,
    duplicate_rejection,
    moment_value,
    money_value,
    required_text,
    shown_value,
    text_value,
    whole_number_value,
)
from pipelines.models import (
    Account,
    Activity,
    ActivityKind,
    Deal,
    DealStageChange,
    Pipeline,
    Product,
    StageKind,
)
from pipelines.services import deal_close_state_refresh
from spm.currencies import is_currency_code
from spm.models import Membership, Organization, Role

logger = logging.getLogger(__name__)

COUNTED_ENTITIES = ("pipelines", "people", "teams", "territories", "accounts", "products", "deals", "stage_changes", "activities")
DEFAULT_PIPELINE_NAME = "Sales"
STAGE_NAME_BY_KIND = {StageKind.WON: "Won", StageKind.LOST: "Lost", StageKind.OPEN: "Open"}


@dataclass(frozen=True)
class RecordError:
    """A rejected record: its list and position (from 0), its external id if it had one, and the bad value."""

    entity: str
    index: int
    external_id: str
    field: str
    value: str
    reason: Message

    def as_dict(self) -> dict[str, Any]:
        """Return the record for an API response, with the reason in the active language."""
        return {
            "entity": self.entity,
            "index": self.index,
            "external_id": self.external_id,
            "field": self.field,
            "value": self.value,
            "reason": str(self.reason),
        }


@dataclass
class RecordsImportResult(ImportResult):
    counts: dict[str, EntityCounts] = field(default_factory=lambda: {name: EntityCounts() for name in COUNTED_ENTITIES})
    record_errors: list[RecordError] = field(default_factory=list)
    # Values of written records that were not applied, such as a role sent for an admin.
    record_warnings: list[RecordError] = field(default_factory=list)

    def reject_record(self, entity: str, index: int, external_id: str, rejection: RowRejected) -> None:
        self.counts[entity].rejected += 1
        self.errors.append(RowError.from_rejection(entity, index, rejection))
        self.record_errors.append(
            RecordError(entity, index, external_id, str(rejection.column), rejection.value, rejection.reason)
        )

    def warn_record(self, entity: str, index: int, external_id: str, ignored: RowRejected) -> None:
        """Record a value that the written record `index` carried but the import did not apply; counts stay as they are."""
        self.record_warnings.append(
            RecordError(entity, index, external_id, str(ignored.column), ignored.value, ignored.reason)
        )


@dataclass
class ParsedDeal:
    index: int
    record: DealRecord
    pipeline: PipelineStages
    is_delete_only: bool = False
    # The product the record names. `write_deals` creates it only if the deal is accepted.
    product_name: str = ""


class RecordsWriter:
    """Checks and writes one call's records in dependency order: pipelines, people, accounts, deals, activities."""

    def __init__(self, *, organization: Organization, source: str, currency: str, today: dt.date, label: str):
        self.organization = organization
        self.source = source
        self.currency = currency
        self.time_zone = organization.tzinfo
        self.allowed_days = import_date_range(today)
        self.result = RecordsImportResult(source=source, path=label, currency=currency)
        self.converter = BaseAmountConverter(organization=organization, today=today)
        self.pipeline_stages: dict[str, PipelineStages] = {}
        self.accounts: dict[str, Account] = {}
        # People referenced as deal or activity owners, built after the people records are written.
        self.directory: PeopleDirectory | None = None
        self.deal_keys_with_history: set[str] = set()

    def moment(self, record: Mapping, name: str) -> dt.datetime | None:
        return moment_value(record, name, self.time_zone, self.allowed_days)

    def reject(self, entity: str, index: int, record: Any, rejection: RowRejected) -> None:
        external_id = ""
        if isinstance(record, Mapping):
            # A stage change has no id of its own, so its deal's id identifies it.
            raw = record.get("deal" if entity == "stage_changes" else "external_id") or ""
            external_id = str(raw)[:200] if isinstance(raw, (str, int)) else ""
        self.result.reject_record(entity, index, external_id, rejection)

    def records_checked(self, entity: str, records: list) -> list[tuple[int, Mapping]]:
        """Return (index, record) for the records that are JSON objects; reject the others."""
        checked = []
        for index, record in enumerate(records):
            if isinstance(record, Mapping):
                checked.append((index, record))
            else:
                self.reject(entity, index, None, RowRejected("", shown_value(record), gettext_noop("invalid record; expected a JSON object")))
        return checked

    # Pipelines and stages

    def stages_for(self, name: str) -> PipelineStages:
        key = name.strip().casefold()
        stages = self.pipeline_stages.get(key)
        if stages is None:
            stages = self.pipeline_stages[key] = PipelineStages(organization=self.organization, name=name)
        return stages

    def default_pipeline_name(self) -> str:
        default = Pipeline.objects.filter(organization=self.organization, is_default=True).values_list("name", flat=True).first()
        return default or DEFAULT_PIPELINE_NAME

    def write_pipelines(self, records: list) -> None:
        counts = self.result.counts["pipelines"]
        touched = []
        for index, record in self.records_checked("pipelines", records):
            try:
                name = required_text(record, "name", 200)
                specs = record.get("stages") or []
                if not isinstance(specs, list):
                    raise RowRejected("stages", shown_value(specs), gettext_noop("invalid value; expected a list of stages"))
                parsed = [self.stage_spec(position, spec) for position, spec in enumerate(specs)]
            except RowRejected as rejection:
                self.reject("pipelines", index, record, rejection)
                continue
            stages = self.stages_for(name)
            existed = stages.pipeline.pk is not None
            stages.pipeline_save()
            known = len(stages.stages)
            for stage_name, kind, probability in parsed:
                stages.get(stage_name, kind=kind, probability=probability)
            touched.append(stages)
            if not existed:
                counts.created += 1
            elif len(stages.stages) != known:
                counts.updated += 1
            else:
                counts.unchanged += 1
        for stages in touched:
            stages.order_closed_last()

    def stage_spec(self, position: int, spec: Any) -> tuple[str, str, int | None]:
        column = f"stages[{position}]"
        if not isinstance(spec, Mapping):
            raise RowRejected(column, shown_value(spec), gettext_noop("invalid stage; expected an object with name, kind and probability"))
        name = required_text(spec, "name", 200)
        kind = text_value(spec, "kind").lower() or stage_kind_from_name(name)
        if kind not in StageKind.values:
            raise RowRejected(f"{column}.kind", kind, gettext_noop("unknown stage kind; expected open, won or lost"))
        probability_text = text_value(spec, "probability")
        probability = parse_int(probability_text, f"{column}.probability", maximum=100) if probability_text else None
        return name, kind, probability

    # People

    def write_people(self, records: list) -> None:
        parsed: dict[str, tuple[int, dict]] = {}
        for index, record in self.records_checked("people", records):
            try:
                external_id = required_text(record, "external_id", MAX_EXTERNAL_ID_LENGTH)
                if external_id in parsed:
                    raise duplicate_rejection("external_id", external_id, parsed[external_id][0])
                values = self.person_values(record)
            except RowRejected as rejection:
                self.reject("people", index, record, rejection)
                continue
            parsed[external_id] = (index, values)

        directory = PeopleDirectory(
            organization=self.organization, result=ImportResult(source=self.source, path="", currency=self.currency)
        )
        people = {key: Person(key=key, email=values["email"], name=values["name"]) for key, (_index, values) in parsed.items()}
        for key, conflict in directory.conflicts_check(list(people.values())).items():
            directory.conflicts[key] = conflict
            # Only a person without an e-mail address gets a generated one, which the name decides.
            column, value = ("email", people[key].email) if people[key].email else ("name", people[key].name or key)
            self.result.reject_record("people", parsed[key][0], key, directory.conflict_rejection(key, column, value))
            del parsed[key]
            del people[key]

        # A manager must be in this call or stored before; rejecting one can orphan others.
        known = set(
            Membership.objects.filter(organization=self.organization).exclude(external_id="").values_list("external_id", flat=True)
        )
        rejected_any = True
        while rejected_any:
            rejected_any = False
            for external_id, (index, values) in list(parsed.items()):
                manager = values["manager"]
                if manager and manager not in parsed and manager not in known:
                    reason = gettext_noop("unknown manager; send that person in people first")
                    self.result.reject_record("people", index, external_id, RowRejected("manager", manager, reason))
                    del parsed[external_id]
                    del people[external_id]
                    rejected_any = True
        if not parsed:
            return

        new_keys = {key for key, person in people.items() if directory.find(person) is None}
        members = directory.ensure(list(people.values()))

        territories = self.territories_upsert({values["territory"] for _index, values in parsed.values()} - {""})
        teams = self.teams_upsert(parsed, members)
        managers = {
            **fetch_by_keys(
                Membership.objects.filter(organization=self.organization),
                "external_id",
                {values["manager"] for _index, values in parsed.values()} - {""} - parsed.keys(),
            ),
            **{key: members[key] for key in parsed},
        }
        desired = {}
        for key, (_index, values) in parsed.items():
            membership = members[key]
            row = {
                "external_id": membership.external_id or key,
                # Admins stay admins: a record can neither appoint nor demote one.
                "role": Role.ADMIN if membership.role == Role.ADMIN else values["role"],
                "territory_id": territories[values["territory"]].pk if values["territory"] else None,
                "team_id": teams[values["team"]].pk if values["team"] else None,
                "manager_id": managers[values["manager"]].pk if values["manager"] else None,
            }
            # A stored member keeps what the record leaves out: the CRM sync sends only the
            # e-mail address and name, and must not turn managers into reps or clear teams.
            if key not in new_keys:
                for field_name, column in self.PERSON_KEPT_IF_OMITTED.items():
                    if field_name not in values["sent"]:
                        row[column] = getattr(membership, column)
            for name in ("active_from", "active_to"):
                if name in values:
                    row[name] = values[name]
            desired[key] = row
        outcome = bulk_upsert(
            model=Membership, existing=members, desired=desired, build=lambda key, values: None
        )
        self.people_ignored_values_warn(parsed, members)

        counts = self.result.counts["people"]
        counts.created += len(new_keys)
        counts.updated += len(outcome.updated - new_keys)
        counts.unchanged += len(outcome.unchanged - new_keys)
        logger.info(
            "People imported organization_id=%s created=%s updated=%s", self.organization.pk, counts.created, counts.updated
        )

    def people_ignored_values_warn(self, parsed: dict[str, tuple[int, dict]], members: dict[str, Membership]) -> None:
        """Warn about the role sent for an admin and the name sent for an existing account, which the import keeps."""
        for key, (index, values) in parsed.items():
            membership = members[key]
            if values["role_sent"] and membership.role == Role.ADMIN:
                reason = gettext_noop("admins keep their role; change it on the people page")
                self.result.warn_record("people", index, key, RowRejected("role", values["role_sent"], reason))
            if values["name"] and values["name"] != membership.user.name:
                reason = gettext_noop(
                    "existing accounts keep their name because an account can belong to several organizations; "
                    "change it with a people upload on the people page"
                )
                self.result.warn_record("people", index, key, RowRejected("name", values["name"], reason))

    # Record fields that a stored member keeps when the record omits them, with their column.
    PERSON_KEPT_IF_OMITTED = {"role": "role", "team": "team_id", "territory": "territory_id", "manager": "manager_id"}

    def person_values(self, record: Mapping) -> dict:
        email = text_value(record, "email").lower()
        if email:
            email_check(email, "email", text_value(record, "email"))
        role_sent = text_value(record, "role").lower()
        role = role_sent or Role.REP
        if role not in (Role.REP, Role.MANAGER):
            raise RowRejected(
                "role", role, gettext_noop("invalid role; expected rep or manager (admins are appointed on the members page)")
            )
        values = {
            "email": email,
            "name": text_value(record, "name", 200),
            "role": role,
            # The role as the record gives it, empty when it gives none, so an admin is warned only about a sent role.
            "role_sent": role_sent,
            "manager": text_value(record, "manager", MAX_EXTERNAL_ID_LENGTH),
            "team": text_value(record, "team", 200),
            "territory": text_value(record, "territory", 200),
            # The optional fields the record has at all; JSON null or "" clears a value, a missing key keeps it.
            "sent": {name for name in self.PERSON_KEPT_IF_OMITTED if name in record},
        }
        if values["manager"] and values["manager"] == text_value(record, "external_id"):
            raise RowRejected("manager", values["manager"], gettext_noop("a person cannot be their own manager"))
        for name in ("active_from", "active_to"):
            if name in record:
                values[name] = day_value(record, name)
        if values.get("active_from") and values.get("active_to") and values["active_to"] < values["active_from"]:
            raise RowRejected("active_to", str(values["active_to"]), gettext_noop("active_to is before active_from"))
        return values

    def territories_upsert(self, names: set[str]) -> dict[str, Territory]:
        existing = fetch_by_keys(Territory.objects.filter(organization=self.organization), "name", names)
        missing = [Territory(organization=self.organization, name=name, external_id=name) for name in sorted(names - existing.keys())]
        Territory.objects.bulk_create(missing)
        self.result.counts["territories"].created += len(missing)
        self.result.counts["territories"].unchanged += len(existing)
        return {**existing, **{territory.name: territory for territory in missing}}

    def teams_upsert(self, parsed: dict[str, tuple[int, dict]], members: dict[str, Membership]) -> dict[str, Team]:
        """Create missing teams by name; a team without a manager gets the first manager who names it."""
        names = {values["team"] for _index, values in parsed.values()} - {""}
        manager_of: dict[str, int] = {}
        for key, (_index, values) in parsed.items():
            if values["team"] and values["role"] == Role.MANAGER:
                manager_of.setdefault(values["team"], members[key].pk)
        existing = fetch_by_keys(Team.objects.filter(organization=self.organization), "name", names)
        desired = {}
        for name in names:
            team = existing.get(name)
            manager_id = team.manager_id if team is not None and team.manager_id else manager_of.get(name)
            desired[name] = {"external_id": team.external_id if team is not None else name, "manager_id": manager_id}
        outcome = bulk_upsert(
            model=Team,
            existing=existing,
            desired=desired,
            build=lambda name, values: Team(organization=self.organization, name=name, **values),
        )
        counts = self.result.counts["teams"]
        counts.created += len(outcome.created)
        counts.updated += len(outcome.updated)
        counts.unchanged += len(outcome.unchanged)
        return outcome.instances

    def owner_directory(self) -> PeopleDirectory:
        if self.directory is None:
            self.directory = PeopleDirectory(organization=self.organization, result=self.result)
        return self.directory

    @staticmethod
    def owner_person(record: Mapping) -> Person:
        key = text_value(record, "owner", MAX_EXTERNAL_ID_LENGTH)
        email = text_value(record, "owner_email").lower()
        if email:
            email_check(email, "owner_email", text_value(record, "owner_email"))
        if not key and not email:
            raise RowRejected("owner", "", gettext_noop("missing value; give owner (external id or name) or owner_email"))
        return Person(key=key or email, email=email, name=key if key and "@" not in key else "")

    # Accounts

    def write_accounts(self, records: list) -> None:
        parsed: dict[str, tuple[int, dict, str]] = {}
        for index, record in self.records_checked("accounts", records):
            try:
                external_id = required_text(record, "external_id", 200)
                if external_id in parsed:
                    raise duplicate_rejection("external_id", external_id, parsed[external_id][0])
                values = {
                    "name": text_value(record, "name", 200) or external_id,
                    "sector": text_value(record, "sector", 100),
                    "country": text_value(record, "country", 100),
                    "year_established": whole_number_value(record, "year_established", maximum=9999),
                    "annual_revenue_amount": money_value(record, "annual_revenue_amount", currency=self.currency),
                    "employees": whole_number_value(record, "employees"),
                }
                parent = text_value(record, "parent", 200)
                if parent == external_id:
                    raise RowRejected("parent", parent, gettext_noop("an account cannot be its own parent"))
            except RowRejected as rejection:
                self.reject("accounts", index, record, rejection)
                continue
            parsed[external_id] = (index, values, parent)

        stored = Account.objects.filter(organization=self.organization)
        known = set(stored.filter(external_id__in={parent for _i, _v, parent in parsed.values()} - {""}).values_list("external_id", flat=True))
        # Rejecting a parent can orphan its subsidiaries, so repeat until nothing changes.
        rejected_any = True
        while rejected_any:
            rejected_any = False
            for external_id, (index, _values, parent) in list(parsed.items()):
                if parent and parent not in parsed and parent not in known:
                    reason = gettext_noop("unknown parent account; send it in accounts first")
                    self.result.reject_record("accounts", index, external_id, RowRejected("parent", parent, reason))
                    del parsed[external_id]
                    rejected_any = True
        if not parsed:
            return

        written = bulk_upsert(
            model=Account,
            existing=fetch_by_keys(stored, "external_id", parsed),
            desired={key: {"external_id": key, **values} for key, (_index, values, _parent) in parsed.items()},
            build=lambda key, values: Account(organization=self.organization, **values),
        )
        parents = {
            **fetch_by_keys(stored, "external_id", {parent for _i, _v, parent in parsed.values()} - {""} - written.instances.keys()),
            **written.instances,
        }
        linked = bulk_upsert(
            model=Account,
            existing=written.instances,
            desired={key: {"parent_id": parents[parent].pk if parent else None} for key, (_i, _v, parent) in parsed.items()},
            build=lambda key, values: None,
        )
        counts = self.result.counts["accounts"]
        updated = (written.updated | linked.updated) - written.created
        counts.created += len(written.created)
        counts.updated += len(updated)
        counts.unchanged += len(parsed.keys() - written.created - updated)
        self.accounts.update(written.instances)

    def account_find(self, record: Mapping) -> Account | None:
        reference = text_value(record, "account", 200)
        if not reference:
            return None
        account = self.accounts.get(reference)
        if account is None:
            stored = Account.objects.filter(organization=self.organization)
            account = stored.filter(external_id=reference).first() or stored.filter(name=reference).order_by("pk").first()
            if account is None:
                raise RowRejected("account", reference, gettext_noop("unknown account; send it in accounts first"))
            self.accounts[reference] = account
        return account

    # Deals and stage changes

    def write_deals(self, records: list, change_records: list) -> None:
        deal_items = self.records_checked("deals", records)
        change_items = self.records_checked("stage_changes", change_records)
        self.deal_keys_with_history = {
            text_value(record, "deal") for _index, record in change_items if isinstance(record.get("deal"), (str, int))
        }
        keys = {text_value(record, "external_id") for _index, record in deal_items if isinstance(record.get("external_id"), (str, int))}
        stored = fetch_by_keys(Deal.all_objects.filter(organization=self.organization, source=self.source), "external_id", keys)
        default_pipeline = self.default_pipeline_name()

        # Parsing only plans new stages and notes product names. Both are created below, for the accepted deals alone.
        parsed: dict[str, ParsedDeal] = {}
        for index, record in deal_items:
            try:
                deal = self.deal_parse(index, record, stored, default_pipeline, parsed)
            except RowRejected as rejection:
                self.reject("deals", index, record, rejection)
                continue
            parsed[deal.record.external_id] = deal
        self.stored_creation_day_kept(parsed, stored)

        moves_by_deal = self.stage_changes_parse(change_items, parsed)
        records_with_history = []
        for external_id, moves in moves_by_deal.items():
            deal = parsed.get(external_id)
            if deal is not None and not deal.is_delete_only:
                deal.record.planned_moves = moves
                # `stage_changes_parse` rejected moves on earlier days, so this keeps the creation day.
                earliest = min(move.changed_at for move in moves)
                deal.record.values["created_at"] = min(deal.record.values["created_at"], earliest)
                if deal.record.stage is None:
                    deal.record.stage = max(moves, key=lambda move: move.changed_at).stage
            else:
                records_with_history.append(DealRecord(line=0, external_id=external_id, values={}, planned_moves=moves))

        for deal in parsed.values():
            if not deal.is_delete_only and deal.record.stage is None:
                self.result.reject_record(
                    "deals",
                    deal.index,
                    deal.record.external_id,
                    RowRejected("stage", "", gettext_noop("missing value; give stage or status, or send the deal's stage_changes")),
                )
        to_write = deal_owners_assign(
            directory=self.owner_directory(),
            records=[deal.record for deal in parsed.values() if not deal.is_delete_only and deal.record.stage is not None],
            column="owner",
            reject=lambda record, rejection: self.result.reject_record("deals", record.line, record.external_id, rejection),
        )
        deal_stages_assign(records=to_write + records_with_history, pipelines=self.pipeline_stages.values())
        for stages in self.pipeline_stages.values():
            stages.order_closed_last()
        self.deal_products_assign([parsed[record.external_id] for record in to_write])
        now = timezone.now()
        if to_write:
            deals_write(organization=self.organization, source=self.source, records=to_write, result=self.result, observed_at=now)
            self.state_changes_stamp(stored, [record.external_id for record in to_write], now)
        self.deals_mark_deleted([deal for deal in parsed.values() if deal.is_delete_only], stored, now)
        if records_with_history:
            self.history_append(records_with_history, now)

    def deal_parse(self, index, record, stored, default_pipeline, parsed) -> ParsedDeal:
        external_id = required_text(record, "external_id", 200)
        if external_id in parsed:
            raise duplicate_rejection("external_id", external_id, parsed[external_id].index)
        is_deleted = bool_value(record, "deleted", False)
        current = stored.get(external_id)
        if is_deleted and current is not None:
            # A deal deleted in the source keeps its row; only the deletion time is recorded.
            deleted_at = current.deleted_at or self.moment(record, "deleted_at") or timezone.now()
            return ParsedDeal(index, DealRecord(line=index, external_id=external_id, values={"deleted_at": deleted_at}), None, True)

        owner = self.owner_person(record)
        stages = self.stages_for(text_value(record, "pipeline", 200) or default_pipeline)
        created_at = self.moment(record, "created_at")
        if created_at is None:
            raise RowRejected("created_at", "", gettext_noop("missing value"))

        status_text = text_value(record, "status")
        kind = None
        if status_text:
            kind = STATUS_WORDS.get(status_text.casefold())
            if kind is None:
                raise RowRejected("status", status_text, gettext_noop("unknown status; expected open, won or lost"))
        stage_name = text_value(record, "stage", 200)
        entry_stage = None
        stage = None
        if stage_name:
            stage = stages.plan(stage_name)
            if kind is not None and kind != stage.kind:
                # The status decides; the named stage is where the deal stood before it closed.
                entry_stage = stage if stage.kind == StageKind.OPEN else None
                stage = stages.plan(STAGE_NAME_BY_KIND[kind], kind=kind)
        elif kind is not None:
            stage = stages.plan(STAGE_NAME_BY_KIND[kind], kind=kind)
        entry_name = text_value(record, "entry_stage", 200)
        if entry_name:
            entry_stage = stages.plan(entry_name)

        closed_at = self.moment(record, "closed_at")
        is_closed = stage is not None and stage.kind in (StageKind.WON, StageKind.LOST)
        if is_closed and closed_at is None and not self.has_history(external_id):
            raise RowRejected(
                "closed_at", "", gettext_noop("missing value; a won or lost deal needs closed_at, the time it was won or lost")
            )
        if closed_at is not None:
            closed_text = text_value(record, "closed_at")
            closed_at = close_time_settle(closed_at, created_at, close_text=closed_text, time_zone=self.time_zone)
            if closed_at is None:
                raise RowRejected("closed_at", closed_text, gettext_noop("close date is before the creation date"))
        if not is_closed:
            closed_at = None

        currency = (text_value(record, "currency") or self.currency).upper()
        if not is_currency_code(currency):
            raise RowRejected("currency", currency, gettext_noop("not an ISO 4217 currency code; use a code such as EUR, CHF or USD"))
        amount = money_value(record, "amount", currency=currency)
        close_day = closed_at.astimezone(self.time_zone).date() if closed_at else None
        base_amount = self.converter.convert(amount, currency, close_day, "amount", text_value(record, "amount"))
        probability_text = text_value(record, "probability")
        probability = parse_percent(probability_text, "probability") if probability_text else None
        custom_fields = record.get("custom_fields")
        if custom_fields is None:
            custom_fields = {}
        if not isinstance(custom_fields, Mapping):
            raise RowRejected("custom_fields", shown_value(custom_fields), gettext_noop("invalid value; expected a JSON object"))
        account = self.account_find(record)
        product_name = text_value(record, "product", 200)
        deleted_at = None
        if is_deleted:
            deleted_at = self.moment(record, "deleted_at") or timezone.now()

        values = {
            "name": text_value(record, "name", 300),
            "account_id": account.pk if account else None,
            # Set by `deal_products_assign` once the deal is accepted.
            "product_id": None,
            "amount": amount,
            "currency": currency,
            "base_amount": base_amount,
            "probability": probability,
            "created_at": created_at,
            "expected_close_on": day_value(record, "expected_close_on", self.allowed_days),
            "lost_reason": text_value(record, "lost_reason", 300),
            "deal_source": text_value(record, "deal_source", 100),
            "custom_fields": dict(custom_fields),
            "deleted_at": deleted_at,
        }
        deal_record = DealRecord(
            line=index,
            external_id=external_id,
            values=values,
            closed_at=closed_at,
            owner=owner,
            stages=stages,
            stage=stage,
            entry_stage=(entry_stage or stage) if stage is not None else None,
        )
        return ParsedDeal(index, deal_record, stages, product_name=product_name)

    def has_history(self, external_id: str) -> bool:
        return external_id in self.deal_keys_with_history

    def stage_changes_parse(
        self, items: list[tuple[int, Mapping]], parsed: dict[str, ParsedDeal]
    ) -> dict[str, list[PlannedMove]]:
        """Return the valid moves by deal external id; a deal must be in this call or stored under the source.

        A move's new stage is only planned: `deal_stages_assign` creates it if the move's deal is written.
        """
        references = {text_value(record, "deal") for _index, record in items if isinstance(record.get("deal"), (str, int))}
        stored = fetch_by_keys(
            Deal.all_objects.filter(organization=self.organization, source=self.source).select_related("pipeline"),
            "external_id",
            references - parsed.keys(),
        )
        moves: dict[str, list[PlannedMove]] = defaultdict(list)
        for index, record in items:
            try:
                deal_key = required_text(record, "deal", 200)
                deal = parsed.get(deal_key)
                if deal is not None and not deal.is_delete_only:
                    stages = deal.pipeline
                    created_at = deal.record.values["created_at"]
                    created_in = "created_at"
                elif deal_key in stored:
                    stages = self.stages_for(stored[deal_key].pipeline.name)
                    created_at = stored[deal_key].created_at
                    created_in = Message(gettext_noop("created_at of the stored deal"))
                else:
                    raise RowRejected("deal", deal_key, gettext_noop("unknown deal; send it in deals first"))
                stage = stages.plan(required_text(record, "stage", 200))
                changed_at = self.moment(record, "changed_at")
                if changed_at is None:
                    raise RowRejected("changed_at", "", gettext_noop("missing value"))
                stage_entry_check(
                    entered_at=changed_at,
                    created_at=created_at,
                    time_zone=self.time_zone,
                    column="changed_at",
                    value=text_value(record, "changed_at"),
                    created_in=created_in,
                )
            except RowRejected as rejection:
                self.reject("stage_changes", index, record, rejection)
                continue
            moves[deal_key].append(PlannedMove(stage, changed_at))
        return moves

    def deal_products_assign(self, deals: list[ParsedDeal]) -> None:
        """Set `product_id` of the accepted `deals`, creating the products they name that are not stored yet."""
        products = self.products_ensure({deal.product_name for deal in deals})
        for deal in deals:
            if deal.product_name:
                deal.record.values["product_id"] = products[deal.product_name].pk

    def products_ensure(self, names: set[str]) -> dict[str, Product]:
        names = {name for name in names if name}
        existing = fetch_by_keys(Product.objects.filter(organization=self.organization), "name", names)
        missing = [Product(organization=self.organization, name=name) for name in sorted(names - existing.keys())]
        Product.objects.bulk_create(missing)
        self.result.counts["products"].created += len(missing)
        return {**existing, **{product.name: product for product in missing}}

    def deals_mark_deleted(self, deals: list[ParsedDeal], stored: dict[str, Deal], now: dt.datetime) -> None:
        counts = self.result.counts["deals"]
        changed = []
        for deal in deals:
            current = stored[deal.record.external_id]
            if current.deleted_at is not None:
                counts.unchanged += 1
                continue
            current.deleted_at = deal.record.values["deleted_at"]
            changed.append(current)
        if changed:
            # update() leaves updated_at alone, so it is set here: API clients read changes by updated_at.
            for deal in changed:
                deal.updated_at = now
            Deal.all_objects.bulk_update(changed, ["deleted_at", "updated_at"])
            logger.info("Deals marked deleted organization_id=%s count=%s", self.organization.pk, len(changed))
        counts.updated += len(changed)

    def state_changes_stamp(self, stored: dict[str, Deal], keys: list[str], now: dt.datetime) -> None:
        """Set `updated_at` on stored deals whose stage, status or close time changed only through their history.

        `deal_close_state_refresh` writes with `update()`, which leaves `updated_at` alone,
        and API clients find changed deals by `updated_at`.
        """
        before = {
            stored[key].pk: (stored[key].stage_id, stored[key].status, stored[key].closed_at) for key in keys if key in stored
        }
        if not before:
            return
        changed = []
        for batch in chunked(list(before), 900):
            rows = Deal.all_objects.filter(organization=self.organization, pk__in=batch).values_list(
                "pk", "stage_id", "status", "closed_at", "updated_at"
            )
            for pk, stage_id, status, closed_at, updated_at in rows:
                if before[pk] != (stage_id, status, closed_at) and updated_at != now:
                    changed.append(pk)
        for batch in chunked(changed, 900):
            Deal.all_objects.filter(organization=self.organization, pk__in=batch).update(updated_at=now)

    def stored_creation_day_kept(self, parsed: dict[str, "ParsedDeal"], stored: dict[str, Deal]) -> None:
        """Keep the earlier creation time that a stored move on the deal's creation day set.

        A stage change earlier on the creation day becomes the deal's `created_at`. Sending
        the deal again with its date-only `created_at` (12:00 UTC) must not move the creation
        back after that change, because the deal would then flip between the two times on
        every sync.
        """
        stored_ids = {
            deal.record.external_id: stored[deal.record.external_id].pk
            for deal in parsed.values()
            if not deal.is_delete_only and deal.record.external_id in stored
        }
        if not stored_ids:
            return
        earliest_moves = dict(
            DealStageChange.all_objects.filter(organization=self.organization, deal_id__in=stored_ids.values())
            .values("deal_id")
            .annotate(earliest=Min("changed_at"))
            .values_list("deal_id", "earliest")
        )
        time_zone = self.organization.tzinfo
        for external_id, deal_id in stored_ids.items():
            values = parsed[external_id].record.values
            earliest = earliest_moves.get(deal_id)
            if earliest is None or earliest >= values["created_at"]:
                continue
            if timezone.localtime(earliest, time_zone).date() == timezone.localtime(values["created_at"], time_zone).date():
                values["created_at"] = earliest

    def history_append(self, records: list[DealRecord], now: dt.datetime) -> None:
        """Append moves to stored deals that this call did not send, and re-derive their state."""
        deals = fetch_by_keys(
            Deal.all_objects.filter(organization=self.organization, source=self.source),
            "external_id",
            [record.external_id for record in records],
        )
        moved_ids = stage_moves_append(
            organization=self.organization, records=records, deals=deals, result=self.result, observed_at=now
        )
        for record in records:
            # `stage_changes_parse` rejected moves on earlier days, so this keeps the creation day.
            deal = deals[record.external_id]
            earliest = min(move.changed_at for move in record.moves)
            if earliest < deal.created_at:
                Deal.all_objects.filter(pk=deal.pk).update(created_at=earliest, updated_at=now)
        if moved_ids:
            deal_close_state_refresh(organization=self.organization, deal_ids=moved_ids)
            Deal.all_objects.filter(organization=self.organization, pk__in=moved_ids).update(updated_at=now)
            self.result.counts["deals"].updated += len(moved_ids)

    # Activities

    def write_activities(self, records: list) -> None:
        items = self.records_checked("activities", records)
        deal_keys = {text_value(record, "deal") for _index, record in items if isinstance(record.get("deal"), (str, int))} - {""}
        deals = fetch_by_keys(Deal.all_objects.filter(organization=self.organization, source=self.source), "external_id", deal_keys)
        desired: dict[str, dict] = {}
        first_index: dict[str, int] = {}
        owner_of: dict[str, Person] = {}
        for index, record in items:
            try:
                external_id = required_text(record, "external_id", 200)
                if external_id in first_index:
                    raise duplicate_rejection("external_id", external_id, first_index[external_id])
                owner = self.owner_person(record)
                desired[external_id] = self.activity_values(record, deals)
            except RowRejected as rejection:
                self.reject("activities", index, record, rejection)
                continue
            owner_of[external_id] = owner
            first_index[external_id] = index

        # Owners are created only now, so a rejected activity adds no person.
        directory = self.owner_directory()
        members = directory.ensure(list({person.key: person for person in owner_of.values()}.values()))
        for external_id in list(desired):
            owner = members.get(owner_of[external_id].key)
            if owner is None:
                rejection = directory.conflict_rejection(owner_of[external_id].key, "owner")
                self.result.reject_record("activities", first_index[external_id], external_id, rejection)
                del desired[external_id]
                continue
            desired[external_id]["owner_id"] = owner.pk
        if not desired:
            return
        outcome = bulk_upsert(
            model=Activity,
            existing=fetch_by_keys(Activity.objects.filter(organization=self.organization, source=self.source), "external_id", desired),
            desired=desired,
            build=lambda key, values: Activity(organization=self.organization, source=self.source, external_id=key, **values),
        )
        counts = self.result.counts["activities"]
        counts.created += len(outcome.created)
        counts.updated += len(outcome.updated)
        counts.unchanged += len(outcome.unchanged)

    def activity_values(self, record: Mapping, deals: dict[str, Deal]) -> dict:
        """Return the activity's fields except `owner_id`, which `write_activities` sets after checking every record."""
        kind = required_text(record, "kind", 16).lower()
        if kind not in ActivityKind.values:
            raise RowRejected(
                "kind", kind, gettext_noop("unknown activity type; expected one of: %(kinds)s"), kinds=", ".join(ActivityKind.values)
            )
        occurred_at = self.moment(record, "occurred_at")
        if occurred_at is None:
            raise RowRejected("occurred_at", "", gettext_noop("missing value"))
        deal_key = text_value(record, "deal", 200)
        deal = None
        if deal_key:
            deal = deals.get(deal_key)
            if deal is None:
                raise RowRejected("deal", deal_key, gettext_noop("unknown deal; send it in deals first"))
        account = self.account_find(record)
        if account is None and deal is not None:
            account_id = deal.account_id
        else:
            account_id = account.pk if account else None
        minutes = whole_number_value(record, "duration_minutes", maximum=100_000)
        return {
            "kind": kind,
            "type_name": text_value(record, "type_name", 100),
            "subject": text_value(record, "subject", 300),
            "outcome": text_value(record, "outcome", 200),
            "is_done": bool_value(record, "is_done", True),
            "is_captured": bool_value(record, "is_captured", False),
            "deal_id": deal.pk if deal else None,
            "account_id": account_id,
            "occurred_at": occurred_at,
            "duration": dt.timedelta(minutes=minutes) if minutes is not None else None,
        }

