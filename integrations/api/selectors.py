"""Reads of /api/v1/ that go beyond one model: the kpi_report metrics."""

import json

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from dashboards.analytics.periods import RANGE, parse_period_or_range
from dashboards.management.commands.kpi_report import kpi_report_data, metric_report_data
from dashboards.models import Grain
from goals.attainment_report import attainment_report
from spm.models import Organization


class KpiReportError(ValueError):
    """A query parameter of the KPI report is invalid; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def kpi_report_build(
    *,
    organization: Organization,
    period_text: str,
    by: str | None,
    metric: str | None,
    pipeline: str | None,
    quota_metric: str | None,
    as_of: str | None,
) -> dict:
    """Return the report that `manage.py kpi_report --format json` prints for the same options.

    Raises KpiReportError naming the parameter and the fix when a value is missing or invalid.
    """
    if not period_text:
        raise KpiReportError("period", _("Missing period; give e.g. 2017, 2017-Q2 or 2017-03."))
    try:
        period = parse_period_or_range(period_text, organization.fiscal_year_start_month)
    except ValueError as error:
        raise KpiReportError("period", str(error)) from None

    if metric == "attainment":
        try:
            text = attainment_report(
                organization=organization,
                period=period,
                level=by,
                quota_metric=quota_metric,
                as_of=as_of,
                output_format="json",
            )
        except ValueError as error:
            raise KpiReportError("by", str(error)) from None
        return json.loads(text)
    if metric:
        try:
            return metric_report_data(organization, period, metric, pipeline)
        except CommandError as error:
            raise KpiReportError("metric" if "metric" in str(error) else "pipeline", str(error)) from None

    if period.kind == RANGE:
        raise KpiReportError(
            "period", _("A date range works only with metric; KPI rows exist per fiscal year, quarter and month.")
        )
    if by not in Grain.values:
        raise KpiReportError(
            "by",
            _("Invalid or missing by %(value)r; use one of: %(choices)s.") % {"value": by, "choices": ", ".join(Grain.values)},
        )
    return kpi_report_data(organization, period, by)
