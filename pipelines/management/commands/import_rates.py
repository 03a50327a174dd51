"""`manage.py import_rates`: load exchange rates from a file and convert the affected deals again."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext, ngettext
from django_scopes import scope

from dashboards.templatetags.spm_format import format_number
from pipelines.importers.base import ImportSourceError
from pipelines.services_rates import exchange_rates_import
from spm.models import Organization


class Command(BaseCommand):
    help = (
        "Import exchange rates: the ECB reference rates CSV (Date,USD,JPY,... as units per 1 EUR) or a "
        "currency,date,rate list in base units per 1 unit. Exits with status 1 when rows were rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="CSV or XLSX file with the rates.")
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument(
            "--date-order",
            choices=["dmy", "mdy"],
            default="",
            help="How to read slashed dates such as 03/04/2025: dmy (3 April) or mdy (4 March). "
            "Without it, dates that read both ways are rejected.",
        )

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(
                gettext("Organization %(slug)s not found; check --org against the slug in the URL /o/<slug>/.")
                % {"slug": options["org"]}
            )
        with translation.override(organization.language), scope(organization=organization):
            try:
                outcome = exchange_rates_import(
                    organization=organization, path=options["path"], date_order=options["date_order"]
                )
            except ImportSourceError as error:
                raise CommandError(str(error)) from None
            for error in outcome["errors"]:
                self.stderr.write(str(error))
            self.stdout.write(
                gettext("Rates: %(created)s new, %(updated)s changed, %(unchanged)s unchanged; %(deals)s deals converted again.")
                % {
                    "created": format_number(outcome["created"]),
                    "updated": format_number(outcome["updated"]),
                    "unchanged": format_number(outcome["unchanged"]),
                    "deals": format_number(outcome["deals_recomputed"]),
                }
            )
            if outcome["errors"]:
                raise CommandError(
                    ngettext(
                        "%(count)s row was rejected; the other rates were imported.",
                        "%(count)s rows were rejected; the other rates were imported.",
                        len(outcome["errors"]),
                    )
                    % {"count": format_number(len(outcome["errors"]))},
                    returncode=1,
                )
