"""Importer for the Maven Analytics "CRM + Sales + Opportunities" export.

The export is a folder with four CSV files: sales_teams.csv (agent, manager, regional
office), accounts.csv, products.csv and sales_pipeline.csv (one row per opportunity,
current state only). People, territories, teams, accounts and products are imported
first, so deals can refer to them. Every entity is matched by its id in the source
(a name, or the opportunity id), so a re-import of the same files changes nothing.

The files may be the original comma-separated UTF-8 or what German Excel saves
(semicolons, `1.234,56 €`, `dd.mm.yyyy`, Windows-1252, a byte order mark): they are
read and parsed with `pipelines.importers.formats`, like every other source.
"""

import datetime as dt
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.db import connection
from django.utils.translation import gettext_noop

from goals.models import Team, Territory
from pipelines.importers.base import (
    BATCH_SIZE,
    ImportResult,
    ImportSourceError,
    Message,
    RowRejected,
    bulk_upsert,
    check_length,
    fetch_by_keys,
    parse_int,
    require_value,
)
from pipelines.importers.emails import generated_email_check
from pipelines.importers.formats import (
    TableStream,
    parse_decimal,
    parse_money,
    table_stream,
)
from pipelines.importers.maven_deals import DEAL_COLUMNS, import_deals
from pipelines.models import Account, Pipeline, Product, Stage, StageKind
from spm.models import Membership, Organization, Role, User

logger = logging.getLogger(__name__)

SOURCE = "maven"
TEAMS_FILE = "sales_teams.csv"
ACCOUNTS_FILE = "accounts.csv"
PRODUCTS_FILE = "products.csv"
PIPELINE_FILE = "sales_pipeline.csv"

# Columns without which a file cannot be mapped. Other known columns may be missing
# and then read as blank (e.g. an accounts.csv without `subsidiary_of`).
REQUIRED_COLUMNS = {
    TEAMS_FILE: ("sales_agent", "manager"),
    ACCOUNTS_FILE: ("account",),
    PRODUCTS_FILE: ("product",),
    PIPELINE_FILE: (
        "opportunity_id",
        "sales_agent",
        "product",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
}

PIPELINE_NAME = "Sales"


@dataclass(frozen=True)
class StageSpec:
    name: str
    order: int
    kind: str
    probability: int


STAGES = (
    StageSpec("Prospecting", 1, StageKind.OPEN, 10),
    StageSpec("Engaging", 2, StageKind.OPEN, 50),
    StageSpec("Won", 3, StageKind.WON, 100),
    StageSpec("Lost", 4, StageKind.LOST, 0),
)


# Letters spelled out before NFKD drops the accents. German umlauts become the spelling German
# uses without umlauts, so "Müller" and "Muller" stay apart. Letters such as ß and ø are listed
# too, because NFKD does not split them into a base letter and a mark.
EMAIL_TRANSLITERATION = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss", "æ": "ae", "œ": "oe", "ø": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th"}
)


def person_email(name: str, organization_slug: str) -> str:
    """Build the made-up address `<name>@<slug>.example` for a person the export names.

    Letters are lower-cased, German umlauts and ß are written out (ä → ae, ß → ss), other
    accents are dropped, and every run of characters other than letters and digits becomes
    one dot: "Jörg Weiß-Straße" → "joerg.weiss.strasse@demo.example". Returns "" when the
    name has no letter. The `.example` domain is reserved, so nothing is ever delivered to
    these addresses.
    """
    spelled = unicodedata.normalize("NFC", name).lower().translate(EMAIL_TRANSLITERATION)
    ascii_name = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")
    parts = []
    current = []
    for character in ascii_name:
        if "a" <= character <= "z" or "0" <= character <= "9":
            current.append(character)
        elif current:
            parts.append("".join(current))
            current = []
    if current:
        parts.append("".join(current))
    if not any("a" <= character <= "z" for character in ascii_name):
        return ""
    return f"{'.'.join(parts)}@{organization_slug}.example"


def maven_foreign_rejection(column: str, name: str, email: str) -> RowRejected:
    """Return the rejection of a sales_teams.csv row naming `name`, whose generated address has a foreign account."""
    return RowRejected(
        column,
        name,
        gettext_noop(
            "the name gives the e-mail address %(email)s, which belongs to an existing SPM account outside this "
            "organization, so the import does not add it here; to add that account on purpose, run manage.py "
            "import_people --add-existing-accounts with this name and address first, then import again"
        ),
        email=email,
    )


def maven_import(
    *, organization: Organization, path: Path, currency: str, today: dt.date, date_order: str = ""
) -> ImportResult:
    """Import the four files of a Maven export folder; the caller owns the transaction.

    Raises ImportSourceError before writing anything when a file or a required column
    is missing. Bad rows are rejected into the result, and the good ones are written.
    `date_order` ("dmy", "mdy" or "") decides slashed dates such as 03/04/2017, which
    are rejected as ambiguous without it.
    """
    return MavenImport(
        organization=organization, folder=path, currency=currency, today=today, date_order=date_order
    ).run()


def maven_file_read(folder: Path, file_name: str, required_columns) -> "MavenRows":
    """Open one export file for reading row by row as `(line, row)` pairs, counting the header as line 1.

    Raises ImportSourceError when the file is missing, cannot be decoded or lacks a required
    column. While iterating, it raises on a line with a NUL character and, in sales_pipeline.csv,
    on a row that the csv module cannot read.
    """
    path = folder / file_name
    if not path.is_file():
        raise ImportSourceError(Message(gettext_noop("File %(path)s is missing."), {"path": str(path)}))
    # The deal import reads sales_pipeline.csv whole and raises on a row it cannot read, so
    # the pass of `table_stream` over every row would only read the largest file once more.
    stream = table_stream(path, rows_check=file_name != PIPELINE_FILE)
    stream.require_columns(required_columns)
    return MavenRows(stream)


# Bytes read at a time while looking for a NUL byte.
NUL_SCAN_CHUNK_BYTES = 1 << 20


class MavenRows:
    """The rows of one export file, read from disk on each iteration (see formats.TableStream)."""

    def __init__(self, stream: TableStream):
        self.stream = stream

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        # In UTF-8 and Windows-1252 only the character NUL is encoded with the byte 0, so a
        # file without that byte needs no check per row, which would join every row's cells.
        if not self.has_nul_byte():
            return iter(self.stream)
        return self.rows_checked()

    def cell_rows(self, columns: tuple[str, ...]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Yield `(line, cells)` with the cells of `columns`, as formats.TableStream.cell_rows does."""
        if not self.has_nul_byte():
            return self.stream.cell_rows(columns)
        return ((line, tuple(row.get(column, "") for column in columns)) for line, row in self.rows_checked())

    def has_nul_byte(self) -> bool:
        with self.stream.path.open("rb") as handle:
            while chunk := handle.read(NUL_SCAN_CHUNK_BYTES):
                if b"\x00" in chunk:
                    return True
        return False

    def rows_checked(self) -> Iterator[tuple[int, dict[str, str]]]:
        for line, row in self.stream:
            # PostgreSQL text columns cannot store NUL, and no CSV export writes one: the file is binary.
            if "\x00" in "".join(row.values()):
                raise ImportSourceError(
                    Message(
                        gettext_noop("File %(file)s contains a NUL character on line %(line)d; it is not a text CSV file."),
                        {"file": self.stream.file_name, "line": line},
                    )
                )
            yield line, row


def parse_whole_number(value: str, column: str, *, maximum: int = 2_147_483_647) -> int:
    """Parse a whole number 0…`maximum`, also with thousands separators (`2.822`, `2,822`)."""
    try:
        number = parse_decimal(value, column)
    except RowRejected:
        raise RowRejected(column, value, gettext_noop("invalid whole number")) from None
    if number != number.to_integral_value():
        raise RowRejected(column, value, gettext_noop("invalid whole number"))
    try:
        return parse_int(str(int(number)), column, maximum=maximum)
    except RowRejected as rejection:
        raise RowRejected(column, value, rejection.reason) from None


@dataclass(frozen=True)
class StoredPeople:
    """The stored rows that match the people of sales_teams.csv, loaded once per import.

    `users_by_email` contains the users with the generated address of a person who has no
    membership with their name as external id, and `memberships_by_user_id` contains this
    organization's memberships of those users.
    """

    memberships_by_external_id: dict[str, Membership]
    users_by_email: dict[str, User]
    memberships_by_user_id: dict[int, Membership]


class MavenImport:
    def __init__(
        self, *, organization: Organization, folder: Path, currency: str, today: dt.date, date_order: str = ""
    ):
        self.organization = organization
        self.folder = folder
        self.currency = currency
        self.today = today
        self.date_order = date_order
        self.result = ImportResult(source=SOURCE, path=str(folder), currency=currency)
        self.memberships: dict[str, Membership] = {}
        self.accounts: dict[str, Account] = {}
        self.products: dict[str, Product] = {}

    def run(self) -> ImportResult:
        # Open and check all files first, so a missing file or column fails before any write.
        rows = {name: maven_file_read(self.folder, name, columns) for name, columns in REQUIRED_COLUMNS.items()}
        # The small files are read whole. The deal import reads sales_pipeline.csv once, row by
        # row, so memory stays flat however long the file is. A line it cannot read raises
        # ImportSourceError, and the caller's transaction then drops what the run wrote.
        for name in (TEAMS_FILE, ACCOUNTS_FILE, PRODUCTS_FILE):
            rows[name] = list(rows[name])

        self.import_people(rows[TEAMS_FILE])
        self.import_accounts(rows[ACCOUNTS_FILE])
        self.import_products(rows[PRODUCTS_FILE])
        pipeline, stages = self.pipeline_ensure()
        import_deals(
            organization=self.organization,
            rows=rows[PIPELINE_FILE].cell_rows(DEAL_COLUMNS),
            file_name=PIPELINE_FILE,
            source=SOURCE,
            result=self.result,
            pipeline=pipeline,
            stages=stages,
            memberships=self.memberships,
            accounts=self.accounts,
            products=self.products,
            currency=self.currency,
            today=self.today,
            date_order=self.date_order,
        )
        return self.result

    def reject(self, entity: str, file_name: str, line: int, rejection: RowRejected) -> None:
        self.result.reject(entity, file_name, line, rejection)

    # People, teams and territories (sales_teams.csv)

    def import_people(self, rows: list[tuple[int, dict[str, str]]]) -> None:
        """Import agents as reps and their managers as managers, one team per manager, offices as territories.

        An agent's team is their manager's team and their membership's `manager` is the
        manager's membership. A manager gets the territory of their first agent's office.
        Existing admins keep the admin role.
        """
        agents: dict[str, tuple[int, str, str]] = {}
        email_owner: dict[str, str] = {}
        slug = self.organization.slug
        for line, row in rows:
            try:
                name = check_length(require_value(row, "sales_agent"), "sales_agent", 200)
                manager = check_length(require_value(row, "manager"), "manager", 200)
                office = check_length(row.get("regional_office", ""), "regional_office", 200)
                if name in agents:
                    raise RowRejected(
                        "sales_agent",
                        name,
                        gettext_noop("duplicate sales agent; first listed on line %(line)d"),
                        line=agents[name][0],
                    )
                if name == manager:
                    raise RowRejected("manager", manager, gettext_noop("an agent cannot be their own manager"))
                for column, person in (("sales_agent", name), ("manager", manager)):
                    email = generated_email_check(person_email(person, slug), column, person)
                    if email_owner.get(email, person) != person:
                        raise RowRejected(
                            column,
                            person,
                            gettext_noop("the name gives the same e-mail address %(email)s as %(other)s"),
                            email=email,
                            other=email_owner[email],
                        )
            except RowRejected as rejection:
                self.reject("people", TEAMS_FILE, line, rejection)
                continue
            email_owner[person_email(name, slug)] = name
            email_owner[person_email(manager, slug)] = manager
            agents[name] = (line, manager, office)
        stored = self.foreign_people_reject(agents)

        manager_office: dict[str, str] = {}
        for _line, manager, office in agents.values():
            manager_office.setdefault(manager, office)
        people = set(agents) | set(manager_office)
        office_of = {name: office for name, (_line, _manager, office) in agents.items()}
        office_of.update(manager_office)

        territories = self.territories_upsert({office for office in office_of.values() if office})
        existing, user_ids = self.people_existing(people, stored)

        def role_for(name: str) -> str:
            current = existing.get(name)
            if current is not None and current.role == Role.ADMIN:
                return Role.ADMIN
            return Role.MANAGER if name in manager_office else Role.REP

        def territory_id(name: str) -> int | None:
            office = office_of[name]
            return territories[office].pk if office else None

        def build(name, values):
            return Membership(organization=self.organization, user_id=user_ids[name], **values)

        # Teams point at their manager's membership, so managers exist before teams and
        # get their team in the second pass together with the agents.
        managers = bulk_upsert(
            model=Membership,
            existing=existing,
            desired={
                name: {"external_id": name, "role": role_for(name), "territory_id": territory_id(name)}
                for name in manager_office
            },
            build=build,
        )
        teams = self.teams_upsert({name: managers.instances[name].pk for name in manager_office})

        desired = {}
        for name in people:
            values = {"external_id": name, "role": role_for(name), "territory_id": territory_id(name)}
            if name in manager_office:
                values["team_id"] = teams[name].pk
            if name in agents:
                manager = agents[name][1]
                values["manager_id"] = managers.instances[manager].pk
                if name not in manager_office:
                    values["team_id"] = teams[manager].pk
            desired[name] = values
        everyone = bulk_upsert(
            model=Membership, existing={**existing, **managers.instances}, desired=desired, build=build
        )

        counts = self.result.counts["people"]
        created = managers.created | everyone.created
        updated = (managers.updated | everyone.updated) - created
        counts.created += len(created)
        counts.updated += len(updated)
        counts.unchanged += len(people - created - updated)
        self.memberships = everyone.instances

    def foreign_people_reject(self, agents: dict[str, tuple[int, str, str]]) -> "StoredPeople":
        """Reject, and remove from `agents`, each row whose agent or manager has a foreign account.

        A person without a membership here whose generated address belongs to a stored user
        is such a person: that user is outside this organization and keeps their password,
        so the import must not make them a member. Returns what the lookup found about
        everyone `agents` named before the rejections, for `people_existing`.
        """
        memberships = Membership.objects.filter(organization=self.organization)
        people = set(agents) | {manager for _line, manager, _office in agents.values()}
        known = fetch_by_keys(memberships, "external_id", people)
        emails = {name: person_email(name, self.organization.slug) for name in people - known.keys()}
        users = fetch_by_keys(User.objects.all(), "email", emails.values())
        members = fetch_by_keys(memberships, "user_id", [user.pk for user in users.values()])
        foreign = {name: email for name, email in emails.items() if email in users and users[email].pk not in members}
        for name, (line, manager, _office) in list(agents.items()):
            column, person = ("sales_agent", name) if name in foreign else ("manager", manager)
            if person not in foreign:
                continue
            self.reject("people", TEAMS_FILE, line, maven_foreign_rejection(column, person, foreign[person]))
            del agents[name]
        return StoredPeople(memberships_by_external_id=known, users_by_email=users, memberships_by_user_id=members)

    def people_existing(self, people: set[str], stored: "StoredPeople") -> tuple[dict[str, Membership], dict[str, int]]:
        """Find each person's membership (by external id, then by user) and create missing users.

        `people` must be among those whom `stored` was loaded for, and nothing may have written
        users or memberships since. Returns the memberships found by name and, for everyone
        without one, the id of their user. A user with the person's e-mail address is reused as is.
        """
        known = stored.memberships_by_external_id
        existing = {name: known[name] for name in people & known.keys()}
        without_membership = sorted(people - existing.keys())
        emails = {name: person_email(name, self.organization.slug) for name in without_membership}

        users = {email: stored.users_by_email[email] for email in emails.values() if email in stored.users_by_email}
        new_users = []
        for name in without_membership:
            if emails[name] not in users:
                user = User(email=emails[name], name=name)
                user.set_unusable_password()
                users[emails[name]] = user
                new_users.append(user)
        User.objects.bulk_create(new_users)
        if new_users:
            logger.info("Import created users organization_id=%s count=%s", self.organization.pk, len(new_users))

        user_ids = {name: users[emails[name]].pk for name in without_membership}
        # A user created above has no membership yet, so the stored users' memberships are all there are.
        for name in without_membership:
            membership = stored.memberships_by_user_id.get(user_ids[name])
            if membership is not None:
                existing[name] = membership
        return existing, user_ids

    def territories_upsert(self, names: set[str]) -> dict[str, Territory]:
        outcome = bulk_upsert(
            model=Territory,
            existing=fetch_by_keys(Territory.objects.filter(organization=self.organization), "name", names),
            desired={name: {"external_id": name} for name in names},
            build=lambda name, values: Territory(organization=self.organization, name=name, **values),
        )
        self.count("territories", outcome)
        return outcome.instances

    def teams_upsert(self, manager_ids: dict[str, int]) -> dict[str, Team]:
        """Upsert one team per manager, named after the manager and matched by that name."""
        outcome = bulk_upsert(
            model=Team,
            existing=fetch_by_keys(Team.objects.filter(organization=self.organization), "name", manager_ids),
            desired={name: {"external_id": name, "manager_id": manager_id} for name, manager_id in manager_ids.items()},
            build=lambda name, values: Team(organization=self.organization, name=name, **values),
        )
        self.count("teams", outcome)
        return outcome.instances

    def count(self, entity: str, outcome) -> None:
        counts = self.result.counts[entity]
        counts.created += len(outcome.created)
        counts.updated += len(outcome.updated)
        counts.unchanged += len(outcome.unchanged)

    # Accounts (accounts.csv)

    def import_accounts(self, rows: list[tuple[int, dict[str, str]]]) -> None:
        """Upsert accounts by name, then link each to its parent (`subsidiary_of`).

        A parent must be an account of this file or one already imported. A row whose
        parent is unknown, or is rejected itself, is rejected. Sector and country are
        kept as spelled in the file (it has typos such as "technolgy").
        """
        parsed: dict[str, tuple[int, dict, str]] = {}
        for line, row in rows:
            try:
                name = check_length(require_value(row, "account"), "account", 200)
                if name in parsed:
                    raise RowRejected(
                        "account",
                        name,
                        gettext_noop("duplicate account; first listed on line %(line)d"),
                        line=parsed[name][0],
                    )
                values = {
                    "name": name,
                    "sector": check_length(row.get("sector", ""), "sector", 100),
                    "country": check_length(row.get("office_location", ""), "office_location", 100),
                    "year_established": optional(row, "year_established", parse_whole_number, maximum=9999),
                    "annual_revenue_amount": optional(row, "revenue", parse_money, currency=self.currency),
                    "employees": optional(row, "employees", parse_whole_number),
                }
                parent = row.get("subsidiary_of", "")
                if parent == name:
                    raise RowRejected("subsidiary_of", parent, gettext_noop("an account cannot be its own parent"))
            except RowRejected as rejection:
                self.reject("accounts", ACCOUNTS_FILE, line, rejection)
                continue
            parsed[name] = (line, values, parent)

        known = set(Account.objects.filter(organization=self.organization).values_list("external_id", flat=True))
        # Rejecting a parent can orphan its subsidiaries, so repeat until nothing changes.
        rejected_any = True
        while rejected_any:
            rejected_any = False
            for name, (line, _values, parent) in list(parsed.items()):
                if parent and parent not in parsed and parent not in known:
                    reason = gettext_noop("unknown parent account; it is neither in this file nor imported before")
                    self.reject("accounts", ACCOUNTS_FILE, line, RowRejected("subsidiary_of", parent, reason))
                    del parsed[name]
                    rejected_any = True

        accounts = Account.objects.filter(organization=self.organization)
        written = bulk_upsert(
            model=Account,
            # `known` contains every stored external id, so the other names need no query.
            existing=fetch_by_keys(accounts, "external_id", parsed.keys() & known),
            desired={name: {"external_id": name, **values} for name, (_line, values, _parent) in parsed.items()},
            build=lambda name, values: Account(organization=self.organization, **values),
            create=self.accounts_insert,
        )
        parent_names = {parent for _line, _values, parent in parsed.values() if parent}
        parents = {**fetch_by_keys(accounts, "external_id", parent_names - written.instances.keys()), **written.instances}
        # Every key exists after the first pass, so this pass only updates and never builds.
        linked = bulk_upsert(
            model=Account,
            existing=written.instances,
            desired={
                name: {"parent_id": parents[parent].pk if parent else None}
                for name, (_line, _values, parent) in parsed.items()
            },
            build=lambda name, values: None,
        )

        counts = self.result.counts["accounts"]
        updated = (written.updated | linked.updated) - written.created
        counts.created += len(written.created)
        counts.updated += len(updated)
        counts.unchanged += len(parsed.keys() - written.created - updated)
        self.accounts = written.instances

    def accounts_insert(self, accounts: list[Account]) -> None:
        """Insert new accounts of this organization and set their primary keys.

        On PostgreSQL the rows go through COPY, and one query then reads the ids by external
        id. bulk_create would quote every value into the statement's text in Python, because
        the connection binds parameters on the client. Each value is prepared by its field,
        as bulk_create does. Other databases use bulk_create.
        """
        if connection.vendor != "postgresql":
            Account.objects.bulk_create(accounts, batch_size=BATCH_SIZE)
            return

        fields = [field for field in Account._meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        with connection.cursor() as cursor:
            # The connection itself, because each field reads its `ops` and `features`, which
            # cost a thread-local lookup each through the `connection` proxy.
            database = cursor.db
            with cursor.copy(f"COPY {quote(Account._meta.db_table)} ({columns}) FROM STDIN") as copy:
                for account in accounts:
                    copy.write_row([field.get_db_prep_save(field.pre_save(account, True), database) for field in fields])

        # The organization's other accounts come along, because `import_accounts` has read all
        # their external ids already, and this needs no parameter per account.
        stored = Account.objects.filter(organization=self.organization).order_by()
        ids = dict(stored.values_list("external_id", "pk"))
        for account in accounts:
            account.pk = ids[account.external_id]
            account._state.adding = False
            account._state.db = connection.alias

    # Products (products.csv)

    def import_products(self, rows: list[tuple[int, dict[str, str]]]) -> None:
        parsed: dict[str, tuple[int, dict]] = {}
        for line, row in rows:
            try:
                name = check_length(require_value(row, "product"), "product", 200)
                if name in parsed:
                    raise RowRejected(
                        "product",
                        name,
                        gettext_noop("duplicate product; first listed on line %(line)d"),
                        line=parsed[name][0],
                    )
                values = {
                    "series": check_length(row.get("series", ""), "series", 100),
                    "list_price_amount": optional(row, "sales_price", parse_money, currency=self.currency),
                }
            except RowRejected as rejection:
                self.reject("products", PRODUCTS_FILE, line, rejection)
                continue
            parsed[name] = (line, values)

        outcome = bulk_upsert(
            model=Product,
            existing=fetch_by_keys(Product.objects.filter(organization=self.organization), "name", parsed),
            desired={name: values for name, (_line, values) in parsed.items()},
            build=lambda name, values: Product(organization=self.organization, name=name, **values),
        )
        self.count("products", outcome)
        self.products = outcome.instances

    # Pipeline and stages

    def pipeline_ensure(self) -> tuple[Pipeline, dict[str, Stage]]:
        """Return the "Sales" pipeline and its stages by name, creating whichever is missing.

        Stages that exist keep their order, probability and kind, because an admin may
        have tuned them. The pipeline becomes the default only when the organization has
        no default pipeline yet.
        """
        pipeline = Pipeline.objects.filter(organization=self.organization, name=PIPELINE_NAME).first()
        if pipeline is None:
            has_default = Pipeline.objects.filter(organization=self.organization, is_default=True).exists()
            pipeline = Pipeline.objects.create(
                organization=self.organization, name=PIPELINE_NAME, is_default=not has_default
            )
            logger.info("Import created pipeline organization_id=%s pipeline_id=%s", self.organization.pk, pipeline.pk)

        stages = {stage.name: stage for stage in Stage.objects.filter(organization=self.organization, pipeline=pipeline)}
        for spec in STAGES:
            if spec.name not in stages:
                stages[spec.name] = Stage.objects.create(
                    organization=self.organization,
                    pipeline=pipeline,
                    name=spec.name,
                    order=spec.order,
                    kind=spec.kind,
                    probability=spec.probability,
                )
        return pipeline, {spec.name: stages[spec.name] for spec in STAGES}


def optional(row: dict[str, str], column: str, parse, **options) -> Decimal | int | None:
    """Parse `row[column]` with `parse`, or return None when the cell is blank or the column missing."""
    value = row.get(column, "")
    if not value:
        return None
    return parse(value, column, **options)
