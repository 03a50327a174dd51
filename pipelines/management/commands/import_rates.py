"""`manage.py import_rates`: load exchange rates from a file and convert the affected deals again."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext, ngettext
from django_scopes import scope

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

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']} not found; check the slug.")
        with translation.override(organization.language), scope(organization=organization):
            try:
                outcome = exchange_rates_import(organization=organization, path=options["path"])
            except ImportSourceError as error:
                raise CommandError(str(error)) from None
            for error in outcome["errors"]:
                self.stderr.write(str(error))
            self.stdout.write(
                gettext("Rates: %(created)d new, %(updated)d changed, %(unchanged)d unchanged; %(deals)d deals converted again.")
                % {
                    "created": outcome["created"],
                    "updated": outcome["updated"],
                    "unchanged": outcome["unchanged"],
                    "deals": outcome["deals_recomputed"],
                }
            )
            if outcome["errors"]:
                raise CommandError(
                    ngettext(
                        "%(count)d row was rejected; the other rates were imported.",
                        "%(count)d rows were rejected; the other rates were imported.",
                        len(outcome["errors"]),
                    )
                    % {"count": len(outcome["errors"])},
                    returncode=1,
                )
