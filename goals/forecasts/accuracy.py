"""Forecast accuracy and signed bias of past periods, per person and for the organization.

For a period P and a person S (a rep, or a manager with everyone who rolls up to them):
- actual = base amount won in P by S's deals, or by their whole subtree for a manager.
- the forecast at a horizon (P's start, 8, 4 or 1 weeks before its end) is the commit
  of S's submission in force at the horizon's instant (S's own call or a manager's
  adjustment, whichever came last), else the system snapshot at that horizon (weighted
  pipeline + won so far), summed over S's subtree. Without either it is missing.
- accuracy = 1 − |forecast − actual| ÷ actual, from the forecast at P's start.
- bias = (forecast − actual) ÷ actual; positive means over-forecasting.
Both are undefined (None) when actual is 0 or the forecast is missing, never 100 % or 0.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

from goals.forecasts.pipeline import ZERO, won_amounts
from goals.forecasts.rollup import (
    SOURCE_ADJUSTED,
    SOURCE_SUBMITTED,
    SOURCE_SYSTEM,
    ForecastTree,
)
from goals.forecasts.snapshots import HORIZON_DAYS_BEFORE_END, horizon_instant
from goals.models import ForecastHorizon, ForecastSnapshot, ForecastSubmission
from spm.date_limits import COMPUTABLE_RANGE
from spm.fiscal import Period, period_containing
from spm.models import Membership, Organization

BIAS_HORIZONS = (ForecastHorizon.WEEKS_8, ForecastHorizon.WEEKS_4, ForecastHorizon.WEEKS_1)


def forecast_accuracy(forecast: Decimal | None, actual: Decimal) -> Decimal | None:
    """1 − |forecast − actual| ÷ actual; None when actual is 0 or there is no forecast."""
    if forecast is None or not actual:
        return None
    return 1 - abs(forecast - actual) / actual


def forecast_bias(forecast: Decimal | None, actual: Decimal) -> Decimal | None:
    """(forecast − actual) ÷ actual, positive when over-forecasting; None when actual is 0 or there is no forecast."""
    if forecast is None or not actual:
        return None
    return (forecast - actual) / actual


@dataclass
class HorizonForecast:
    """The forecast in force at one horizon and where it came from (None: nothing recorded)."""

    amount: Decimal | None
    source: str | None
    is_reconstructed: bool = False


@dataclass
class AccuracyLine:
    member: Membership | None
    actual: Decimal
    forecasts: dict[str, HorizonForecast] = field(default_factory=dict)

    @property
    def at_start(self) -> HorizonForecast:
        return self.forecasts[ForecastHorizon.START]

    @property
    def accuracy(self) -> Decimal | None:
        return forecast_accuracy(self.at_start.amount, self.actual)

    @property
    def biases(self) -> list[tuple[str, Decimal | None]]:
        return [(horizon, forecast_bias(self.forecasts[horizon].amount, self.actual)) for horizon in BIAS_HORIZONS]

    @property
    def undefined_reason(self) -> str:
        if not self.actual:
            return _("Nothing was won in this period, so accuracy and bias are undefined.")
        return _("No forecast was recorded at this point.")


def forecast_accuracy_lines(
    *, organization: Organization, tree: ForecastTree, period: Period, subject_ids: list[int | None]
) -> list[AccuracyLine]:
    """Return one AccuracyLine per subject id (None: the organization) for `period`, in three queries."""
    won = won_amounts(organization=organization, period=period)
    snapshots: dict[str, dict[int, ForecastSnapshot]] = {horizon: {} for horizon in HORIZON_DAYS_BEFORE_END}
    for row in ForecastSnapshot.objects.filter(period_kind=period.kind, period_start=period.start):
        snapshots[row.horizon][row.membership_id] = row
    submissions = list(
        ForecastSubmission.objects.filter(period_kind=period.kind, period_start=period.start).order_by(
            "submitted_at", "pk"
        )
    )
    instants = {horizon: horizon_instant(organization, period, horizon) for horizon in HORIZON_DAYS_BEFORE_END}

    lines = []
    for subject_id in subject_ids:
        member_ids = set(won) | {member_id for rows in snapshots.values() for member_id in rows}
        if subject_id is not None:
            member_ids = tree.subtree(subject_id)
        line = AccuracyLine(
            member=tree.members.get(subject_id) if subject_id is not None else None,
            actual=sum((won.get(member_id, ZERO) for member_id in member_ids), ZERO),
        )
        for horizon, instant in instants.items():
            line.forecasts[horizon] = _forecast_at(
                subject_id=subject_id,
                instant=instant,
                submissions=submissions,
                snapshot_rows=snapshots[horizon],
                member_ids=member_ids,
            )
        lines.append(line)
    return lines


def _forecast_at(
    *, subject_id: int | None, instant: dt.datetime | None, submissions, snapshot_rows: dict, member_ids: set[int]
) -> HorizonForecast:
    if instant is None:
        return HorizonForecast(amount=None, source=None)
    in_force = None
    for submission in submissions:
        if submission.subject_id == subject_id and submission.submitted_at <= instant:
            in_force = submission
    if in_force is not None:
        source = SOURCE_SUBMITTED if in_force.submitted_by_id == subject_id else SOURCE_ADJUSTED
        return HorizonForecast(amount=in_force.commit_amount, source=source)
    if not snapshot_rows:
        return HorizonForecast(amount=None, source=None)
    rows = [row for member_id, row in snapshot_rows.items() if member_id in member_ids]
    return HorizonForecast(
        amount=sum((row.forecast_amount for row in rows), ZERO),
        source=SOURCE_SYSTEM,
        is_reconstructed=any(row.is_reconstructed for row in rows),
    )


def periods_with_forecasts(*, organization: Organization, kind: str, today: dt.date, limit: int = 8) -> list[Period]:
    """Return up to `limit` ended periods of `kind` with recorded snapshots or submissions, oldest first.

    Periods with a day outside spm.date_limits.COMPUTABLE_RANGE are left out.
    """
    # Filtered in the query, because period_containing raises ValueError for a start in year 1
    # when the fiscal year starts after January.
    computable = {"period_start__range": (COMPUTABLE_RANGE.earliest, COMPUTABLE_RANGE.latest)}
    starts = set(
        ForecastSnapshot.objects.filter(period_kind=kind, **computable).values_list("period_start", flat=True).distinct()
    ) | set(
        ForecastSubmission.objects.filter(period_kind=kind, **computable).values_list("period_start", flat=True).distinct()
    )
    periods = [period_containing(start, kind, organization.fiscal_year_start_month) for start in starts]
    ended = sorted(
        (period for period in periods if period.end <= today and COMPUTABLE_RANGE.contains_period(period)),
        key=lambda period: period.start,
    )
    return ended[-limit:]


def forecast_vs_actual_series(
    *, organization: Organization, tree: ForecastTree, subject_id: int | None, periods: list[Period]
) -> list[tuple[Period, AccuracyLine]]:
    """Return (period, the subject's AccuracyLine) for each period, for the forecast-versus-actual chart."""
    return [
        (period, forecast_accuracy_lines(organization=organization, tree=tree, period=period, subject_ids=[subject_id])[0])
        for period in periods
    ]
