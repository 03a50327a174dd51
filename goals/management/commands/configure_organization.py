"""`manage.py configure_organization --org SLUG [...]`: change the fiscal calendar, time zone, currency, language."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext
from django_scopes import scope

from goals.management.commands._upload import organization_get
from goals.services import organization_settings_update
from spm.models import Organization


def month_number(value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 12:
        raise CommandError(
            gettext("--fiscal-year-start-month %(value)s is invalid; use a month number from 1 (January) to 12.")
            % {"value": value}
        )
    return int(value)


def setting_text(organization: Organization, field: str) -> str:
    """Format one changed setting as "label: value" in the active language, e.g. "Default language: English"."""
    label = capfirst(Organization._meta.get_field(field).verbose_name)
    if field == "fiscal_year_start_month":
        value = date_format(dt.date(2000, organization.fiscal_year_start_month, 1), "F")
    elif field == "language":
        value = organization.get_language_display()
    else:
        value = getattr(organization, field)
    return f"{label}: {value}"


class Command(BaseCommand):
    help = (
        "Change an organization's fiscal year start month, time zone, base currency or default language. "
        "Existing quotas keep their dates; a new fiscal calendar or time zone schedules a KPI recompute."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument(
            "--fiscal-year-start-month",
            help="First month of the fiscal year, 1 (January) to 12; the fiscal year is named by the year it ends in.",
        )
        parser.add_argument("--time-zone", help="IANA time zone name, e.g. Europe/Berlin.")
        parser.add_argument(
            "--currency",
            help=(
                "ISO 4217 code of the base currency, e.g. EUR. Rejected once the organization has deals, money "
                "quotas, forecasts or exchange rates, because their amounts would not be converted."
            ),
        )
        parser.add_argument("--language", choices=["de", "en"], help="Default language of the organization.")

    def handle(self, *args, **options):
        organization = organization_get(options["org"])
        # The output uses the organization's language as it was before this change.
        with translation.override(organization.language):
            self.organization_configure(organization, options)

    def organization_configure(self, organization: Organization, options: dict) -> None:
        if options["fiscal_year_start_month"] is not None:
            options["fiscal_year_start_month"] = month_number(options["fiscal_year_start_month"])
        changes = {
            field: options[option]
            for option, field in (
                ("fiscal_year_start_month", "fiscal_year_start_month"),
                ("time_zone", "time_zone"),
                ("currency", "currency"),
                ("language", "language"),
            )
            if options[option] is not None
        }
        if not changes:
            raise CommandError(
                gettext(
                    "Nothing to change; give at least one of --fiscal-year-start-month, --time-zone, --currency, "
                    "--language."
                )
            )

        with scope(organization=organization):
            try:
                changed = organization_settings_update(organization=organization, actor=None, changes=changes)
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from None

        if not changed:
            self.stdout.write(gettext("Organization %(slug)s already has these settings.") % {"slug": organization.slug})
            return
        for field in changed:
            self.stdout.write(setting_text(organization, field))
