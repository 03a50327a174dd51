"""Print one period's KPI snapshot rows of an organization, or one pipeline analytics metric, as JSON or CSV."""

import csv
import io
import json
from decimal import ROUND_HALF_UP, Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django_scopes import scope

from dashboards.analytics import funnel, stages, velocity, waterfall
from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.periods import RANGE, parse_computable_period
from dashboards.kpis import KpiRow
from dashboards.models import Grain
from dashboards.selectors import kpi_rows
from goals.attainment_report import attainment_report
from pipelines.models import Pipeline
from spm.exports import report_csv_cell
from spm.ids import id_parse
from spm.models import Organization

FORMATS = ("json", "csv")
METRICS = ("funnel", "time_in_stage", "velocity", "waterfall", "attainment")
COLUMNS = (
    "subject",
    "won_count",
    "lost_count",
    "win_rate",
    "value_win_rate",
    "won_amount",
    "lost_amount",
    "average_deal_size",
    "sales_cycle_days_mean",
    "sales_cycle_days_median",
    "open_count",
    "open_amount",
    "pipeline_velocity",
)
MONEY_COLUMNS = {"won_amount", "lost_amount", "average_deal_size", "open_amount", "pipeline_velocity"}
FRACTION_COLUMNS = {"win_rate", "value_win_rate", "sales_cycle_days_mean", "sales_cycle_days_median"}
CENTS = Decimal("0.01")


class Command(BaseCommand):
    @property
    def help(self):
        # argparse needs a str, so the text is translated when the parser is built.
        return _(
            "Print the KPIs of one period per rep, team, territory or the whole organization, read from the "
            "precomputed snapshot rows the dashboard shows, or with --metric one pipeline analytics table of the "
            "whole organization, one row per stage in stage order (per step for the waterfall). In the output, "
            "the period's start and end are both dates inside the period: end is its last day (inclusive). Money "
            "is in the organization's base currency, as a string with two decimal places; rates and days are "
            "numbers; an undefined value is null (an empty CSV cell)."
        )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help=_("Slug of the organization."))
        parser.add_argument(
            "--period",
            required=True,
            help=_(
                "Fiscal year (2017), fiscal quarter (2017-Q2), calendar month (2017-03), or with --metric a date "
                "range with an inclusive end (2017-01-01..2017-03-31)."
            ),
        )
        parser.add_argument(
            "--by", help=_("One row per: rep, team, territory or organization. Required without --metric.")
        )
        parser.add_argument("--format", default="json", help=_("Output format: json (default) or csv."))
        parser.add_argument(
            "--metric",
            help=_(
                "Pipeline analytics instead of KPIs: funnel, time_in_stage, velocity or waterfall; or attainment "
                "(quota attainment per --by rep, team or territory)."
            ),
        )
        parser.add_argument(
            "--quota-metric",
            help=_("With --metric attainment: won_revenue (default), won_deals, pipeline_created, activities or meetings."),
        )
        parser.add_argument(
            "--as-of",
            help=_("With --metric attainment: the report date (2017-05-15; default today). Credit, pacing and projection count only what happened up to that day."),
        )
        parser.add_argument(
            "--pipeline",
            help=_("Name or id of the pipeline for funnel, time_in_stage and velocity (default: the default pipeline)."),
        )

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(
                _("Organization %(slug)r not found; pass the slug of an existing organization with --org.")
                % {"slug": options["org"]}
            )
        try:
            period = parse_computable_period(options["period"], organization.fiscal_year_start_month)
        except ValueError as error:
            raise CommandError(str(error)) from None
        output_format = options["format"]
        if output_format not in FORMATS:
            raise CommandError(
                _("Invalid --format %(value)r; use one of: %(choices)s.")
                % {"value": output_format, "choices": ", ".join(FORMATS)}
            )
        if options["metric"] == "attainment":
            # Quota attainment lives in goals; its JSON conventions are documented there.
            try:
                text = attainment_report(
                    organization=organization,
                    period=period,
                    level=options["by"],
                    quota_metric=options["quota_metric"],
                    as_of=options["as_of"],
                    output_format=output_format,
                )
            except ValueError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(text, ending="")
            return
        if options["metric"]:
            self._metric_report(organization, period, options["metric"], options["pipeline"], output_format)
            return
        if period.kind == RANGE:
            raise CommandError(
                _(
                    "A date range works only with --metric; KPI rows exist per fiscal year, quarter and month. "
                    "Use e.g. --period 2017-Q2."
                )
            )
        grain = options["by"]
        if not grain:
            raise CommandError(_("Missing --by; use rep, team, territory or organization, or pass --metric."))
        if grain not in Grain.values:
            raise CommandError(
                _("Invalid --by %(value)r; use one of: %(choices)s.")
                % {"value": grain, "choices": ", ".join(Grain.values)}
            )

        report = kpi_report_data(organization, period, grain)
        if output_format == "csv":
            self.stdout.write(_csv_text(report["rows"]), ending="")
            return
        self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))

    def _metric_report(self, organization, period, metric, pipeline_text, output_format):
        report = metric_report_data(organization, period, metric, pipeline_text)
        rows = report["rows"]
        if output_format == "csv":
            self.stdout.write(_csv_text(rows, columns=list(rows[0]) if rows else []), ending="")
            return
        self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))


def kpi_report_data(organization: Organization, period, grain: str) -> dict:
    """Return the report of one period's KPI snapshot rows per `grain`, as the command prints it in JSON."""
    with scope(organization=organization):
        rows = [_row_values(row) for row in kpi_rows(organization=organization, period=period, grain=grain)]
    return {
        "organization": organization.slug,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.last_day.isoformat()},
        "by": grain,
        "rows": rows,
    }


def metric_report_data(organization: Organization, period, metric: str, pipeline_text: str | None) -> dict:
    """Return one pipeline analytics metric's report, as the command prints it in JSON; CommandError on a bad value."""
    if metric not in METRICS:
        raise CommandError(
            _("Invalid --metric %(value)r; use one of: %(choices)s.")
            % {"value": metric, "choices": ", ".join(METRICS)}
        )
    window = Window.of(period, organization)
    report = {
        "organization": organization.slug,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.last_day.isoformat()},
        "metric": metric,
    }
    with scope(organization=organization):
        deals = deal_universe(organization=organization, visible_member_ids=None)
        if metric == "waterfall":
            today = timezone.localdate(timezone=organization.tzinfo)
            result = waterfall.waterfall(deals, window=window, today=today)
            report["start_from_snapshot"] = result.start_from_snapshot
            report["end_from_snapshot"] = result.end_from_snapshot
            report["identity_holds"] = result.identity_holds
            rows = [
                {"step": step.key, "deal_count": step.deal_count, "amount": _money(step.base_amount)}
                for step in result.steps.values()
            ]
        else:
            pipeline = _pipeline(pipeline_text)
            report["pipeline"] = pipeline.name
            rows = _stage_metric_rows(metric, deals, window, pipeline)
    report["rows"] = rows
    return report


def _pipeline(text: str | None) -> Pipeline:
    """Find the pipeline by id or name, or the default one; CommandError when there is none."""
    pipelines = Pipeline.objects.order_by("-is_default", "name")
    if text:
        pipeline_id = id_parse(text)
        found = pipelines.filter(pk=pipeline_id).first() if pipeline_id is not None else None
        found = found or pipelines.filter(name=text).first()
        if found is None:
            raise CommandError(
                _("Pipeline %(value)r not found; pass the name or id of one of: %(choices)s.")
                % {"value": text, "choices": ", ".join(pipelines.values_list("name", flat=True))}
            )
        return found
    found = pipelines.first()
    if found is None:
        raise CommandError(_("The organization has no pipeline yet; import deals first."))
    return found


def _stage_metric_rows(metric: str, deals, window: Window, pipeline: Pipeline) -> list[dict]:
    """Build one row per stage in stage order: funnel steps (then the won step), stays, or moves on."""
    if metric == "funnel":
        return [
            {
                "stage": row.label,
                "kind": "won" if row.is_won else "open",
                "reached": row.reached,
                "conversion_to_next": _number(row.conversion),
            }
            # The won step is a key that programs match on, so it is not translated.
            for row in funnel.funnel_rows(deals, window=window, pipeline=pipeline, won_label="Won")
        ]
    if metric == "time_in_stage":
        return [
            {
                "stage": row.stage.name,
                "stay_count": row.stay_count,
                "deal_count": row.deal_count,
                "days_mean": _number(row.days_mean),
                "days_median": _number(row.days_median),
            }
            for row in stages.time_in_stage_rows(deals, window=window, pipeline=pipeline)
        ]
    return [
        {"stage": row.stage.name, "deal_count": row.deal_count, "days_mean": _number(row.days_mean)}
        for row in velocity.stage_velocity_rows(deals, window=window, pipeline=pipeline)
    ]


def _number(value) -> float | None:
    return None if value is None else float(value)


def _money(value) -> str:
    return str(Decimal(value).quantize(CENTS, ROUND_HALF_UP))


def _row_values(row: KpiRow) -> dict:
    """Map a KPI row to the report's columns: money as a two-place string, fractions as floats, None kept."""
    values = {}
    for column in COLUMNS:
        value = getattr(row, column)
        if value is None:
            values[column] = None
        elif column in MONEY_COLUMNS:
            values[column] = str(Decimal(value).quantize(CENTS, ROUND_HALF_UP))
        elif column in FRACTION_COLUMNS:
            values[column] = float(value)
        else:
            values[column] = value
    return values


def _csv_text(rows: list[dict], columns=COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([report_csv_cell(row[column]) for column in columns])
    return buffer.getvalue()
