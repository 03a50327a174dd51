"""`manage.py import_people --org SLUG FILE`: create or update members from a CSV or XLSX file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django_scopes import scope

from goals.imports import people_import
from goals.management.commands._upload import file_read, organization_get, result_print
from pipelines.importers.base import ImportSourceError


class Command(BaseCommand):
    help = (
        "Create or update members from a CSV or XLSX file with the columns name, email and optionally role, "
        "team, territory, active_from, active_to. People match by e-mail, else by name. Running it twice "
        "changes nothing. Exits with status 1 when rows were rejected; the accepted rows are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV (comma, semicolon or tab separated) or XLSX file.")
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument(
            "--add-existing-accounts",
            action="store_true",
            help=(
                "Also add users who already have an SPM account, e.g. as members of another organization; they "
                "keep their password and can open this organization at once. Without it such rows are rejected."
            ),
        )

    def handle(self, *args, **options):
        organization = organization_get(options["org"])
        data = file_read(options["file"])
        with translation.override(organization.language), scope(organization=organization):
            try:
                result = people_import(
                    organization=organization,
                    actor=None,
                    data=data,
                    file_name=options["file"].name,
                    add_existing_accounts=options["add_existing_accounts"],
                )
            except ImportSourceError as error:
                raise CommandError(str(error)) from None
            result_print(self, result)
        if result.rejected:
            raise SystemExit(1)
