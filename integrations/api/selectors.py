"""Reads of /api/v1/ that go beyond one model: the kpi_report metrics."""

import datetime as dt
import json

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from dashboards.analytics.periods import RANGE, parse_computable_period
from dashboards.management.commands.kpi_report import METRICS, kpi_report_data, metric_report_data
from dashboards.models import Grain
from goals.attainment_report import attainment_report
from goals.models import QuotaLevel, QuotaMetric
from spm.date_limits import COMPUTABLE_RANGE
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
        period = parse_computable_period(period_text, organization.fiscal_year_start_month)
    except ValueError as error:
        raise KpiReportError("period", str(error)) from None

    _choice_check("metric", metric, METRICS, required=False)
    if metric == "attainment":
        _attainment_parameters_check(by=by, quota_metric=quota_metric, as_of=as_of)
        if period.kind == RANGE:
            raise KpiReportError("period", _("Attainment needs a fiscal year, quarter or month, e.g. 2017-Q2."))
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
            # The parameters were checked above, so this is a value the checks did not foresee.
            raise KpiReportError("period", str(error)) from None
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
    _choice_check("by", by, Grain.values, required=True)
    return kpi_report_data(organization, period, by)


def _choice_check(field: str, value: str | None, choices, *, required: bool) -> None:
    """Raise KpiReportError for `field` when `value` is not one of `choices` (or is missing and `required`)."""
    if value is None and not required:
        return
    if value is None:
        raise KpiReportError(field, _("Missing value; use one of: %(choices)s.") % {"choices": ", ".join(choices)})
    if value not in choices:
        raise KpiReportError(
            field, _("Invalid value %(value)r; use one of: %(choices)s.") % {"value": value, "choices": ", ".join(choices)}
        )


def _attainment_parameters_check(*, by: str | None, quota_metric: str | None, as_of: str | None) -> None:
    """Check the attainment parameters here, so each error names its own query parameter rather than the command's option."""
    _choice_check("by", by, QuotaLevel.values, required=True)
    _choice_check("quota_metric", quota_metric, QuotaMetric.values, required=False)
    if as_of is not None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise KpiReportError(
                "as_of", _("Invalid value %(value)r; give a date such as 2017-01-01.") % {"value": as_of}
            ) from None
        try:
            COMPUTABLE_RANGE.check(day)
        except ValidationError as error:
            raise KpiReportError("as_of", error.messages[0]) from None
