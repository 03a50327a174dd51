"""`manage.py forecast_backfill --org SLUG [--from LABEL] [--to LABEL]`: reconstruct past forecast snapshots."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min
from django.utils import translation
from django.utils.translation import gettext
from django_scopes import scope

from dashboards.templatetags.spm_format import format_number
from goals.attainment import organization_today
from goals.forecasts.categories import forecast_period_kind
from goals.forecasts.snapshots import forecast_snapshot_backfill
from goals.management.commands._upload import organization_get
from goals.models import ForecastPeriodKind
from pipelines.models import Deal
from spm.fiscal import parse_period, period_containing


class Command(BaseCommand):
    help = (
        "Reconstruct the system forecast snapshots (weighted pipeline + won so far at each period's start and "
        "8, 4 and 1 weeks before its end) of past periods from the stage history. Horizons already recorded "
        "are kept. Expected close dates, amounts and probability overrides have no history, so their current "
        "values are used and the rows are marked as reconstructed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument(
            "--from",
            dest="first",
            help="First period, e.g. 2017-Q1 (or 2017-03 for monthly forecasts); default: the first deal's period.",
        )
        parser.add_argument(
            "--to",
            dest="last",
            help="Last period; default: the period of the latest deal creation or close, or the current one if earlier.",
        )

    def handle(self, *args, **options):
        organization = organization_get(options["org"])
        with translation.override(organization.language), scope(organization=organization):
            kind = forecast_period_kind(organization)
            start_month = organization.fiscal_year_start_month
            today = organization_today(organization)
            dates = Deal.objects.aggregate(first=Min("created_at"), created=Max("created_at"), closed=Max("closed_at"))
            default_first = self._local_date(dates["first"], organization) or today
            latest = max(filter(None, (dates["created"], dates["closed"])), default=None)
            default_last = min(self._local_date(latest, organization) or today, today)
            first = self._period(options["first"], kind, start_month, "--from") or period_containing(
                default_first, kind, start_month
            )
            last = self._period(options["last"], kind, start_month, "--to") or period_containing(
                default_last, kind, start_month
            )
            if last.start < first.start:
                raise CommandError(
                    gettext("--to %(last)s is before --from %(first)s; swap them.") % {"last": last.label, "first": first.label}
                )
            periods, period = [], first
            while period.start <= last.start:
                periods.append(period)
                period = period_containing(period.end, kind, start_month)
            inserted = forecast_snapshot_backfill(organization=organization, periods=periods)
            self.stdout.write(
                gettext("%(rows)s snapshot rows written for %(count)s periods (%(first)s to %(last)s).")
                % {
                    "rows": format_number(inserted),
                    "count": format_number(len(periods)),
                    "first": first.label,
                    "last": last.label,
                }
            )

    @staticmethod
    def _local_date(moment: dt.datetime | None, organization) -> dt.date | None:
        return moment.astimezone(organization.tzinfo).date() if moment is not None else None

    @staticmethod
    def _period(label: str | None, kind: str, start_month: int, option: str):
        if label is None:
            return None
        try:
            period = parse_period(label, start_month)
        except ValueError as error:
            raise CommandError(f"{option}: {error}") from None
        if period.kind != kind:
            example = "2017-Q1" if kind == "quarter" else "2017-03"
            raise CommandError(
                gettext(
                    "%(option)s %(value)s is not a period of the organization's forecast kind (%(kind)s);"
                    " give one such as %(example)s."
                )
                % {"option": option, "value": label, "kind": ForecastPeriodKind(kind).label, "example": example}
            )
        return period
