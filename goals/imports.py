"""Quota and people uploads (CSV or XLSX), shared by the admin pages and the import commands.

Both imports keep the good rows, skip each bad row with a `RowError` (line,
column, value, reason) and can run twice: the second run changes nothing.
Each change goes through the services in goals.services, so it is audited.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_noop

from goals import parsing, services
from goals.attainment import organization_today
from goals.models import Assignment, QuotaMetric, Team, Territory
from pipelines.importers.base import (
    Message,
    RowError,
    RowRejected,
    check_length,
    require_value,
)
from pipelines.importers.emails import email_check
from pipelines.importers.people import foreign_account_rejection
from pipelines.services import kpi_recompute_schedule
from spm import fiscal
from spm.audit import (
    MEMBERSHIP_CREATED,
    REASON_PEOPLE_UPLOAD,
    REASON_QUOTA_UPLOAD,
    audit_reason,
)
from spm.date_limits import DateRange, planning_range
from spm.models import Membership, Organization, Role, User

logger = logging.getLogger(__name__)

QUOTA_COLUMNS = ("level", "name", "period", "metric", "target")
PEOPLE_COLUMNS = ("name", "email")
LEVEL_WORDS = {"rep": "rep", "team": "team", "territory": "territory", "vertrieb": "rep", "gebiet": "territory"}
# Per-level sentences, because German needs the level's own noun and article ("kein Team", "kein Gebiet").
NOT_FOUND_BY_NAME = {
    "team": gettext_noop("no team with this name"),
    "territory": gettext_noop("no territory with this name"),
}
NEW_PERSON_NAME_MISSING = gettext_noop(
    "missing value; a new person needs a name. A merged cell is empty in every row below its first, "
    "so unmerge such cells and fill in each row"
)
NAME_OF_ANOTHER_MEMBER = gettext_noop(
    "the member with the e-mail address %(email)s already has this name; to change that member, "
    "use %(email)s in this row, or to add a new person, give a name that tells the two apart"
)
ROLE_WORDS = {
    "admin": Role.ADMIN,
    "administrator": Role.ADMIN,
    "manager": Role.MANAGER,
    "rep": Role.REP,
    "sales rep": Role.REP,
    "vertrieb": Role.REP,
}


@dataclass
class UploadResult:
    """Counts per outcome and the rejected rows of one upload."""

    file_name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def reject(self, line: int, rejection: RowRejected) -> None:
        self.errors.append(RowError.from_rejection(self.file_name, line, rejection))

    def as_dict(self) -> dict:
        return {
            "file": self.file_name,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def _rejection_from(error: ValidationError, column: str, value: str) -> RowRejected:
    # A validator's messages are already translated, which is fine because the upload shows them right away.
    return RowRejected(column, value, Message.literal(" ".join(error.messages)))


# --- quotas -------------------------------------------------------------------------------------


class _SubjectIndex:
    """Reps by e-mail and name, teams and territories by name, for one organization (three queries)."""

    def __init__(self):
        self.rep_by_email, self.rep_by_name = {}, {}
        for membership in Membership.objects.select_related("user"):
            self.rep_by_email[membership.user.email.lower()] = membership.pk
            name = (membership.user.name or "").strip().lower()
            # None marks a name shared by two people: it cannot identify either.
            self.rep_by_name[name] = None if name in self.rep_by_name else membership.pk
        self.teams = {name.lower(): pk for pk, name in Team.objects.values_list("id", "name")}
        self.territories = {name.lower(): pk for pk, name in Territory.objects.values_list("id", "name")}

    def find(self, level: str, name: str) -> int:
        key = name.strip().lower()
        if level == "rep":
            if key in self.rep_by_email:
                return self.rep_by_email[key]
            if self.rep_by_name.get(key, 0) is None:
                raise RowRejected("name", name, gettext_noop("two people have this name; use the e-mail address"))
            if key in self.rep_by_name:
                return self.rep_by_name[key]
            raise RowRejected("name", name, gettext_noop("no member with this e-mail address or name"))
        found = (self.teams if level == "team" else self.territories).get(key)
        if found is None:
            raise RowRejected("name", name, NOT_FOUND_BY_NAME[level])
        return found


def quota_import(
    *, organization: Organization, actor: User | None, data: bytes, file_name: str, today: dt.date | None = None
) -> UploadResult:
    """Set the quotas listed in a CSV or XLSX file; return counts and rejected rows.

    Columns (header names, any order, case-insensitive): level (rep, team,
    territory), name (a rep's e-mail or name, a team's or territory's name),
    period (`2025`, `2025-Q1` or `2025-03`), metric (won_revenue, won_deals,
    pipeline_created, activities, meetings), target (German or English number
    format, see parsing.parse_number), and optionally prorate (yes/no/ja/nein; empty keeps an
    existing quota's setting, new quotas are prorated). A period must start
    within spm.date_limits.planning_range of `today` (default: the
    organization's local date). A row repeating the level, name, period and
    metric of an earlier accepted row is rejected; a rejected row does not
    block a later one with the same key. Raises
    ImportSourceError when the file cannot be read, lacks a column or has
    no data rows.
    """
    rows = parsing.read_table(data, file_name, required=QUOTA_COLUMNS)
    result = UploadResult(file_name=file_name)
    index = _SubjectIndex()
    allowed_days = planning_range(today or organization_today(organization))
    seen: dict[tuple, int] = {}

    with transaction.atomic():
        for line, row in rows:
            try:
                parsed = _quota_row(organization, index, allowed_days, row)
                key = parsed[:4]
                if key in seen:
                    raise RowRejected(
                        "period", row.get("period", ""), gettext_noop("repeats line %(line)d; keep one of them"), line=seen[key]
                    )
                level, subject_id, period, metric, target, is_prorated = parsed
                _quota, outcome = services.quota_update(
                    organization=organization,
                    actor=actor,
                    level=level,
                    subject_id=subject_id,
                    period_kind=period.kind,
                    period_start=period.start,
                    metric=metric,
                    target=target,
                    is_prorated=is_prorated,
                    reason=audit_reason(REASON_QUOTA_UPLOAD, file=file_name),
                )
            except RowRejected as rejection:
                result.reject(line, rejection)
                continue
            except ValidationError as error:
                column = "name" if error.code == "quota_subject_role" else "target"
                result.reject(line, _rejection_from(error, column, row.get(column, "")))
                continue
            # Only an accepted row counts as the first of its key, so a rejected row cannot block its correction.
            seen[key] = line
            result.count(outcome)
    logger.info(
        "Quota upload finished organization_id=%s created=%s updated=%s unchanged=%s rejected=%s",
        organization.pk,
        result.created,
        result.updated,
        result.unchanged,
        result.rejected,
    )
    return result


def _quota_row(organization: Organization, index: _SubjectIndex, allowed_days: DateRange, row: dict):
    parsing.formula_cells_check(row)
    level_text = require_value(row, "level")
    level = LEVEL_WORDS.get(level_text.strip().lower())
    if level is None:
        raise RowRejected("level", level_text, gettext_noop("unknown level; use rep, team or territory"))
    subject_id = index.find(level, require_value(row, "name"))

    period_text = require_value(row, "period")
    try:
        period = fiscal.parse_period(period_text, organization.fiscal_year_start_month)
    except ValueError:
        raise RowRejected("period", period_text, gettext_noop("invalid period; use 2025, 2025-Q1 or 2025-03")) from None
    try:
        allowed_days.check_period(period, period_text.strip())
    except ValidationError as error:
        raise _rejection_from(error, "period", period_text) from None

    metric = require_value(row, "metric").strip().lower()
    if metric not in QuotaMetric.values:
        raise RowRejected("metric", row["metric"], gettext_noop("unknown metric; use %(choices)s"), choices=", ".join(QuotaMetric.values))

    target = parsing.parse_number(require_value(row, "target"), "target")
    prorate_text = row.get("prorate", "")
    is_prorated = None if not prorate_text.strip() else parsing.parse_yes_no(prorate_text, "prorate", default=True)
    return level, subject_id, period, metric, target, is_prorated


# --- people -------------------------------------------------------------------------------------


def people_import(
    *,
    organization: Organization,
    actor: User | None,
    data: bytes,
    file_name: str,
    today: dt.date | None = None,
    add_existing_accounts: bool = False,
) -> UploadResult:
    """Create or update members from a CSV or XLSX file; return counts and rejected rows.

    Columns: name, email, and optionally role (admin, manager, rep), team,
    territory, active_from, active_to (YYYY-MM-DD or DD.MM.YYYY). A row matches
    an existing member by e-mail; a row without an e-mail matches by a unique
    name. A new person needs an e-mail, and a row whose new e-mail comes with
    the name of an existing member is rejected. Teams and territories that do
    not exist yet are created. A changed team or territory schedules one KPI
    recompute for the whole upload. A changed team or territory becomes an Assignment from the member's
    active_from (new members) or from `today` (existing members; default: today
    in the organization's time zone). An empty
    cell leaves the member's value as it is. New users get no usable password.
    A row repeating an earlier accepted row's e-mail address (or, without one,
    its name) is rejected, so a file cannot change one person twice.

    A row whose e-mail address belongs to a user who is not a member of this
    organization is rejected, because that user keeps their password and could
    then open this organization. `add_existing_accounts` adds such users instead;
    the people page never sets it, only the operator's `import_people
    --add-existing-accounts` does.
    """
    rows = parsing.read_table(data, file_name, required=PEOPLE_COLUMNS)
    result = UploadResult(file_name=file_name)
    today = today or organization_today(organization)
    first_lines: dict[tuple[str, str], int] = {}
    # Members whose team or territory changed, so the upload schedules one KPI recompute for all of them.
    moved_ids: set[int] = set()

    with transaction.atomic():
        for line, row in rows:
            key = _person_key(row)
            try:
                if key in first_lines:
                    raise RowRejected(
                        key[0], row.get(key[0], ""), gettext_noop("repeats line %(line)d; keep one of them"), line=first_lines[key]
                    )
                with transaction.atomic():
                    outcome = _person_row(organization, actor, row, today, add_existing_accounts, moved_ids)
            except RowRejected as rejection:
                result.reject(line, rejection)
                continue
            except ValidationError as error:
                result.reject(line, _rejection_from(error, "name", row.get("name", "")))
                continue
            first_lines[key] = line
            result.count(outcome)
        if moved_ids:
            kpi_recompute_schedule(organization_id=organization.pk)
    logger.info(
        "People upload finished organization_id=%s created=%s updated=%s unchanged=%s rejected=%s",
        organization.pk,
        result.created,
        result.updated,
        result.unchanged,
        result.rejected,
    )
    return result


def _person_key(row: dict) -> tuple[str, str]:
    """Return what identifies the row's person within one file: the e-mail address, else the name, case-insensitive."""
    email = row.get("email", "").strip().lower()
    if email:
        return ("email", email)
    return ("name", row.get("name", "").strip().lower())


def _find_member(email: str, name: str) -> Membership | None:
    """Return the member with this e-mail address, or without an address the one member with this name.

    A row with an address that no member has adds a new person, so a member who
    already has the row's name is not changed: the row is rejected instead.
    """
    if email:
        found = Membership.objects.select_related("user").filter(user__email__iexact=email).first()
        if found is not None:
            return found
        if name:
            namesake = Membership.objects.select_related("user").filter(user__name__iexact=name).order_by("user__email").first()
            if namesake is not None:
                raise RowRejected("name", name, NAME_OF_ANOTHER_MEMBER, email=namesake.user.email)
        return None
    if name:
        matches = list(Membership.objects.select_related("user").filter(user__name__iexact=name)[:2])
        if len(matches) > 1:
            raise RowRejected("name", name, gettext_noop("two people have this name; add the e-mail address"))
        if matches:
            return matches[0]
    return None


def _group(model, organization, actor, name: str):
    if not name:
        return None
    found = model.objects.filter(name__iexact=name).first()
    if found is not None:
        return found
    if model is Team:
        return services.team_save(organization=organization, actor=actor, name=name)
    return services.territory_save(organization=organization, actor=actor, name=name)


def _person_row(
    organization: Organization,
    actor: User | None,
    row: dict,
    today: dt.date,
    add_existing_accounts: bool,
    moved_ids: set[int],
) -> str:
    """Create or update the row's person and return the outcome; add the member's id to `moved_ids` on a move."""
    parsing.formula_cells_check(row)
    name = check_length(row.get("name", "").strip(), "name", 200)
    email = row.get("email", "").strip().lower()
    if not name and not email:
        raise RowRejected("email", email, gettext_noop("missing value; give an e-mail address or a name"))
    if email:
        email_check(email, "email", row.get("email", "").strip())
    role_text = row.get("role", "").strip()
    role = ROLE_WORDS.get(role_text.lower()) if role_text else None
    if role_text and role is None:
        raise RowRejected("role", role_text, gettext_noop("unknown role; use admin, manager or rep"))
    active_from = parsing.parse_optional_day(row.get("active_from", "").strip(), "active_from")
    active_to = parsing.parse_optional_day(row.get("active_to", "").strip(), "active_to")
    if active_from and active_to and active_to < active_from:
        raise RowRejected("active_to", row["active_to"], gettext_noop("lies before active_from"))
    team_name = check_length(row.get("team", "").strip(), "team", 200)
    territory_name = check_length(row.get("territory", "").strip(), "territory", 200)

    membership = _find_member(email, name)
    if membership is None and email and not add_existing_accounts and User.objects.filter(email__iexact=email).exists():
        raise foreign_account_rejection("email", email, email)
    team = _group(Team, organization, actor, team_name) if team_name else None
    territory = _group(Territory, organization, actor, territory_name) if territory_name else None
    if membership is None:
        if not email:
            raise RowRejected("email", email, gettext_noop("missing value; a new person needs an e-mail address"))
        if not name:
            # Otherwise the person would be shown by their e-mail address.
            raise RowRejected("name", name, NEW_PERSON_NAME_MISSING)
        _person_create(organization, actor, email, name, role, active_from, active_to, team, territory, today)
        return "created"

    outcome = "unchanged"
    if name and membership.user.name != name and email and membership.user.email.lower() == email:
        membership.user.name = name
        membership.user.save(update_fields=["name"])
        outcome = "updated"
    changed = services.membership_update(
        membership=membership,
        actor=actor,
        role=role or membership.role,
        active_from=active_from or membership.active_from,
        active_to=active_to or membership.active_to,
        ramp_schedule=membership.ramp_schedule,
        manager=membership.manager,
        reason=audit_reason(REASON_PEOPLE_UPLOAD),
    )
    if changed:
        outcome = "updated"

    team = team or membership.team
    territory = territory or membership.territory
    if (team, territory) != (membership.team, membership.territory):
        try:
            assignment = services.assignment_change(
                membership=membership,
                actor=actor,
                team=team,
                territory=territory,
                valid_from=today,
                today=today,
                recompute=False,
            )
        except ValidationError as error:
            # A move into a team led by one of the member's reports.
            raise _rejection_from(error, "team", team_name) from error
        if assignment is not None:
            moved_ids.add(membership.pk)
            outcome = "updated"
    return outcome


def _person_create(organization, actor, email, name, role, active_from, active_to, team, territory, today) -> Membership:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=None, name=name)
    membership = Membership.objects.create(
        organization=organization,
        user=user,
        role=role or Role.REP,
        active_from=active_from,
        active_to=active_to,
        team=team,
        territory=territory,
    )
    if team is not None or territory is not None:
        # The history starts with the first working day, so quotas and credit before it stay unassigned.
        Assignment.objects.create(
            organization=organization,
            membership=membership,
            team=team,
            territory=territory,
            valid_from=active_from or today,
        )
    services.audit_write(
        organization=organization,
        actor=actor,
        action=MEMBERSHIP_CREATED,
        object_type="membership",
        object_id=membership.pk,
        before=None,
        after={
            "role": membership.role,
            "active_from": active_from,
            "active_to": active_to,
            "team_id": membership.team_id,
            "territory_id": membership.territory_id,
        },
        reason=audit_reason(REASON_PEOPLE_UPLOAD),
    )
    return membership
