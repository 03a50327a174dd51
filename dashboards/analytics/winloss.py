"""Win and loss analysis of the deals closed in a period, by product, sector, territory, size band, lost reason."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, CharField, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _

from dashboards.analytics.base import Window
from dashboards.kpis import win_rate
from pipelines.models import Deal, DealStatus

PRODUCT, SECTOR, TERRITORY, SIZE_BAND, LOST_REASON = "product", "sector", "territory", "size_band", "lost_reason"
DIMENSIONS = {
    PRODUCT: _("Product"),
    SECTOR: _("Account sector"),
    TERRITORY: _("Territory"),
    SIZE_BAND: _("Deal size"),
    LOST_REASON: _("Lost reason"),
}
NONE_KEY = "none"

# Deal size bands on the base amount: (key, label, lower bound inclusive, upper bound exclusive).
SIZE_BANDS = (
    ("1", _("under 1,000"), None, Decimal("1000")),
    ("2", _("1,000 to under 10,000"), Decimal("1000"), Decimal("10000")),
    ("3", _("10,000 to under 50,000"), Decimal("10000"), Decimal("50000")),
    ("4", _("50,000 to under 100,000"), Decimal("50000"), Decimal("100000")),
    ("5", _("100,000 and more"), Decimal("100000"), None),
)


@dataclass(frozen=True)
class WinLossRow:
    key: str
    label: str
    won_count: int
    lost_count: int
    won_amount: Decimal
    lost_amount: Decimal

    @property
    def win_rate(self) -> Decimal | None:
        return win_rate(self.won_count, self.lost_count)


def closed_in(deals: QuerySet[Deal], window: Window) -> QuerySet[Deal]:
    """Deals won or lost in the window, as the KPI snapshots count them."""
    return deals.filter(
        status__in=(DealStatus.WON, DealStatus.LOST), closed_at__gte=window.start_utc, closed_at__lt=window.end_utc
    )


def _size_band() -> Case:
    whens = []
    for key, _label, lower, upper in SIZE_BANDS:
        condition = Q()
        if lower is not None:
            condition &= Q(base_amount__gte=lower)
        if upper is not None:
            condition &= Q(base_amount__lt=upper)
        whens.append(When(condition, then=Value(key)))
    return Case(*whens, default=Value(NONE_KEY), output_field=CharField())


def _dimension_key(dimension: str):
    """The expression a dimension groups by, as text; NULL and empty text become NONE_KEY."""
    if dimension == PRODUCT:
        return Case(When(product_id__isnull=True, then=Value(NONE_KEY)), default=Cast("product_id", CharField()))
    if dimension == TERRITORY:
        return Case(When(territory_id__isnull=True, then=Value(NONE_KEY)), default=Cast("territory_id", CharField()))
    if dimension == SECTOR:
        return Case(
            When(Q(account__sector__isnull=True) | Q(account__sector=""), then=Value(NONE_KEY)),
            default=F("account__sector"),
            output_field=CharField(),
        )
    if dimension == SIZE_BAND:
        return _size_band()
    if dimension == LOST_REASON:
        return Case(When(lost_reason="", then=Value(NONE_KEY)), default=F("lost_reason"), output_field=CharField())
    raise ValueError(f"unknown win/loss dimension {dimension!r}")


def _labels(dimension: str, keys: set[str]) -> dict[str, str]:
    if dimension == PRODUCT:
        from pipelines.models import Product

        ids = [int(key) for key in keys if key != NONE_KEY]
        return {str(pk): name for pk, name in Product.objects.filter(pk__in=ids).values_list("pk", "name")}
    if dimension == TERRITORY:
        from goals.models import Territory

        ids = [int(key) for key in keys if key != NONE_KEY]
        return {str(pk): name for pk, name in Territory.objects.filter(pk__in=ids).values_list("pk", "name")}
    if dimension == SIZE_BAND:
        return {key: str(label) for key, label, _lower, _upper in SIZE_BANDS}
    return {key: key for key in keys}


def winloss_rows(deals: QuerySet[Deal], *, window: Window, dimension: str) -> list[WinLossRow]:
    """Return won and lost counts and amounts per value of `dimension`, largest number of closed deals first.

    The lost-reason dimension counts only lost deals. Deals without a value
    are grouped under "none". One aggregate query, plus one for the names of
    products or territories.
    """
    closed = closed_in(deals, window)
    if dimension == LOST_REASON:
        closed = closed.filter(status=DealStatus.LOST)
    won, lost = Q(status=DealStatus.WON), Q(status=DealStatus.LOST)
    grouped = (
        closed.annotate(dimension_key=_dimension_key(dimension))
        .values("dimension_key")
        .annotate(
            won_count=Count("id", filter=won),
            lost_count=Count("id", filter=lost),
            won_amount=Sum("base_amount", filter=won),
            lost_amount=Sum("base_amount", filter=lost),
        )
        .order_by()
    )
    rows = list(grouped)
    labels = _labels(dimension, {row["dimension_key"] for row in rows})
    result = [
        WinLossRow(
            key=row["dimension_key"],
            label=labels.get(row["dimension_key"], row["dimension_key"]) if row["dimension_key"] != NONE_KEY else str(_("none")),
            won_count=row["won_count"],
            lost_count=row["lost_count"],
            won_amount=row["won_amount"] or Decimal("0"),
            lost_amount=row["lost_amount"] or Decimal("0"),
        )
        for row in rows
    ]
    if dimension == SIZE_BAND:
        order = {key: index for index, (key, *_rest) in enumerate(SIZE_BANDS)}
        result.sort(key=lambda row: order.get(row.key, len(order)))
    else:
        result.sort(key=lambda row: (-(row.won_count + row.lost_count), row.label.casefold()))
    return result


def winloss_deals(deals: QuerySet[Deal], *, window: Window, dimension: str, key: str, status: str) -> QuerySet[Deal]:
    """Return the closed deals of one win/loss cell: `status` is "won", "lost" or "closed" (both)."""
    closed = closed_in(deals, window)
    if dimension == LOST_REASON:
        closed = closed.filter(status=DealStatus.LOST)
    if status in (DealStatus.WON, DealStatus.LOST):
        closed = closed.filter(status=status)
    return closed.annotate(dimension_key=_dimension_key(dimension)).filter(dimension_key=key)
