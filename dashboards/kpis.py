"""KPI maths on snapshot components: pure functions, Decimal in, Decimal out.

Every rate is derived from the stored sums and counts, never stored itself, so a
rate can never disagree with the counts shown beside it. A KPI that is
undefined (no closed deals, no won deals) is None, never 0.
"""

from dataclasses import dataclass
from decimal import Decimal


def ratio(numerator, denominator) -> Decimal | None:
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


def win_rate(won_count: int, lost_count: int) -> Decimal | None:
    """won / (won + lost); None when nothing closed."""
    return ratio(won_count, won_count + lost_count)


def value_win_rate(won_amount: Decimal, lost_amount: Decimal) -> Decimal | None:
    """won amount / (won + lost amount); None when both are zero."""
    return ratio(won_amount, won_amount + lost_amount)


def average_deal_size(won_amount: Decimal, won_count: int) -> Decimal | None:
    return ratio(won_amount, won_count)


def pipeline_velocity(
    open_count: int, rate: Decimal | None, deal_size: Decimal | None, cycle_days: Decimal | None
) -> Decimal | None:
    """Money per day: open deals × win rate × average deal size ÷ sales cycle days."""
    if rate is None or deal_size is None or not cycle_days:
        return None
    return Decimal(open_count) * rate * deal_size / cycle_days


@dataclass(frozen=True)
class KpiRow:
    """One subject's KPIs for one period, derived from a KpiSnapshot's components."""

    grain: str
    subject_id: int
    subject: str
    won_count: int
    lost_count: int
    won_amount: Decimal
    lost_amount: Decimal
    cycle_days_sum: Decimal
    cycle_days_median: Decimal | None
    open_count: int
    open_amount: Decimal

    @classmethod
    def from_snapshot(cls, snapshot) -> "KpiRow":
        return cls(
            grain=snapshot.grain,
            subject_id=snapshot.subject_id,
            subject=snapshot.subject_name,
            won_count=snapshot.won_count,
            lost_count=snapshot.lost_count,
            won_amount=snapshot.won_amount,
            lost_amount=snapshot.lost_amount,
            cycle_days_sum=snapshot.cycle_days_sum,
            cycle_days_median=snapshot.cycle_days_median,
            open_count=snapshot.open_count,
            open_amount=snapshot.open_amount,
        )

    @property
    def win_rate(self) -> Decimal | None:
        return win_rate(self.won_count, self.lost_count)

    @property
    def value_win_rate(self) -> Decimal | None:
        return value_win_rate(self.won_amount, self.lost_amount)

    @property
    def average_deal_size(self) -> Decimal | None:
        return average_deal_size(self.won_amount, self.won_count)

    @property
    def sales_cycle_days_mean(self) -> Decimal | None:
        """Mean days from creation to close over deals won in the period."""
        return ratio(self.cycle_days_sum, self.won_count)

    @property
    def sales_cycle_days_median(self) -> Decimal | None:
        return self.cycle_days_median

    @property
    def pipeline_velocity(self) -> Decimal | None:
        return pipeline_velocity(self.open_count, self.win_rate, self.average_deal_size, self.sales_cycle_days_mean)
