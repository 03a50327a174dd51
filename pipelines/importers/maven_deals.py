"""Deals and their implied stage history from the Maven export's sales_pipeline.csv.

The file contains each opportunity's current stage with two dates: `engage_date` (the deal
entered Engaging) and `close_date` (it was won or lost). There is no stage history, so
the importer writes the moves these dates imply, marked `is_implied`, and derives
status and `closed_at` from them with `deal_close_state_refresh`.
"""

import contextlib
import datetime as dt
import functools
import gc
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.utils.translation import gettext_noop

from pipelines.importers import bulk
from pipelines.importers.base import (
    ExchangeRateTable,
    ImportResult,
    RowRejected,
    bulk_upsert,
    check_length,
    chunked,
    convert_amount,
    date_at_noon_utc,
    fetch_by_keys,
)
from pipelines.importers.formats import import_date_range, parse_day, parse_money
from pipelines.models import (
    Account,
    Deal,
    DealStageChange,
    Pipeline,
    Product,
    Stage,
    StageKind,
)
from pipelines.services import deal_close_state_refresh
from spm.models import Membership, Organization

logger = logging.getLogger(__name__)

# An export has a few thousand distinct dates at most, repeated over its rows, so
# building each noon once saves most of that work.
_noon_utc = functools.lru_cache(maxsize=16_384)(date_at_noon_utc)
# The maximum number of distinct texts that one parser remembers per kind of value (dates,
# amounts, stage spellings). An export repeats a few thousand of each over its rows, and the
# limit keeps memory flat for a file whose every row differs, such as dates with times.
PARSED_TEXTS_MAX = 16_384

# Rows parsed between two lookups of earlier imports' names, and staged by one COPY.
ROW_BATCH = 10_000
# The first batch is smaller, so the writer starts after a short wait instead of one whole batch.
FIRST_ROW_BATCH = 1_000
# The columns of sales_pipeline.csv that the parser reads, in the order of its `cells`.
DEAL_COLUMNS = (
    "opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date", "close_date", "close_value",
)  # fmt: skip
PROSPECTING = "Prospecting"
ENGAGING = "Engaging"
# sales_pipeline.csv spells one product differently from products.csv.
PRODUCT_ALIASES = {"GTXPro": "GTX Pro"}
AMOUNT_SOURCE_LIST_PRICE = "list_price"


@dataclass(slots=True)
class DealRow:
    line: int
    external_id: str
    owner: Membership
    product: Product
    account: Account | None
    stage: Stage
    engaged_on: dt.date | None
    closed_on: dt.date | None
    amount: Decimal | None
    base_amount: Decimal | None
    is_list_price: bool


class LatestDay:
    """The latest valid engage_date or close_date seen in the file, rejected rows included.

    `day_parse(value, column)` rejects a date outside the import's allowed range, so a
    year such as 9999 never becomes the as-of date.
    """

    def __init__(self, day_parse: Callable[[str, str], dt.date]):
        self.day_parse = day_parse
        self.day: dt.date | None = None

    def include(self, day: dt.date | None) -> None:
        if day is not None and (self.day is None or day > self.day):
            self.day = day

    def include_texts(self, engage_text: str, close_text: str) -> None:
        """Include the valid dates of a rejected row and skip its invalid ones."""
        for column, value in (("engage_date", engage_text), ("close_date", close_text)):
            if value:
                try:
                    self.include(self.day_parse(value, column))
                except RowRejected:
                    continue

    def as_of(self, default: dt.date) -> dt.date:
        """Return the export's as-of date: the latest day, or `default` for a file without a valid date.

        Prospecting rows carry no date, so they are dated at this day (12:00 UTC): they
        count as open pipeline at the end of the data. NOTE: a later export with later
        dates moves these deals' created_at forward.
        """
        return self.day or default


class NameLookup:
    """Rows of one kind by source name: the ones the other files provided, then the organization's earlier imports.

    `prefetch` loads the earlier rows of a batch's names in one query before the batch
    is parsed. On PostgreSQL the connection is busy with COPY while rows are parsed,
    so a lookup never queries. `by_name` is one plain dict of both kinds of rows, so
    the parser resolves a name with one dict lookup.
    """

    def __init__(self, provided: dict, queryset, field_name: str):
        self.provided = provided
        self.queryset = queryset
        self.field_name = field_name
        self.by_name: dict = dict(provided)
        self.looked_up: set[str] = set()

    def prefetch(self, names: set[str]) -> None:
        # Only names the other files did not provide are fetched, so an earlier row never
        # replaces a provided one in `by_name`.
        unknown = names - self.provided.keys() - self.looked_up - {""}
        if unknown:
            self.by_name.update(fetch_by_keys(self.queryset, self.field_name, unknown))
            self.looked_up |= unknown

    def get(self, name: str):
        return self.by_name.get(name)


def import_deals(
    *,
    organization: Organization,
    rows: Iterable[tuple[int, tuple[str, ...]]],
    file_name: str,
    source: str,
    result: ImportResult,
    pipeline: Pipeline,
    stages: dict[str, Stage],
    memberships: dict[str, Membership],
    accounts: dict[str, Account],
    products: dict[str, Product],
    currency: str,
    today: dt.date,
    date_order: str = "",
) -> None:
    """Upsert one deal per opportunity_id, rewrite the implied history of changed deals and refresh their status.

    `rows` yields `(line, cells)` with the cells of DEAL_COLUMNS and is read once. On
    PostgreSQL parsed rows go straight into COPY, so memory does not grow with the file.

    `memberships`, `accounts` and `products` are the rows imported from the other files
    by source name. Names missing there are looked up among the organization's earlier
    imports. Amounts are in `currency`, and `base_amount` is converted to the
    organization's currency at the rate valid on the close date (open deals: `today`).
    `date_order` ("dmy", "mdy" or "") decides slashed dates, see `formats.parse_day`.
    """
    parser = DealRowParser(
        organization=organization,
        stages=stages,
        memberships=memberships,
        accounts=accounts,
        products=products,
        currency=currency,
        today=today,
        date_order=date_order,
    )
    latest = LatestDay(parser.day_parse)

    def parsed_batches() -> Iterator[list[DealRow]]:
        first_line: dict[str, int] = {}
        for batch in _batches(rows, first_size=min(FIRST_ROW_BATCH, ROW_BATCH), size=ROW_BATCH):
            parser.prefetch(batch)
            parsed = []
            for line, cells in batch:
                try:
                    deal_row = parser.parse(line, cells, first_line)
                except RowRejected as rejection:
                    result.reject("deals", file_name, line, rejection)
                    latest.include_texts(cells[5], cells[6])
                    continue
                latest.include(deal_row.engaged_on)
                latest.include(deal_row.closed_on)
                parsed.append(deal_row)
            yield parsed

    with _older_objects_frozen():
        if connection.vendor == "postgresql":
            changed_ids = _deals_write_bulk(
                organization, source, parsed_batches(), result, pipeline, stages, currency, lambda: latest.as_of(today)
            )
        else:
            # A later row with the same id was rejected as a duplicate, so the dict keeps file order.
            parsed = {deal_row.external_id: deal_row for batch in parsed_batches() for deal_row in batch}
            changed_ids = _deals_write_orm(
                organization, source, parsed, result, pipeline, stages, currency, latest.as_of(today)
            )
    deal_close_state_refresh(organization=organization, deal_ids=changed_ids)
    counts = result.counts["deals"]
    logger.info(
        "Deals imported organization_id=%s source=%s created=%s updated=%s unchanged=%s rejected=%s",
        organization.pk,
        source,
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.rejected,
    )


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Leave the objects that exist on entry out of the garbage collector's passes until exit.

    A batch keeps its 10,000 parsed rows alive, so they reach the collector's oldest
    generation, and each full pass over it also walked every object of the process.
    That took about a fifth of the parse time of a 100,000-row export (measured on
    2 cores). Objects that become garbage while frozen are collected after exit.
    When something else froze objects before (a server may do so before it forks),
    nothing is frozen or unfrozen here.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _batches(rows: Iterable, *, first_size: int, size: int) -> Iterator[list]:
    """Yield `rows` in lists of `first_size` rows first and `size` rows after, the last one possibly shorter."""
    iterator = iter(rows)
    batch_size = first_size
    while batch := list(itertools.islice(iterator, batch_size)):
        yield batch
        batch_size = size


def _deals_write_orm(organization, source, parsed, result, pipeline, stages, currency, as_of) -> set[int]:
    """Upsert with the ORM, rewrite changed implied histories; return the ids whose state needs a refresh."""
    deals = Deal.all_objects.filter(organization=organization, source=source)
    existing = fetch_by_keys(deals, "external_id", parsed)
    # NOTE: when a person moved a deal after its close date, the refresh takes the stage from
    # that move, so the deal differs from the file and counts as updated on every re-import.
    desired = {key: deal_values(deal_row, existing.get(key), pipeline, currency, as_of) for key, deal_row in parsed.items()}
    outcome = bulk_upsert(
        model=Deal,
        existing=existing,
        desired=desired,
        build=lambda key, values: Deal(organization=organization, source=source, external_id=key, **values),
    )
    counts = result.counts["deals"]
    counts.created += len(outcome.created)
    counts.updated += len(outcome.updated)
    counts.unchanged += len(outcome.unchanged)

    moves = {
        outcome.instances[key].pk: implied_moves(deal_row, stages, outcome.instances[key].created_at)
        for key, deal_row in parsed.items()
    }
    rewritten = stage_history_sync(organization=organization, moves=moves, result=result)
    return {outcome.instances[key].pk for key in outcome.created | outcome.updated} | rewritten


def _deals_write_bulk(organization, source, deal_batches, result, pipeline, stages, currency, as_of) -> set[int]:
    """PostgreSQL: merge through COPY and a staging table (pipelines.importers.bulk); same rows as the ORM path.

    `deal_batches` is consumed once, one COPY per batch. `as_of()` returns
    the export's as-of date once every row is read: Prospecting deals are staged
    without a creation time and get noon of that day in the merge. Created deals
    get their implied moves and their derived state in the merge itself. Deals
    that existed go through `stage_history_sync` like the ORM path, with the moves
    the merge read back from the staging table. Returns the ids whose state needs
    `deal_close_state_refresh`.
    """
    staging = _StagingLines(engaging_id=stages[ENGAGING].pk)

    def staged():
        for batch in deal_batches:
            yield staging.batch(batch)

    outcome = bulk.deals_merge(
        organization_id=organization.pk,
        source=source,
        pipeline_id=pipeline.pk,
        currency=currency,
        batches=staged(),
        created_default=lambda: _noon_utc(as_of()),
    )
    counts = result.counts["deals"]
    counts.created += len(outcome.created)
    counts.updated += len(outcome.updated)
    counts.unchanged += len(outcome.unchanged)
    result.counts["stage_changes"].created += outcome.moves_created

    moves = {outcome.ids[key]: key_moves for key, key_moves in outcome.existing_moves.items()}
    rewritten = stage_history_sync(organization=organization, moves=moves, result=result) if moves else set()
    return {outcome.ids[key] for key in outcome.updated} | rewritten


@functools.lru_cache(maxsize=16_384)
def _noon_utc_text(day: dt.date) -> str:
    return _noon_utc(day).isoformat()


@functools.lru_cache(maxsize=16_384)
def _day_text(day: dt.date) -> str:
    return day.isoformat()


class _StagingLines:
    """Build the staged lines (bulk.StagedBatch) of parsed rows: the values of `deal_values` and the moves of `implied_moves`.

    The texts that repeat over an export are built once per run: a deal's name and
    ids for each product and account, an owner's ids, the texts of each day. This
    runs in the parser's thread for every row, so it reads `.id` rather than the
    `.pk` property and builds no dict.
    """

    def __init__(self, *, engaging_id: int):
        self.engaging_id = engaging_id
        # (product id, account id or None) -> (name, "account id<TAB>product id")
        self.names: dict[tuple[int, int | None], tuple[str, str]] = {}
        # owner id -> (owner id, territory id)
        self.owners: dict[int, tuple[str, str]] = {}

    def batch(self, deal_rows: list[DealRow]) -> bulk.StagedBatch:
        staged = bulk.StagedBatch()
        for deal_row in deal_rows:
            line = self.line(deal_row)
            if deal_row.engaged_on is None:
                staged.undated.append(line)
                staged.undated_keys.append(deal_row.external_id)
            else:
                staged.dated.append(line)
                staged.dated_keys.append(deal_row.external_id)
        return staged

    def line(self, deal_row: DealRow) -> str:
        """Return the row's line of bulk.STAGING_COLUMNS.

        A Prospecting row has no date, so its creation time stays empty until the merge.
        """
        stage = deal_row.stage
        account = deal_row.account
        product = deal_row.product
        owner = deal_row.owner

        key = (product.id, None if account is None else account.id)
        names = self.names.get(key)
        if names is None:
            name = product.name if account is None else f"{product.name} · {account.name}"
            account_id = bulk.NULL if account is None else str(account.id)
            names = self.names[key] = (bulk.copy_text(name[:300]), f"{account_id}\t{product.id}")
        owner_ids = self.owners.get(owner.id)
        if owner_ids is None:
            territory_id = bulk.NULL if owner.territory_id is None else str(owner.territory_id)
            owner_ids = self.owners[owner.id] = (str(owner.id), territory_id)

        # Prospecting deals start in their stage; every other deal starts in Engaging and, once
        # won or lost, moves to its stage on the close date.
        closed_on = deal_row.closed_on
        created_at = bulk.NULL if deal_row.engaged_on is None else _noon_utc_text(deal_row.engaged_on)
        if stage.name == PROSPECTING:
            first_stage_id, close_stage_id, closed_at = stage.id, bulk.NULL, bulk.NULL
        else:
            first_stage_id = self.engaging_id
            close_stage_id = bulk.NULL if closed_on is None else stage.id
            closed_at = bulk.NULL if closed_on is None else _noon_utc_text(closed_on)

        amount = bulk.NULL if deal_row.amount is None else str(deal_row.amount)
        if deal_row.base_amount is deal_row.amount:
            # Without a conversion the base amount is the amount itself.
            base_amount = amount
        else:
            base_amount = bulk.NULL if deal_row.base_amount is None else str(deal_row.base_amount)
        # The latest implied move is into the row's stage, so its kind is the status.
        expected_close_on = bulk.NULL if closed_on is None else _day_text(closed_on)
        is_list_price = "t" if deal_row.is_list_price else "f"
        return (
            f"{bulk.copy_text(deal_row.external_id)}\t{names[0]}\t{owner_ids[0]}\t{names[1]}\t{owner_ids[1]}"
            f"\t{stage.id}\t{stage.kind}\t{amount}\t{base_amount}\t{created_at}\t{expected_close_on}\t{closed_at}"
            f"\t{is_list_price}\t{first_stage_id}\t{close_stage_id}\t{deal_row.line}\n"
        )


def value_missing(column: str) -> RowRejected:
    """Return the rejection of a blank or missing cell, as `base.require_value` raises it."""
    return RowRejected(column, "", gettext_noop("missing value"))


class DealRowParser:
    """Check one sales_pipeline.csv row and resolve its names; raise RowRejected on the first bad value.

    A parser serves one import run. It remembers the valid dates and amounts it parsed
    by their text (up to PARSED_TEXTS_MAX of each) and the stage of each spelling it
    matched. An invalid text is never remembered, so it is parsed again on each row and
    every row gets its own rejection.
    """

    def __init__(self, *, organization, stages, memberships, accounts, products, currency, today, date_order=""):
        self.stages = stages
        # Stage names match ignoring case and surrounding spaces, as in the other importers.
        self.stages_by_key = {name.strip().casefold(): stage for name, stage in stages.items()}
        self.stages_by_text: dict[str, Stage] = {}
        self.date_order = date_order
        self.allowed_days = import_date_range(today)
        self.days_by_text: dict[str, dt.date] = {}
        self.currency = currency
        self.amounts_by_text: dict[str, Decimal] = {}
        self.today = today
        self.time_zone = organization.tzinfo
        self.rates = None if currency == organization.currency else ExchangeRateTable(
            organization=organization, currency=currency
        )
        # Names that the other files did not provide may come from earlier imports.
        self.memberships = NameLookup(memberships, Membership.objects.filter(organization=organization), "external_id")
        self.accounts = NameLookup(
            accounts, Account.objects.filter(organization=organization).only("id", "external_id", "name"), "external_id"
        )
        self.products = NameLookup(products, Product.objects.filter(organization=organization), "name")
        # The lookups' dicts, which `prefetch` extends in place.
        self.owners_by_name = self.memberships.by_name
        self.accounts_by_name = self.accounts.by_name
        self.products_by_name = self.products.by_name

    def prefetch(self, batch: list[tuple[int, tuple[str, ...]]]) -> None:
        """Load the earlier imports' rows that the batch names and the other files did not provide."""
        self.memberships.prefetch({cells[1] for _line, cells in batch})
        self.accounts.prefetch({cells[3] for _line, cells in batch})
        self.products.prefetch({PRODUCT_ALIASES.get(cells[2], cells[2]) for _line, cells in batch})

    def parse(self, line: int, cells: tuple[str, ...], first_line: dict[str, int]) -> DealRow:
        """Check the row's `cells` (DEAL_COLUMNS) and return it parsed; `first_line` maps the ids seen so far to their lines."""
        external_id, agent, product_name, account_name, stage_name, engage_text, close_text, value_text = cells
        if not external_id:
            raise value_missing("opportunity_id")
        check_length(external_id, "opportunity_id", 200)
        if external_id in first_line:
            raise RowRejected(
                "opportunity_id",
                external_id,
                gettext_noop("duplicate opportunity_id; first listed on line %(line)d"),
                line=first_line[external_id],
            )
        first_line[external_id] = line

        if not stage_name:
            raise value_missing("deal_stage")
        stage = self.stage_find(stage_name)

        if not agent:
            raise value_missing("sales_agent")
        owner = self.owners_by_name.get(agent)
        if owner is None:
            raise RowRejected("sales_agent", agent, gettext_noop("unknown sales agent; add them to sales_teams.csv"))

        if not product_name:
            raise value_missing("product")
        product = self.products_by_name.get(PRODUCT_ALIASES.get(product_name, product_name))
        if product is None:
            raise RowRejected("product", product_name, gettext_noop("unknown product; add it to products.csv"))

        account = None
        if account_name:
            account = self.accounts_by_name.get(account_name)
            if account is None:
                raise RowRejected("account", account_name, gettext_noop("unknown account; add it to accounts.csv"))

        engaged_on, closed_on = self.parse_dates(engage_text, close_text, stage)
        amount, is_list_price = self.parse_amount(value_text, stage, product)
        base_amount = amount
        if self.rates is not None:
            base_amount = self.base_amount(value_text, amount, closed_on)
        # Positional arguments, each named as its field: keywords take twice as long here.
        return DealRow(line, external_id, owner, product, account, stage, engaged_on, closed_on, amount, base_amount, is_list_price)

    def stage_find(self, stage_name: str) -> Stage:
        stage = self.stages_by_text.get(stage_name)
        if stage is not None:
            return stage
        stage = self.stages_by_key.get(stage_name.strip().casefold())
        if stage is None:
            raise RowRejected(
                "deal_stage",
                stage_name,
                gettext_noop("unknown stage; expected one of: %(stages)s"),
                stages=", ".join(self.stages),
            )
        # Only spellings that match a stage are remembered, so unknown texts never fill the dict.
        if len(self.stages_by_text) < PARSED_TEXTS_MAX:
            self.stages_by_text[stage_name] = stage
        return stage

    def day_parse(self, value: str, column: str) -> dt.date:
        """Parse a date cell with `formats.parse_day` in the import's date order and allowed range."""
        day = self.days_by_text.get(value)
        if day is not None:
            return day
        day = parse_day(value, column, date_order=self.date_order, allowed=self.allowed_days)
        if len(self.days_by_text) < PARSED_TEXTS_MAX:
            self.days_by_text[value] = day
        return day

    def parse_dates(self, engage_text: str, close_text: str, stage: Stage) -> tuple[dt.date | None, dt.date | None]:
        """Return (engage date, close date), which the stage requires or forbids.

        Prospecting has neither date, Engaging only the engage date, and Won and Lost
        both, with the close date on or after the engage date. A date the stage
        contradicts is rejected, not dropped silently.
        """
        if stage.name == PROSPECTING:
            if engage_text:
                raise RowRejected(
                    "engage_date", engage_text, gettext_noop("a Prospecting deal must not have an engage date; clear it or fix the stage")
                )
            engaged_on = None
        else:
            if not engage_text:
                raise value_missing("engage_date")
            engaged_on = self.day_parse(engage_text, "engage_date")

        if stage.kind == StageKind.OPEN:
            if close_text:
                raise RowRejected(
                    "close_date", close_text, gettext_noop("an open deal must not have a close date; clear it or fix the stage")
                )
            return engaged_on, None
        if not close_text:
            raise value_missing("close_date")
        closed_on = self.day_parse(close_text, "close_date")
        if closed_on < engaged_on:
            raise RowRejected(
                "close_date",
                close_text,
                gettext_noop("close date is before the engage date %(engage_date)s"),
                engage_date=engaged_on,
            )
        return engaged_on, closed_on

    def parse_amount(self, text: str, stage: Stage, product: Product) -> tuple[Decimal | None, bool]:
        """Return (amount, whether it is the product's list price).

        Won and Lost deals need `close_value` (the file has 0 on every Lost deal). Open
        deals have a blank one, so their expected amount is the product's list price.
        """
        if text:
            return self.money_parse(text), False
        if stage.kind != StageKind.OPEN:
            raise RowRejected("close_value", text, gettext_noop("missing value; a won or lost deal needs its close value"))
        return product.list_price_amount, product.list_price_amount is not None

    def money_parse(self, text: str) -> Decimal:
        """Parse a close_value cell with `formats.parse_money` in the import's currency."""
        amount = self.amounts_by_text.get(text)
        if amount is not None:
            return amount
        amount = parse_money(text, "close_value", currency=self.currency)
        if len(self.amounts_by_text) < PARSED_TEXTS_MAX:
            self.amounts_by_text[text] = amount
        return amount

    def base_amount(self, text: str, amount: Decimal | None, closed_on: dt.date | None) -> Decimal | None:
        if amount is None or self.rates is None:
            return amount
        # The deal closes at noon UTC of its close date, and KPIs count it on that moment's
        # day in the organization's time zone, so the rate is the one valid on that day
        # (the next day east of UTC+12). An open deal takes today's rate.
        rate_on = self.today if closed_on is None else _noon_utc(closed_on).astimezone(self.time_zone).date()
        rate = self.rates.rate_on(rate_on)
        if rate is None:
            raise RowRejected(
                "close_value",
                text,
                gettext_noop(
                    "no exchange rate for %(currency)s valid on %(date)s; add a rate for %(currency)s "
                    "valid from that date or earlier"
                ),
                currency=self.currency,
                date=rate_on,
            )
        return convert_amount(amount, rate, column="close_value", value=text)


def deal_values(
    deal_row: DealRow, existing: Deal | None, pipeline: Pipeline, currency: str, as_of: dt.date
) -> dict:
    """Return the deal's fields as the file states them; status and closed_at come from the history."""
    custom_fields = dict(existing.custom_fields) if existing is not None else {}
    custom_fields.pop("amount_source", None)
    if deal_row.is_list_price:
        custom_fields["amount_source"] = AMOUNT_SOURCE_LIST_PRICE

    name = deal_row.product.name
    if deal_row.account is not None:
        name = f"{name} · {deal_row.account.name}"
    return {
        "name": name[:300],
        "owner_id": deal_row.owner.pk,
        "account_id": deal_row.account.pk if deal_row.account else None,
        "product_id": deal_row.product.pk,
        "pipeline_id": pipeline.pk,
        "stage_id": deal_row.stage.pk,
        "territory_id": deal_row.owner.territory_id,
        "currency": currency,
        "amount": deal_row.amount,
        "base_amount": deal_row.base_amount,
        "created_at": date_at_noon_utc(deal_row.engaged_on or as_of),
        "expected_close_on": deal_row.closed_on,
        "custom_fields": custom_fields,
    }


def implied_moves(
    deal_row: DealRow, stages: dict[str, Stage], created_at: dt.datetime
) -> list[tuple[int | None, int, dt.datetime]]:
    """Return the (from stage id, to stage id, time) moves that the row's stage and dates imply.

    A deal enters its first stage when it is created: Prospecting for Prospecting rows,
    Engaging for all others. A won or lost deal then moves from Engaging to its final
    stage on the close date.
    """
    if deal_row.stage.name == PROSPECTING:
        return [(None, deal_row.stage.pk, created_at)]
    engaging = stages[ENGAGING]
    moves = [(None, engaging.pk, created_at)]
    if deal_row.closed_on is not None:
        moves.append((engaging.pk, deal_row.stage.pk, date_at_noon_utc(deal_row.closed_on)))
    return moves


def stage_history_sync(
    *,
    organization: Organization,
    moves: dict[int, list[tuple[int | None, int, dt.datetime]]],
    result: ImportResult,
) -> set[int]:
    """Make each deal's implied history equal `moves[deal_id]` and return the ids of deals rewritten.

    A deal whose implied moves already match is left alone. Otherwise its implied moves
    are deleted and the new ones written. Moves a person recorded (`is_implied=False`)
    are kept, and an implied move into the same stage at the same time as one of them
    is not written twice.
    """
    implied: dict[int, set] = defaultdict(set)
    implied_count: dict[int, int] = defaultdict(int)
    recorded: dict[int, set] = defaultdict(set)
    for batch in chunked(list(moves), 900):
        history = DealStageChange.all_objects.filter(organization=organization, deal_id__in=batch).values_list(
            "deal_id", "from_stage_id", "to_stage_id", "changed_at", "is_implied"
        )
        for deal_id, from_stage_id, to_stage_id, changed_at, is_implied in history:
            if is_implied:
                implied[deal_id].add((from_stage_id, to_stage_id, changed_at))
                implied_count[deal_id] += 1
            else:
                recorded[deal_id].add((to_stage_id, changed_at))

    counts = result.counts["stage_changes"]
    rewrite_ids = []
    new_changes = []
    for deal_id, deal_moves in moves.items():
        expected_moves = [move for move in deal_moves if (move[1], move[2]) not in recorded[deal_id]]
        if implied[deal_id] == set(expected_moves):
            counts.unchanged += implied_count[deal_id]
            continue
        if implied_count[deal_id]:
            rewrite_ids.append(deal_id)
            counts.deleted += implied_count[deal_id]
        for from_stage_id, to_stage_id, changed_at in expected_moves:
            new_changes.append(
                DealStageChange(
                    organization=organization,
                    deal_id=deal_id,
                    from_stage_id=from_stage_id,
                    to_stage_id=to_stage_id,
                    changed_at=changed_at,
                    is_implied=True,
                )
            )

    for batch in chunked(rewrite_ids, 900):
        DealStageChange.all_objects.filter(organization=organization, deal_id__in=batch, is_implied=True).delete()
    # Moves are appended in time order per deal, so ids break ties between equal times correctly.
    DealStageChange.all_objects.bulk_create(new_changes, batch_size=1000)
    counts.created += len(new_changes)
    return {change.deal_id for change in new_changes} | set(rewrite_ids)
