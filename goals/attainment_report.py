"""`kpi_report --metric attainment`: quota, credit, attainment, pacing and coverage per subject.

JSON conventions, as in the rest of kpi_report: money (won_revenue,
pipeline_created) is a string with two decimal places in the base currency;
counts (won_deals, activities, meetings) are numbers, and a prorated count
quota may be fractional (6.5). Rates (attainment, elapsed_share, pacing,
projected_attainment, coverage) are fractions as numbers: 0.375 means 37.5 %.
An undefined value is null. `coverage` is the string "covered" when nothing
of the quota remains, a number when some remains, and null without a quota or
for metrics without a pipeline (pipeline_created, activities, meetings). In
CSV an undefined value is an empty cell and coverage reads "covered" too.
"""

import csv
import datetime as dt
import io
import json
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django_scopes import scope

from goals.attainment import (
    COUNT_METRICS,
    Attainment,
    attainment_list,
    organization_today,
)
from goals.models import QuotaLevel, QuotaMetric
from spm.date_limits import COMPUTABLE_RANGE
from spm.exports import report_csv_cell
from spm.fiscal import Period
from spm.models import Organization

COVERED = "covered"
COLUMNS = (
    "subject",
    "quota",
    "credited",
    "attainment",
    "elapsed_share",
    "pace_target",
    "pacing",
    "projected",
    "projected_attainment",
    "open_pipeline",
    "coverage",
    "warning",
)
AMOUNT_COLUMNS = ("quota", "credited", "pace_target", "projected", "open_pipeline")
RATE_COLUMNS = ("attainment", "elapsed_share", "pacing", "projected_attainment")
CENTS = Decimal("0.01")


def _amount(value: Decimal | None, metric: str):
    if value is None:
        return None
    if metric in COUNT_METRICS:
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value.quantize(CENTS, ROUND_HALF_UP))


def attainment_report_row(row: Attainment) -> dict:
    """Map one Attainment to the report's columns with the conventions of the module docstring."""
    values = {"subject": row.subject}
    for column in AMOUNT_COLUMNS:
        values[column] = _amount(getattr(row, column), row.metric)
    for column in RATE_COLUMNS:
        value = getattr(row, column)
        values[column] = None if value is None else float(value)
    if row.is_covered:
        values["coverage"] = COVERED
    elif row.coverage is None:
        values["coverage"] = None
    else:
        values["coverage"] = float(row.coverage)
    values["warning"] = row.is_warning
    return {column: values[column] for column in COLUMNS}


def attainment_report(
    *,
    organization: Organization,
    period: Period,
    level: str | None,
    quota_metric: str | None,
    as_of: str | None,
    output_format: str,
) -> str:
    """Return the attainment report of one fiscal period as JSON or CSV text.

    `level` is rep, team or territory; `quota_metric` one of QuotaMetric
    (default won_revenue); `as_of` an ISO date that fixes "today" for credit and
    pacing, so deals closed after it are not credited (default: today in the
    organization's time zone). Raises ValueError with a
    message naming the invalid value.
    """
    if level not in QuotaLevel.values:
        raise ValueError(
            _("Invalid or missing --by %(value)r for --metric attainment; use one of: %(choices)s.")
            % {"value": level, "choices": ", ".join(QuotaLevel.values)}
        )
    metric = quota_metric or QuotaMetric.WON_REVENUE
    if metric not in QuotaMetric.values:
        raise ValueError(
            _("Invalid --quota-metric %(value)r; use one of: %(choices)s.")
            % {"value": metric, "choices": ", ".join(QuotaMetric.values)}
        )
    if period.kind not in ("year", "quarter", "month"):
        raise ValueError(_("Attainment needs a fiscal year, quarter or month, e.g. --period 2017-Q2."))
    try:
        today = dt.date.fromisoformat(as_of) if as_of else organization_today(organization)
    except ValueError:
        raise ValueError(_("Invalid --as-of %(value)r; use a date like 2017-05-15.") % {"value": as_of}) from None
    try:
        COMPUTABLE_RANGE.check(today)
    except ValidationError as error:
        raise ValueError(error.messages[0]) from None

    with scope(organization=organization):
        rows = attainment_list(organization=organization, period=period, metric=metric, level=level, today=today)
    report_rows = [attainment_report_row(row) for row in rows]

    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in report_rows:
            writer.writerow([report_csv_cell(row[column]) for column in COLUMNS])
        return buffer.getvalue()
    report = {
        "organization": organization.slug,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.last_day.isoformat()},
        "metric": "attainment",
        "quota_metric": metric,
        "by": level,
        "as_of": today.isoformat(),
        "rows": report_rows,
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
