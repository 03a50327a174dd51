"""`manage.py import_quotas --org SLUG FILE`: set quotas from a CSV or XLSX file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django_scopes import scope

from goals.imports import quota_import
from goals.management.commands._upload import file_read, organization_get, result_print
from pipelines.importers.base import ImportSourceError


class Command(BaseCommand):
    help = (
        "Set quotas from a CSV or XLSX file with the columns level, name, period, metric, target and "
        "optionally prorate. Running it twice changes nothing. Exits with status 1 when rows were rejected; "
        "the accepted rows are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV (comma, semicolon or tab separated) or XLSX file.")
        parser.add_argument("--org", required=True, help="Slug of the organization.")

    def handle(self, *args, **options):
        organization = organization_get(options["org"])
        data = file_read(options["file"])
        with translation.override(organization.language), scope(organization=organization):
            try:
                result = quota_import(organization=organization, actor=None, data=data, file_name=options["file"].name)
            except ImportSourceError as error:
                raise CommandError(str(error)) from None
            result_print(self, result)
        if result.rejected:
            raise SystemExit(1)
