"""Import core shared by every CRM importer: CSV reading, value parsing, row errors, counts, upserts.

An importer reads whole files, rejects bad rows with a `RowError` (file, line, column,
value, reason) and writes the good rows with `bulk_upsert`, which matches rows by a key
and reports which keys it created, updated or left unchanged. The caller owns the
transaction; nothing here commits.

A reason is a `Message`, which keeps the message id and its parameters and translates them
only when shown. Import and sync runs store reasons, and people with another language read
them later, so a date parameter is stored as an ISO date and shown in the reader's format.
"""

import datetime as dt
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from pipelines.models import MAX_MONEY_AMOUNT, ExchangeRate
from spm.models import Organization

BATCH_SIZE = 1000
CENT = Decimal("0.01")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Summary rows in the order the command prints them.
ENTITIES = ("people", "teams", "territories", "accounts", "products", "deals", "stage_changes")


class ImportSourceError(Exception):
    """The run as a whole cannot start: a file or column is missing, or an option is invalid.

    `message` is a Message, so an import run that stores it shows it in the reader's
    language. Text passed in place of a Message is kept as it is, as a literal.
    """

    def __init__(self, message: "str | Message", /):
        self.message = message if isinstance(message, Message) else Message.literal(message)
        super().__init__(self.message.msgid)

    def __str__(self) -> str:
        return str(self.message)


# Parameter types a Message stores. A date is stored in JSON as its ISO string.
MessageParam = str | int | dt.date


class Message:
    """Text for a person to read, kept as a message id and parameters until it is shown.

    `str()` translates the id into the active language and fills in the parameters, so a
    reason stored under German reads in English for an English reader. A parameter may
    itself be a Message, translated the same way. A date parameter is shown in the active
    language's SHORT_DATE_FORMAT (German 05.12.2026, English 12/05/2026). `Message.literal(text)`
    wraps text without a message id, which is shown as it is: a validator's finished message,
    or a reason that an older version stored as translated text.
    """

    __slots__ = ("msgid", "params", "is_literal")

    def __init__(self, msgid: str, params: dict[str, "MessageParam | Message"] | None = None, *, is_literal: bool = False):
        params = dict(params or {})
        for name, value in params.items():
            # A datetime is a date too, but its time would be lost in the stored ISO date.
            if not isinstance(value, (str, int, dt.date, Message)) or isinstance(value, dt.datetime):
                raise TypeError(
                    f"Message parameter {name!r} must be str, int, datetime.date or Message, not {type(value).__name__}"
                )
        self.msgid = msgid
        self.params = params
        self.is_literal = is_literal

    @classmethod
    def literal(cls, text: str) -> "Message":
        return cls(text, is_literal=True)

    def __str__(self) -> str:
        if self.is_literal:
            return self.msgid
        values = {name: _param_shown(value) for name, value in self.params.items()}
        if not values:
            return gettext(self.msgid)
        try:
            return gettext(self.msgid) % values
        except (KeyError, TypeError, ValueError):
            # The translation's placeholders no longer match this stored message, so show the source text.
            return self.msgid % values

    def __repr__(self) -> str:
        if self.is_literal:
            return f"Message.literal({self.msgid!r})"
        return f"Message({self.msgid!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.msgid, self.params, self.is_literal) == (other.msgid, other.params, other.is_literal)

    def __hash__(self) -> int:
        return hash((self.msgid, self.is_literal, tuple(sorted(self.params.items()))))

    def as_json(self) -> str | dict[str, Any]:
        """Return a literal as its text, else {"msgid": …, "params": {…}} with nested Messages in the same form and dates as ISO strings."""
        if self.is_literal:
            return self.msgid
        params = {name: _param_as_json(value) for name, value in self.params.items()}
        return {"msgid": self.msgid, "params": params}

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any]) -> "Message":
        """Rebuild a Message from `as_json` output. Plain text, as older versions stored it, becomes a literal.

        A text parameter that is a valid ISO date (YYYY-MM-DD) becomes a date, so that dates
        stored before dates were typed also show in the reader's format.
        """
        if isinstance(data, str):
            return cls.literal(data)
        params = {name: _param_from_json(value) for name, value in data.get("params", {}).items()}
        return cls(data["msgid"], params)


def _param_shown(value: "MessageParam | Message") -> "str | int":
    if isinstance(value, Message):
        return str(value)
    if isinstance(value, dt.date):
        return date_format(value, "SHORT_DATE_FORMAT")
    return value


def _param_as_json(value: "MessageParam | Message") -> Any:
    if isinstance(value, Message):
        return value.as_json()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _param_from_json(value: Any) -> "MessageParam | Message":
    if isinstance(value, Mapping):
        return Message.from_json(value)
    if isinstance(value, str) and ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            # Shaped like a date but no such day (2026-02-30): it was text, so it stays text.
            return value
    return value


class RowRejected(Exception):
    """One value makes its row unusable, so the importer records it and skips the row.

    `reason` is a message id marked with `gettext_noop`, whose placeholders `params` fill in,
    or a ready Message without `params`. `column` is the file's column name, or a Message
    when the text around the name needs translating.
    """

    def __init__(self, column: "str | Message", value: str, reason: "str | Message", /, **params: "MessageParam | Message"):
        if isinstance(reason, Message):
            if params:
                raise TypeError("RowRejected takes params only with a message id, not with a Message")
            message = reason
        else:
            message = Message(reason, params)
        super().__init__(message.msgid)
        self.column = column
        self.value = value
        self.reason = message

    def __str__(self) -> str:
        return str(self.reason)


# Characters of a rejected value that a message repeats; RowError.value keeps the whole value.
VALUE_SHOWN_CHARACTERS = 60


def value_excerpt(value: str) -> str:
    """Return `value` as messages repeat it: its first VALUE_SHOWN_CHARACTERS characters, and "…" when it is longer."""
    # A record import may pass a JSON number or null as the value, which is short anyway.
    if not isinstance(value, str) or len(value) <= VALUE_SHOWN_CHARACTERS:
        return value
    return value[:VALUE_SHOWN_CHARACTERS] + "…"


@dataclass(frozen=True)
class RowError:
    """A rejected row. `line` counts physical lines of the file, the header being line 1."""

    file_name: str
    line: int
    column: "str | Message"
    value: str
    reason: Message

    @classmethod
    def from_rejection(cls, file_name: str, line: int, rejection: RowRejected) -> "RowError":
        return cls(file_name, line, rejection.column, rejection.value, rejection.reason)

    def __str__(self) -> str:
        return gettext("%(file)s line %(line)d, column %(column)s, value %(value)r: %(reason)s") % {
            "file": self.file_name,
            "line": self.line,
            "column": str(self.column),
            "value": value_excerpt(self.value),
            "reason": str(self.reason),
        }

    def as_json(self) -> list:
        """Return the row as ImportRun.rejected_rows stores it: [file, line, column, value, reason]."""
        column = self.column.as_json() if isinstance(self.column, Message) else self.column
        return [self.file_name, self.line, column, self.value, self.reason.as_json()]

    @classmethod
    def from_json(cls, row: list) -> "RowError":
        """Rebuild a stored row. A column or reason that an older version stored as text stays as it was."""
        file_name, line, column, value, reason = row
        if isinstance(column, Mapping):
            column = Message.from_json(column)
        return cls(file_name, line, column, value, Message.from_json(reason))


@dataclass
class EntityCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    rejected: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "rejected": self.rejected,
        }


class PersonAccount(models.TextChoices):
    """The user behind a member that an import created.

    CRM imports create only new users now, because they never attach an account outside the
    organization. The two existing-account values remain for runs stored before that rule.
    """

    NEW = "new", _("new account without password")
    EXISTING_LOGIN = "existing_login", _("existing account that can log in")
    EXISTING_NO_LOGIN = "existing_no_login", _("existing account that cannot log in")


@dataclass(frozen=True)
class CreatedPerson:
    """A member that an import created because the file names a person the organization did not have.

    `key` is how the file names them (id, e-mail address or name). The member has the rep role.
    """

    key: str
    name: str
    email: str
    account: PersonAccount

    def as_json(self) -> dict[str, str]:
        return {"key": self.key, "name": self.name, "email": self.email, "account": str(self.account.value)}


def person_sort_key(name: str, email: str) -> tuple[str, str]:
    """Return the key that orders people by name as a German or English reader expects: Ärne before Björn.

    Accents are dropped before case folding, because casefold alone sorts "ä" after "z".
    A person without a name sorts by their e-mail address.
    """
    decomposed = unicodedata.normalize("NFKD", name or email)
    base = "".join(character for character in decomposed if not unicodedata.combining(character))
    return base.casefold(), email


def people_created_sorted(people: Iterable[CreatedPerson]) -> list[CreatedPerson]:
    """Return the created members in the order that `import_crm` and the import page list them: by `person_sort_key`."""
    return sorted(people, key=lambda person: person_sort_key(person.name, person.email))


@dataclass
class ImportResult:
    source: str
    path: str
    currency: str
    counts: dict[str, EntityCounts] = field(default_factory=lambda: {name: EntityCounts() for name in ENTITIES})
    errors: list[RowError] = field(default_factory=list)
    duration_seconds: float = 0.0
    # External ids of the written deals in file order; the dry-run preview shows the first ones.
    deal_keys: list[str] = field(default_factory=list)
    # Called as progress(done, total) with row counts while the import runs; None ignores progress.
    progress: Callable[[int, int], None] | None = None
    # Members created for people the files name, in the order they were created (PeopleDirectory.ensure).
    people_created: list[CreatedPerson] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(counts.has_changes for counts in self.counts.values())

    def report_progress(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def reject(self, entity: str, file_name: str, line: int, rejection: RowRejected) -> None:
        self.counts[entity].rejected += 1
        self.errors.append(RowError.from_rejection(file_name, line, rejection))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable summary that the audit log stores."""
        return {
            "source": self.source,
            "path": self.path,
            "currency": self.currency,
            "counts": {name: counts.as_dict() for name, counts in self.counts.items()},
            "rejected_rows": len(self.errors),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def require_value(row: Mapping[str, str], column: str) -> str:
    value = row.get(column, "")
    if not value:
        raise RowRejected(column, value, gettext_noop("missing value"))
    return value


def check_length(value: str, column: str, max_length: int) -> str:
    if len(value) > max_length:
        raise RowRejected(column, value, gettext_noop("too long; at most %(max_length)d characters"), max_length=max_length)
    return value


def parse_int(value: str, column: str, *, minimum: int = 0, maximum: int = 2_147_483_647) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RowRejected(column, value, gettext_noop("invalid whole number")) from None
    if not minimum <= number <= maximum:
        raise RowRejected(
            column, value, gettext_noop("out of range; expected %(minimum)d to %(maximum)d"), minimum=minimum, maximum=maximum
        )
    return number


def date_at_noon_utc(day: dt.date) -> dt.datetime:
    """Store a date-only source value as 12:00 UTC of that date.

    12:00 UTC falls on the same local date in every time zone from UTC−11 to UTC+11, so
    a date-only value keeps its calendar date for any organization's time zone in that
    range. Differences between two such values are whole days, with no daylight-saving drift.
    """
    return dt.datetime(day.year, day.month, day.day, 12, 0, tzinfo=dt.timezone.utc)


class ExchangeRateTable:
    """The organization's rates for one currency, looked up by date without a query per row."""

    def __init__(self, *, organization: Organization, currency: str):
        self.currency = currency
        rates = ExchangeRate.objects.filter(organization=organization, currency=currency).order_by("valid_from")
        pairs = list(rates.values_list("valid_from", "rate"))
        self._days = [day for day, _rate in pairs]
        self._rates = [rate for _day, rate in pairs]

    def rate_on(self, day: dt.date) -> Decimal | None:
        """Return the rate with the latest `valid_from` on or before `day`, or None if there is none."""
        index = bisect_right(self._days, day)
        if index == 0:
            return None
        return self._rates[index - 1]


def convert_amount(amount: Decimal, rate: Decimal, *, column: "str | Message", value: str) -> Decimal:
    """Return `amount` × `rate` rounded half-up to cents.

    Raises RowRejected naming `column` and the file's `value` when the result exceeds
    MAX_MONEY_AMOUNT, which a rate above 1 can cause for an amount that was accepted.
    """
    converted = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    if converted > MAX_MONEY_AMOUNT:
        raise RowRejected(
            column,
            value,
            # The message id writes out MAX_MONEY_AMOUNT, as formats.AMOUNT_TOO_LARGE does.
            gettext_noop("amount too large once converted to the base currency; the maximum is 9,999,999,999,999.99"),
        )
    return converted


@dataclass
class UpsertOutcome:
    instances: dict[Hashable, models.Model]
    created: set[Hashable] = field(default_factory=set)
    updated: set[Hashable] = field(default_factory=set)
    unchanged: set[Hashable] = field(default_factory=set)


def bulk_upsert(
    *,
    model: type[models.Model],
    existing: Mapping[Hashable, models.Model],
    desired: Mapping[Hashable, Mapping[str, Any]],
    build: Callable[[Hashable, Mapping[str, Any]], models.Model],
    batch_size: int = BATCH_SIZE,
    create: Callable[[list[models.Model]], None] | None = None,
) -> UpsertOutcome:
    """Create the keys missing from `existing` and update the fields that differ, in batches.

    `desired` maps each key to field values by attribute name (use `owner_id`, not
    `owner`, for foreign keys). Existing instances are updated in place, and fields with
    `auto_now` are refreshed on the rows that change. Rows are compared with `==`, so
    Decimal("5") equals Decimal("5.00"). Returns every key's instance, with created
    instances carrying their primary key.

    `create` inserts the new instances and sets their primary keys. It defaults to
    `bulk_create` in batches of `batch_size`.
    """
    outcome = UpsertOutcome(instances={})
    to_create = []
    to_update = []
    changed_fields: set[str] = set()

    for key, values in desired.items():
        instance = existing.get(key)
        if instance is None:
            instance = build(key, values)
            to_create.append(instance)
            outcome.created.add(key)
        else:
            differing = [name for name, value in values.items() if getattr(instance, name) != value]
            for name in differing:
                setattr(instance, name, values[name])
            if differing:
                to_update.append(instance)
                changed_fields.update(differing)
                outcome.updated.add(key)
            else:
                outcome.unchanged.add(key)
        outcome.instances[key] = instance

    if to_update:
        auto_now_fields = [f.attname for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
        now = timezone.now()
        for instance in to_update:
            for name in auto_now_fields:
                setattr(instance, name, now)
        # The base manager, because a default manager may hide rows that `existing` contains (Deal.objects
        # hides deals deleted in the CRM, and a re-sent deal must be restored); the rows are matched by pk.
        model._base_manager.bulk_update(to_update, sorted(changed_fields | set(auto_now_fields)), batch_size=batch_size)
    if to_create and create is not None:
        create(to_create)
    elif to_create:
        model.objects.bulk_create(to_create, batch_size=batch_size)
    return outcome


def chunked(items: list, size: int = BATCH_SIZE) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fetch_by_keys(queryset: models.QuerySet, field_name: str, keys: Iterable[Hashable]) -> dict[Hashable, models.Model]:
    """Load the rows whose `field_name` is in `keys`, keyed by that value; the lowest id wins duplicates.

    Queries in batches of 900 keys, below SQLite's limit of bound parameters per statement.
    """
    found: dict[Hashable, models.Model] = {}
    for batch in chunked(sorted(set(keys)), 900):
        for instance in queryset.filter(**{f"{field_name}__in": batch}).order_by("pk"):
            found.setdefault(getattr(instance, field_name), instance)
    return found
