"""Waterfall of the open pipeline over a period, and the deals that slipped out of it.

Sets over the deals, for a period P = [S, E):
- start: open at S. From the snapshot of day S when there is one, else
  reconstructed (created before S and not closed before S).
- end: open at E, from the snapshot of day E when there is one, else from
  the deal rows (for a running period: open now).
- created: not in start, and created in P or in end (a deal that entered
  the pipeline in another way, such as a reopened one, counts here).
- exits: in start or created, and not in end; split into won (status won,
  closed before E), lost (status lost, closed before E) and other exits
  (deleted from the CRM's view, moved to another pipeline, bad dates).
Start and created are disjoint and end lies inside their union, so
start + created − won − lost − other exits = end holds for every input; the
tests check it. Amounts use each deal's current base amount, so the amount
bars add up the same way.

Advanced (a forward stage move in P) and pushed out (slipped) describe deals
that stayed in the pipeline; they are not part of the identity.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum

from dashboards.analytics.base import Window
from dashboards.analytics.snapshots import snapshot_exists
from dashboards.models import PipelineSnapshot
from dashboards.selectors import deal_filter_open_at
from pipelines.models import Deal, DealStageChange, DealStatus, StageKind

START, CREATED, ADVANCED, WON, LOST, OTHER, PUSHED_OUT, END = (
    "start",
    "created",
    "advanced",
    "won",
    "lost",
    "other_exits",
    "pushed_out",
    "end",
)
STEPS = (START, CREATED, ADVANCED, WON, LOST, PUSHED_OUT, OTHER, END)
IDENTITY_STEPS = (START, CREATED, WON, LOST, OTHER, END)


@dataclass(frozen=True)
class WaterfallStep:
    key: str
    deal_count: int
    base_amount: Decimal


@dataclass(frozen=True)
class Waterfall:
    steps: dict[str, WaterfallStep]
    start_from_snapshot: bool
    end_from_snapshot: bool

    def count(self, key: str) -> int:
        return self.steps[key].deal_count

    @property
    def identity_holds(self) -> bool:
        """start + created − won − lost − other exits = end, in counts and in amounts."""
        counts = self.count(START) + self.count(CREATED) - self.count(WON) - self.count(LOST) - self.count(OTHER)
        amount = (
            self.steps[START].base_amount
            + self.steps[CREATED].base_amount
            - self.steps[WON].base_amount
            - self.steps[LOST].base_amount
            - self.steps[OTHER].base_amount
        )
        return counts == self.count(END) and amount == self.steps[END].base_amount


def _in_snapshot(day: dt.date) -> Exists:
    # The outer deals are already scoped to one organization, so the subquery filters on the deal alone.
    return Exists(PipelineSnapshot._base_manager.filter(deal_id=OuterRef("pk"), snapshot_on=day))


def waterfall_conditions(*, window: Window, today: dt.date) -> tuple[dict[str, Q], bool, bool]:
    """Return the Q condition of every step, and whether start and end come from snapshots.

    `today` is the organization's local date; a period ending after it has no
    end snapshot yet and ends with the deals open now.
    """
    period = window.period
    start_from_snapshot = snapshot_exists(period.start)
    end_from_snapshot = period.end <= today and snapshot_exists(period.end)
    in_start = Q(_in_snapshot(period.start)) if start_from_snapshot else deal_filter_open_at(window.start_utc)
    in_end = Q(_in_snapshot(period.end)) if end_from_snapshot else deal_filter_open_at(window.end_utc)

    created = ~in_start & (Q(created_at__gte=window.start_utc, created_at__lt=window.end_utc) | in_end)
    exits = (in_start | created) & ~in_end
    closed_before_end = Q(closed_at__lt=window.end_utc)
    won = exits & Q(status=DealStatus.WON) & closed_before_end
    lost = exits & Q(status=DealStatus.LOST) & closed_before_end
    other = exits & ~(Q(status__in=(DealStatus.WON, DealStatus.LOST)) & closed_before_end)

    forward_move = DealStageChange._base_manager.filter(
        deal_id=OuterRef("pk"),
        changed_at__gte=window.start_utc,
        changed_at__lt=window.end_utc,
        from_stage__kind=StageKind.OPEN,
        to_stage__kind=StageKind.OPEN,
        to_stage__pipeline=F("from_stage__pipeline"),
        to_stage__order__gt=F("from_stage__order"),
    )
    advanced = (in_start | created) & Q(Exists(forward_move))
    conditions = {
        START: in_start,
        CREATED: created,
        ADVANCED: advanced,
        WON: won,
        LOST: lost,
        OTHER: other,
        PUSHED_OUT: slipped_condition(window=window, today=today),
        END: in_end,
    }
    return conditions, start_from_snapshot, end_from_snapshot


def waterfall(deals: QuerySet[Deal], *, window: Window, today: dt.date) -> Waterfall:
    """Count and sum every waterfall step of `deals` over the window in one aggregate query (plus two lookups)."""
    conditions, start_from_snapshot, end_from_snapshot = waterfall_conditions(window=window, today=today)
    aggregates = {}
    for key, condition in conditions.items():
        aggregates[f"{key}__count"] = Count("id", filter=condition)
        aggregates[f"{key}__amount"] = Sum("base_amount", filter=condition)
    totals = deals.aggregate(**aggregates)
    steps = {
        key: WaterfallStep(
            key=key,
            deal_count=totals[f"{key}__count"],
            base_amount=totals[f"{key}__amount"] or Decimal("0"),
        )
        for key in STEPS
    }
    return Waterfall(steps=steps, start_from_snapshot=start_from_snapshot, end_from_snapshot=end_from_snapshot)


def waterfall_deals(deals: QuerySet[Deal], *, window: Window, today: dt.date, step: str) -> QuerySet[Deal]:
    """Return the deals of one waterfall step; raises KeyError for an unknown step."""
    conditions, _start, _end = waterfall_conditions(window=window, today=today)
    return deals.filter(conditions[step])


def slipped_condition(*, window: Window, today: dt.date) -> Q:
    """Match deals that slipped out of the period: expected to close in it, and did not.

    A deal slipped when a snapshot taken on or before the period's last day
    (and not after today) had its expected close date in the period, it was
    not won or lost before the period's end, and either the period is over
    (it was still open after it) or its expected close date now lies after
    the period or is empty. Needs snapshots: before the first one, nothing
    can be known about earlier expected close dates, and nothing matches.
    """
    period = window.period
    last_snapshot_day = min(period.last_day, today)
    # The outer deals are already scoped to one organization, so the subquery filters on the deal alone.
    expected_in_period = Exists(
        PipelineSnapshot._base_manager.filter(
            deal_id=OuterRef("pk"),
            snapshot_on__lte=last_snapshot_day,
            expected_close_on__gte=period.start,
            expected_close_on__lte=period.last_day,
        )
    )
    not_closed_in_time = Q(closed_at__isnull=True) | Q(closed_at__gte=window.end_utc)
    if period.end <= today:
        return Q(expected_in_period) & not_closed_in_time
    moved_out = Q(expected_close_on__gt=period.last_day) | Q(expected_close_on__isnull=True)
    return Q(expected_in_period) & not_closed_in_time & moved_out


def slipped_deals(deals: QuerySet[Deal], *, window: Window, today: dt.date) -> QuerySet[Deal]:
    return deals.filter(slipped_condition(window=window, today=today))
