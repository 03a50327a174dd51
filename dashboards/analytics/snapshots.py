"""Daily pipeline snapshots: the set-based insert, and the pipeline by stage as of a past date."""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dashboards.models import PipelineSnapshot
from dashboards.selectors import deal_filter_open_at
from pipelines.models import Deal, DealStageChange, Stage
from spm.fiscal import local_midnight
from spm.models import Organization

logger = logging.getLogger(__name__)

SNAPSHOT = "snapshot"
RECONSTRUCTED = "reconstructed"
# Drill-down key part of the row of deals without a recorded stage on the day, in place of a stage id.
NO_STAGE_KEY = "none"
NO_STAGE_LABEL = _("No stage recorded yet")

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
    earlier creation date) and never changes a row. The stage is the deal's
    stage at that midnight by `_deals_open_at_with_stage`, empty when no stage
    was recorded yet; owner, amount and expected
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
    """The open deals of one stage on the day; `stage` is None for the deals without a recorded stage yet."""

    stage: Stage | None
    deal_count: int
    base_amount: Decimal

    @property
    def drill_down_key(self) -> str:
        """Return the stage part of the drill-down key: the stage id, or NO_STAGE_KEY."""
        return NO_STAGE_KEY if self.stage is None else str(self.stage.pk)


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
    """Deals open at `moment`, annotated with `stage_then`: their stage at `moment` as the stage history records it.

    That is the target stage of the latest move before `moment`. A deal without
    any move never moved, so it is in its current stage. A deal whose history
    starts after `moment` was in the source stage of its first later move when
    that move names one. Otherwise no stage was recorded yet and `stage_then`
    is NULL: such deals are open but not put into a stage they entered later.
    """
    # The outer queryset is already scoped to one organization, so the subqueries filter on the deal alone.
    moves = DealStageChange._base_manager.filter(deal_id=OuterRef("pk"))
    latest_before = moves.filter(changed_at__lt=moment).order_by("-changed_at", "-id").values("to_stage_id")[:1]
    first_after = moves.filter(changed_at__gte=moment).order_by("changed_at", "id").values("from_stage_id")[:1]
    never_moved = Case(When(~Exists(moves), then=F("stage_id")), default=None, output_field=BigIntegerField())
    return deals.filter(deal_filter_open_at(moment)).annotate(
        stage_then=Coalesce(
            Subquery(latest_before, output_field=BigIntegerField()),
            Subquery(first_after, output_field=BigIntegerField()),
            never_moved,
            output_field=BigIntegerField(),
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
    # Deals open on the day whose first recorded stage came later; listed last, so that the total is every open deal.
    unrecorded = by_stage.get(None)
    if unrecorded is not None:
        rows.append(
            StageAsOfRow(
                stage=None,
                deal_count=unrecorded["deal_count"],
                base_amount=unrecorded["base_amount"] or Decimal("0"),
            )
        )
    return PipelineAsOf(day=day, source=source, rows=rows)


def pipeline_as_of_deals(
    deals: QuerySet[Deal], *, organization: Organization, day: dt.date, stage_id: int | None
) -> QuerySet[Deal]:
    """Return the deals behind one stage row of `pipeline_as_of` (`stage_id` None: no stage recorded yet); same source rules."""
    if snapshot_exists(day):
        in_stage = PipelineSnapshot.objects.filter(snapshot_on=day)
        in_stage = in_stage.filter(stage__isnull=True) if stage_id is None else in_stage.filter(stage_id=stage_id)
        return deals.filter(pk__in=in_stage.values("deal_id"))
    moment = local_midnight(day, organization.tzinfo)
    reconstructed = _deals_open_at_with_stage(deals, moment)
    if stage_id is None:
        return reconstructed.filter(stage_then__isnull=True)
    return reconstructed.filter(stage_then=stage_id)
