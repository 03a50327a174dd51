"""Activity analytics: counts per rep, week and type; activity-to-result ratio; types over-represented on won deals."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncWeek

from dashboards.analytics.base import Window
from dashboards.analytics.winloss import closed_in
from dashboards.kpis import ratio
from pipelines.models import Activity, ActivityKind, Deal, DealStatus
from spm.models import Membership, Organization


def activity_universe(*, organization: Organization, visible_member_ids: set[int] | None) -> QuerySet[Activity]:
    """Return the activities owned by `visible_member_ids` (None: everyone), unordered."""
    activities = Activity.objects.filter(organization=organization)
    if visible_member_ids is not None:
        activities = activities.filter(owner_id__in=visible_member_ids)
    return activities.order_by()


def done_in(activities: QuerySet[Activity], window: Window) -> QuerySet[Activity]:
    """Done activities that occurred in the window; planned ones have not happened and do not count."""
    return activities.filter(is_done=True, occurred_at__gte=window.start_utc, occurred_at__lt=window.end_utc)


@dataclass(frozen=True)
class WeeklyActivityRow:
    owner_name: str
    week_start: dt.date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def activity_weekly_rows(
    activities: QuerySet[Activity], *, window: Window, organization: Organization
) -> list[WeeklyActivityRow]:
    """Return done activities per owner and local week (starting Monday) by type, by owner name then week.

    Weeks are cut in the organization's time zone. Two queries.
    """
    grouped = (
        done_in(activities, window)
        .annotate(week=TruncWeek("occurred_at", tzinfo=organization.tzinfo))
        .values("owner_id", "week", "kind")
        .annotate(activity_count=Count("id"))
        .order_by()
    )
    cells: dict[tuple[int, dt.date], dict[str, int]] = {}
    for row in grouped:
        week = row["week"].date() if isinstance(row["week"], dt.datetime) else row["week"]
        counts = cells.setdefault((row["owner_id"], week), {kind: 0 for kind in ActivityKind.values})
        counts[row["kind"]] = counts.get(row["kind"], 0) + row["activity_count"]
    names = {
        member.pk: member.display_name
        for member in Membership.objects.filter(pk__in={owner_id for owner_id, _week in cells}).select_related("user")
    }
    rows = [
        WeeklyActivityRow(owner_name=names.get(owner_id, str(owner_id)), week_start=week, counts=counts)
        for (owner_id, week), counts in cells.items()
    ]
    rows.sort(key=lambda row: (row.owner_name.casefold(), row.week_start))
    return rows


@dataclass(frozen=True)
class ActivityResultRow:
    owner_id: int
    owner_name: str
    activity_count: int
    won_count: int

    @property
    def activities_per_won_deal(self) -> Decimal | None:
        """Activities in the period ÷ deals won in the period; None when nothing was won."""
        return ratio(self.activity_count, self.won_count)


def activity_result_rows(
    activities: QuerySet[Activity], deals: QuerySet[Deal], *, window: Window
) -> tuple[list[ActivityResultRow], ActivityResultRow]:
    """Return the activity-to-result ratio per rep, by name, and the total row; three queries.

    A rep counts when they have a done activity or a won deal in the period.
    """
    activity_counts = dict(
        done_in(activities, window).values("owner_id").annotate(n=Count("id")).order_by().values_list("owner_id", "n")
    )
    won_counts = dict(
        closed_in(deals, window)
        .filter(status=DealStatus.WON)
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("owner_id", "n")
    )
    owner_ids = set(activity_counts) | set(won_counts)
    names = {
        member.pk: member.display_name for member in Membership.objects.filter(pk__in=owner_ids).select_related("user")
    }
    rows = [
        ActivityResultRow(
            owner_id=owner_id,
            owner_name=names.get(owner_id, str(owner_id)),
            activity_count=activity_counts.get(owner_id, 0),
            won_count=won_counts.get(owner_id, 0),
        )
        for owner_id in owner_ids
    ]
    rows.sort(key=lambda row: row.owner_name.casefold())
    total = ActivityResultRow(
        owner_id=0,
        owner_name="",
        activity_count=sum(activity_counts.values()),
        won_count=sum(won_counts.values()),
    )
    return rows, total


@dataclass(frozen=True)
class ActivityMixRow:
    """Done activities of one type on the deals won and lost in the period."""

    kind: str
    label: str
    on_won: int
    on_lost: int
    won_total: int
    lost_total: int

    @property
    def share_on_won(self) -> Decimal | None:
        return ratio(self.on_won, self.won_total)

    @property
    def share_on_lost(self) -> Decimal | None:
        return ratio(self.on_lost, self.lost_total)

    @property
    def lift(self) -> Decimal | None:
        """Share of this type among activities on won deals ÷ its share among activities on all closed deals.

        Above 1 the type is over-represented on won deals. None when there
        are no activities on won deals or none of this type at all.
        """
        share_all = ratio(self.on_won + self.on_lost, self.won_total + self.lost_total)
        if self.share_on_won is None or not share_all:
            return None
        return self.share_on_won / share_all

    @property
    def is_over_represented(self) -> bool:
        return self.lift is not None and self.lift > 1


def activity_mix_rows(activities: QuerySet[Activity], deals: QuerySet[Deal], *, window: Window) -> list[ActivityMixRow]:
    """Return per activity type its done activities (at any time) on the deals won and lost in the window.

    One aggregate query. Activities are those of `activities` (visible
    owners) on deals of `deals` (visible owners) that closed in the window.
    """
    closed_ids = closed_in(deals, window).values("pk")
    grouped = (
        activities.filter(is_done=True, deal_id__in=closed_ids)
        .values("kind", "deal__status")
        .annotate(activity_count=Count("id"))
        .order_by()
    )
    on_won = {kind: 0 for kind in ActivityKind.values}
    on_lost = {kind: 0 for kind in ActivityKind.values}
    for row in grouped:
        target = on_won if row["deal__status"] == DealStatus.WON else on_lost
        target[row["kind"]] = target.get(row["kind"], 0) + row["activity_count"]
    won_total, lost_total = sum(on_won.values()), sum(on_lost.values())
    return [
        ActivityMixRow(
            kind=kind,
            label=str(label),
            on_won=on_won[kind],
            on_lost=on_lost[kind],
            won_total=won_total,
            lost_total=lost_total,
        )
        for kind, label in ActivityKind.choices
    ]


def activity_feed(activities: QuerySet[Activity]) -> QuerySet[Activity]:
    """Return the activities newest first with owner and deal loaded, for the paginated feed."""
    return activities.select_related("owner__user", "deal").order_by("-occurred_at", "-id")
