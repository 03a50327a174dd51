"""Print one period's KPI snapshot rows of an organization as JSON or CSV."""

import csv
import io
import json
from decimal import ROUND_HALF_UP, Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django_scopes import scope

from dashboards.kpis import KpiRow
from dashboards.models import Grain
from dashboards.selectors import kpi_rows
from spm.fiscal import parse_period
from spm.models import Organization

FORMATS = ("json", "csv")
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
            "precomputed snapshot rows the dashboard shows. In the output, the period's start and end are both "
            "dates inside the period: end is its last day (inclusive). Money is in the organization's base "
            "currency, as a string with two decimal places; an undefined KPI is null (an empty CSV cell)."
        )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help=_("Slug of the organization."))
        parser.add_argument(
            "--period",
            required=True,
            help=_("Fiscal year (2017), fiscal quarter (2017-Q2) or calendar month (2017-03)."),
        )
        parser.add_argument("--by", required=True, help=_("One row per: rep, team, territory or organization."))
        parser.add_argument("--format", default="json", help=_("Output format: json (default) or csv."))

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(
                _("Organization %(slug)r not found; pass the slug of an existing organization with --org.")
                % {"slug": options["org"]}
            )
        try:
            period = parse_period(options["period"], organization.fiscal_year_start_month)
        except ValueError as error:
            raise CommandError(str(error)) from None
        grain = options["by"]
        if grain not in Grain.values:
            raise CommandError(
                _("Invalid --by %(value)r; use one of: %(choices)s.")
                % {"value": grain, "choices": ", ".join(Grain.values)}
            )
        output_format = options["format"]
        if output_format not in FORMATS:
            raise CommandError(
                _("Invalid --format %(value)r; use one of: %(choices)s.")
                % {"value": output_format, "choices": ", ".join(FORMATS)}
            )

        with scope(organization=organization):
            rows = [_row_values(row) for row in kpi_rows(organization=organization, period=period, grain=grain)]

        if output_format == "csv":
            self.stdout.write(_csv_text(rows), ending="")
            return
        report = {
            "organization": organization.slug,
            "period": {"label": period.label, "start": period.start.isoformat(), "end": period.last_day.isoformat()},
            "by": grain,
            "rows": rows,
        }
        self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))


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


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row[column] is None else row[column] for column in COLUMNS])
    return buffer.getvalue()
