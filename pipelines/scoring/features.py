"""Snapshots of deals for the win-probability model: what was known about a deal at one moment.

Training does not look at a closed deal's final state, which would reveal the outcome.
It reads each closed deal at every date of a weekly grid that falls into its open life
(created ≤ t < closed), the same situation in which open deals are scored. A snapshot
at such a moment t contains:

- the stage the deal was in at t (from the stage history),
- the deal's age and the time since it entered that stage, in days,
- its amount band, product and account sector (current values: the CRM keeps no history
  of them),
- the number of done activities on the deal up to t,
- the owner's won and closed deal counts from deals closed before t.

Every list here is ordered by time, so the "up to t" counts are binary searches.

A point-in-time run (`known_at`) loads each deal as it was recorded at that moment:
later stage changes and activities are left out, and a deal closed later is open.
"""

import bisect
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, QuerySet

from pipelines.models import Activity, Deal, DealStageChange, DealStatus, StageKind

SNAPSHOT_STEP_DAYS = 7


@dataclass
class DealFacts:
    """One deal with its stage history and activity times, loaded once per training run."""

    pk: int
    owner_id: int
    status: str
    created_at: dt.datetime
    closed_at: dt.datetime | None
    # The amount the model uses; see `_model_amount`.
    amount: Decimal | None
    product_id: int | None
    product_name: str
    sector: str
    # None when the stage at `known_at` is unknown; see `_rewind`.
    current_stage_id: int | None
    current_stage_name: str
    # (changed_at, to_stage_id, to_stage_name, to_stage is open), oldest first.
    stage_changes: list[tuple[dt.datetime, int, str, bool]] = field(default_factory=list)
    activity_times: list[dt.datetime] = field(default_factory=list)

    @property
    def outcome(self) -> int | None:
        if self.status == DealStatus.WON:
            return 1
        if self.status == DealStatus.LOST:
            return 0
        return None


@dataclass(frozen=True)
class Snapshot:
    deal_id: int
    at: dt.datetime
    stage_key: str
    stage_name: str
    age_days: int
    stage_days: int
    amount: Decimal | None
    product_key: str
    product_name: str
    sector: str
    activity_count: int
    owner_won: int
    owner_closed: int
    # 1 won, 0 lost, None for an open deal being scored.
    outcome: int | None


class OwnerHistory:
    """Each owner's closed deals in close order, to count wins and closes before a moment."""

    def __init__(self, closed: list[tuple[int, dt.datetime, bool]]):
        by_owner: dict[int, list[tuple[dt.datetime, bool]]] = {}
        for owner_id, closed_at, is_won in sorted(closed, key=lambda item: item[1]):
            by_owner.setdefault(owner_id, []).append((closed_at, is_won))
        self._times = {owner: [closed_at for closed_at, _won in rows] for owner, rows in by_owner.items()}
        self._won_prefix = {}
        for owner, rows in by_owner.items():
            prefix = [0]
            for _closed_at, is_won in rows:
                prefix.append(prefix[-1] + int(is_won))
            self._won_prefix[owner] = prefix

    def counts_before(self, owner_id: int, moment: dt.datetime) -> tuple[int, int]:
        """Return (won, closed) among the owner's deals closed strictly before `moment`."""
        times = self._times.get(owner_id)
        if not times:
            return 0, 0
        closed = bisect.bisect_left(times, moment)
        return self._won_prefix[owner_id][closed], closed


def deal_facts_load(deals: QuerySet[Deal], *, known_at: dt.datetime | None = None) -> list[DealFacts]:
    """Load `deals` with their stage history and done activities; three queries, ordered by id.

    With `known_at`, stage changes and activities after that moment are left out, and
    status, close time and stage are set to what they were then (see `_rewind`).
    """
    rows = deals.order_by("pk").values(
        "pk",
        "owner_id",
        "status",
        "created_at",
        "closed_at",
        "base_amount",
        "product_id",
        "stage_id",
        product_name=F("product__name"),
        list_price=F("product__list_price_amount"),
        sector=F("account__sector"),
        stage_name=F("stage__name"),
    )
    facts = {
        row["pk"]: DealFacts(
            pk=row["pk"],
            owner_id=row["owner_id"],
            status=row["status"],
            created_at=row["created_at"],
            closed_at=row["closed_at"],
            amount=_model_amount(row["base_amount"], row["list_price"]),
            product_id=row["product_id"],
            product_name=row["product_name"] or "",
            sector=(row["sector"] or "").strip().lower(),
            current_stage_id=row["stage_id"],
            current_stage_name=row["stage_name"],
        )
        for row in rows.iterator(chunk_size=5000)
    }

    changes = (
        DealStageChange.objects.filter(deal__in=deals.values("pk"))
        .order_by("deal_id", "changed_at", "id")
        .values_list(
            "deal_id",
            "changed_at",
            "to_stage_id",
            "to_stage__name",
            "to_stage__kind",
            "from_stage_id",
            "from_stage__name",
            "from_stage__kind",
        )
    )
    # Per deal, the stage it was in at `known_at`, read from its first change after that moment.
    stage_left_later: dict[int, tuple[int, str, bool]] = {}
    for deal_id, changed_at, stage_id, stage_name, kind, from_id, from_name, from_kind in changes.iterator(
        chunk_size=5000
    ):
        if known_at is not None and changed_at > known_at:
            if deal_id not in stage_left_later:
                # A change without a from-stage records the deal's first stage. snapshot_at also
                # uses that stage for the time before the first recorded change.
                left = (from_id, from_name, from_kind) if from_id is not None else (stage_id, stage_name, kind)
                stage_left_later[deal_id] = (left[0], left[1], left[2] == StageKind.OPEN)
            continue
        facts[deal_id].stage_changes.append((changed_at, stage_id, stage_name, kind == StageKind.OPEN))

    activities = Activity.objects.filter(deal__in=deals.values("pk"), is_done=True)
    if known_at is not None:
        activities = activities.filter(occurred_at__lte=known_at)
    activity_rows = activities.order_by("deal_id", "occurred_at").values_list("deal_id", "occurred_at")
    for deal_id, occurred_at in activity_rows.iterator(chunk_size=5000):
        facts[deal_id].activity_times.append(occurred_at)

    if known_at is not None:
        for deal in facts.values():
            _rewind(deal, known_at, stage_left_later.get(deal.pk))
    return list(facts.values())


def _rewind(deal: DealFacts, known_at: dt.datetime, stage_left_later: tuple[int, str, bool] | None) -> None:
    """Set the deal's status, close time and current stage to what they were at `known_at`.

    `deal.stage_changes` must already end at `known_at`. `stage_left_later` is the stage
    the deal left with its first change after `known_at` (id, name, is open), if any.
    """
    closed_later = deal.closed_at is not None and deal.closed_at > known_at
    if closed_later:
        deal.status = DealStatus.OPEN
        deal.closed_at = None
    if deal.stage_changes:
        # snapshot_at reads the stage at `known_at` from the history.
        return
    if stage_left_later is not None:
        stage_id, stage_name, is_open = stage_left_later
        # A closed stage then means that the deal was not open at `known_at`.
        deal.current_stage_id, deal.current_stage_name = (stage_id, stage_name) if is_open else (None, "")
    elif closed_later:
        # No stage history at all: today's stage is the won or lost stage the deal moved into later.
        deal.current_stage_id, deal.current_stage_name = None, ""


def _model_amount(base_amount: Decimal | None, list_price: Decimal | None) -> Decimal | None:
    """Return the product's list price when there is one, else a positive base amount, else None.

    Some CRMs (the Maven sample among them) set a lost deal's amount to 0 at close, so the
    final amount would reveal the outcome. The product's list price is known from the
    start and is the same for won and lost deals.
    """
    if list_price is not None and list_price > 0:
        return list_price
    if base_amount is not None and base_amount > 0:
        return base_amount
    return None


def snapshot_at(facts: DealFacts, moment: dt.datetime, owners: OwnerHistory) -> Snapshot | None:
    """Describe the deal as it was at `moment`; None when it was not in an open stage then, or its stage is unknown."""
    index = bisect.bisect_right([change[0] for change in facts.stage_changes], moment) - 1
    if index >= 0:
        entered_at, stage_id, stage_name, is_open = facts.stage_changes[index]
        # Closed at that moment (a reopened deal between two closes): no open situation to learn from.
        if not is_open:
            return None
    elif facts.stage_changes:
        # The history starts after creation: the deal sat in its first recorded stage.
        _first_at, stage_id, stage_name, _is_open = facts.stage_changes[0]
        entered_at = facts.created_at
    elif facts.current_stage_id is None:
        # Loaded point-in-time without a known stage at that moment.
        return None
    else:
        stage_id, stage_name, entered_at = facts.current_stage_id, facts.current_stage_name, facts.created_at

    owner_won, owner_closed = owners.counts_before(facts.owner_id, moment)
    return Snapshot(
        deal_id=facts.pk,
        at=moment,
        stage_key=str(stage_id),
        stage_name=stage_name,
        age_days=max(0, (moment - facts.created_at).days),
        stage_days=max(0, (moment - max(entered_at, facts.created_at)).days),
        amount=facts.amount,
        product_key=str(facts.product_id) if facts.product_id is not None else "",
        product_name=facts.product_name,
        sector=facts.sector,
        activity_count=bisect.bisect_right(facts.activity_times, moment),
        owner_won=owner_won,
        owner_closed=owner_closed,
        outcome=facts.outcome,
    )


def training_snapshots(facts: list[DealFacts], owners: OwnerHistory, *, anchor: dt.datetime) -> list[Snapshot]:
    """Return the snapshots of closed deals at every grid date in their open life, by deal then date.

    The grid runs every SNAPSHOT_STEP_DAYS days from `anchor`. A deal that opened and
    closed between two grid dates has no snapshot, just as it would never have been
    seen open by a daily score taken at those dates.
    """
    step = dt.timedelta(days=SNAPSHOT_STEP_DAYS)
    snapshots = []
    for deal in facts:
        if deal.closed_at is None or deal.outcome is None:
            continue
        steps_before = max(0, -(-(deal.created_at - anchor) // step))
        moment = anchor + steps_before * step
        while moment < deal.closed_at:
            if moment >= deal.created_at:
                snapshot = snapshot_at(deal, moment, owners)
                if snapshot is not None:
                    snapshots.append(snapshot)
            moment += step
    return snapshots
