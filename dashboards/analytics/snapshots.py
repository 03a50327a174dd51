"""Daily pipeline snapshots: the set-based insert, and the pipeline by stage as of a past date."""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, DateField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboards.models import PipelineSnapshot
from dashboards.selectors import deal_filter_open_at
from pipelines.models import Deal, DealStageChange, Stage
from spm.fiscal import local_midnight
from spm.models import Organization

logger = logging.getLogger(__name__)

SNAPSHOT = "snapshot"
RECONSTRUCTED = "reconstructed"

# Column order of the INSERT; the SELECT below produces them in this order.
_SNAPSHOT_COLUMNS = (
    "organization_id",
    "snapshot_on",
    "deal_id",
    "pipeline_id",
    "stage_id",
    "owner_id",
    "base_amount",
    "expected_close_on",
)


def snapshot_take(*, organization: Organization, day: dt.date | None = None) -> int:
    """Insert the deals open at local midnight starting `day` (default: today) into PipelineSnapshot.

    One INSERT … SELECT … ON CONFLICT DO NOTHING, so a second run for the same
    day inserts only deals that were missing (e.g. imported since, with an
    earlier creation date) and never changes a row. The stage is the one of
    the deal's latest move before that midnight; owner, amount and expected
    close date are copied as they are at the time of the run, which is right
    for the daily run just after midnight and approximate for a backfill.
    Returns the number of rows inserted.
    """
    if day is None:
        day = timezone.localdate(timezone=organization.tzinfo)
    midnight = local_midnight(day, organization.tzinfo)

    source = (
        _deals_open_at_with_stage(Deal.objects.filter(organization=organization), midnight)
        .annotate(
            snap_organization_id=F("organization_id"),
            snap_on=Value(day, output_field=DateField()),
            snap_deal_id=F("id"),
            snap_pipeline_id=F("pipeline_id"),
            snap_stage_id=F("stage_then"),
            snap_owner_id=F("owner_id"),
            snap_base_amount=F("base_amount"),
            snap_expected_close_on=F("expected_close_on"),
        )
        .values(
            "snap_organization_id",
            "snap_on",
            "snap_deal_id",
            "snap_pipeline_id",
            "snap_stage_id",
            "snap_owner_id",
            "snap_base_amount",
            "snap_expected_close_on",
        )
        .order_by()
    )
    select_sql, params = source.query.sql_with_params()
    table = connection.ops.quote_name(PipelineSnapshot._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in _SNAPSHOT_COLUMNS)
    # The SELECT always has a WHERE clause (the organization), which SQLite needs to parse
    # INSERT … SELECT … ON CONFLICT without mistaking ON for a join condition.
    sql = (
        f"INSERT INTO {table} ({columns}) {select_sql} "
        "ON CONFLICT (organization_id, snapshot_on, deal_id) DO NOTHING"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.rowcount
    logger.info(
        "Pipeline snapshot taken organization_id=%s snapshot_on=%s rows_inserted=%s",
        organization.pk,
        day.isoformat(),
        inserted,
    )
    return inserted


def snapshot_first_day() -> dt.date | None:
    """Return the first day with snapshot rows in the current organization, or None."""
    return PipelineSnapshot.objects.order_by("snapshot_on").values_list("snapshot_on", flat=True).first()


def snapshot_exists(day: dt.date) -> bool:
    return PipelineSnapshot.objects.filter(snapshot_on=day).exists()


@dataclass(frozen=True)
class StageAsOfRow:
    stage: Stage
    deal_count: int
    base_amount: Decimal


@dataclass(frozen=True)
class PipelineAsOf:
    """The open pipeline by stage at the start of `day`, and where the numbers come from."""

    day: dt.date
    source: str
    rows: list[StageAsOfRow]

    @property
    def is_reconstructed(self) -> bool:
        return self.source == RECONSTRUCTED

    @property
    def deal_count(self) -> int:
        return sum(row.deal_count for row in self.rows)

    @property
    def base_amount(self) -> Decimal:
        return sum((row.base_amount for row in self.rows), Decimal("0"))


def _deals_open_at_with_stage(deals: QuerySet[Deal], moment: dt.datetime) -> QuerySet[Deal]:
    """Deals open at `moment`, annotated with `stage_then`: the stage of their latest move before it.

    Without history before `moment`, the current stage is used.
    """
    # The outer queryset is already scoped to one organization, so the subquery filters on the deal alone.
    latest_move = (
        DealStageChange._base_manager.filter(deal_id=OuterRef("pk"), changed_at__lt=moment)
        .order_by("-changed_at", "-id")
        .values("to_stage_id")[:1]
    )
    return deals.filter(deal_filter_open_at(moment)).annotate(
        stage_then=Coalesce(
            Subquery(latest_move, output_field=BigIntegerField()), F("stage_id"), output_field=BigIntegerField()
        )
    )


def pipeline_as_of(deals: QuerySet[Deal], *, organization: Organization, day: dt.date) -> PipelineAsOf:
    """Return the open pipeline of `deals` by stage at local midnight starting `day`.

    With a snapshot of that day, counts and amounts are the snapshot's, so a
    later change of a deal does not rewrite the past. Without one (before the
    first snapshot, or a day the task missed), the open deals are derived
    from creation and close times, their stage from the stage history, and
    their amount is today's: the result says RECONSTRUCTED. Three queries.
    """
    if snapshot_exists(day):
        source = SNAPSHOT
        grouped = (
            PipelineSnapshot.objects.filter(snapshot_on=day, deal__in=deals.values("pk"))
            .values("stage_id")
            .annotate(deal_count=Count("id"), base_amount=Sum("base_amount"))
        )
    else:
        source = RECONSTRUCTED
        moment = local_midnight(day, organization.tzinfo)
        grouped = (
            _deals_open_at_with_stage(deals, moment)
            .values("stage_then")
            .annotate(deal_count=Count("id"), base_amount=Sum("base_amount"))
        )
    by_stage = {}
    for row in grouped.order_by():
        stage_id = row.get("stage_id", row.get("stage_then"))
        by_stage[stage_id] = row
    stages = Stage.objects.filter(pk__in=by_stage).select_related("pipeline").order_by("pipeline__name", "order", "id")
    rows = [
        StageAsOfRow(
            stage=stage,
            deal_count=by_stage[stage.pk]["deal_count"],
            base_amount=by_stage[stage.pk]["base_amount"] or Decimal("0"),
        )
        for stage in stages
    ]
    return PipelineAsOf(day=day, source=source, rows=rows)


def pipeline_as_of_deals(
    deals: QuerySet[Deal], *, organization: Organization, day: dt.date, stage_id: int
) -> QuerySet[Deal]:
    """Return the deals behind one stage row of `pipeline_as_of`; same source rules."""
    if snapshot_exists(day):
        return deals.filter(pk__in=PipelineSnapshot.objects.filter(snapshot_on=day, stage_id=stage_id).values("deal_id"))
    moment = local_midnight(day, organization.tzinfo)
    return _deals_open_at_with_stage(deals, moment).filter(stage_then=stage_id)
