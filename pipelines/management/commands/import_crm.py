"""`manage.py import_crm`: import a CRM export folder into one organization."""

import dataclasses
import logging
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext, gettext_noop, ngettext
from django_scopes import scope

from dashboards.templatetags.spm_format import format_fixed, format_number
from pipelines.import_files import import_files_check
from pipelines.importers import IMPORTERS
from pipelines.importers.base import ImportSourceError, Message, people_created_sorted
from pipelines.importers.generic import GENERIC_FIELDS, REQUIRED_FIELDS
from pipelines.importers.upload_checks import TABLE_SUFFIXES
from pipelines.models import ImportSource
from pipelines.services import crm_import
from pipelines.services_imports import import_mapping_get, table_files_check
from spm.models import Organization

logger = logging.getLogger(__name__)

# Rejected rows printed in full; the rest are only counted.
MAX_ERRORS_SHOWN = 50
# New members printed by name; the rest are only counted.
MAX_PEOPLE_SHOWN = 50

# Importer messages that name controls of the import page, with the command's wording of each.
# NOTE: they are matched by message id, so a message whose id changes in pipelines.importers
# is printed with the page's wording again.
COMMAND_WORDING = {
    "ambiguous date: it can be day/month or month/day; choose the date order (DD/MM/YYYY or MM/DD/YYYY) and import "
    "again": gettext_noop(
        "ambiguous date: it can be day/month or month/day; pass --date-order dmy (DD/MM/YYYY) or --date-order mdy "
        "(MM/DD/YYYY) and import again"
    ),
    "no exchange rate for %(currency)s valid on %(date)s; upload rates for %(currency)s valid from that date or "
    "earlier": gettext_noop(
        "no exchange rate for %(currency)s valid on %(date)s; import rates for %(currency)s valid from that date or "
        "earlier with import_rates"
    ),
    # The file checks of the upload page: the command reads files from a folder and uploads nothing.
    "File %(file)s is an Excel 97-2003 workbook (.xls), which cannot be read. "
    "Save it as an Excel workbook (.xlsx) or as CSV UTF-8 and upload it again.": gettext_noop(
        "File %(file)s is an Excel 97-2003 workbook (.xls), which cannot be read. "
        "Save it as an Excel workbook (.xlsx) or as CSV UTF-8 and import it again."
    ),
    "File %(file)s is not an Excel workbook, although its name ends in .xlsx. "
    "Save it from Excel as .xlsx, or as CSV UTF-8 with the extension .csv, and upload it again.": gettext_noop(
        "File %(file)s is not an Excel workbook, although its name ends in .xlsx. "
        "Save it from Excel as .xlsx, or as CSV UTF-8 with the extension .csv, and import it again."
    ),
    "File %(file)s is a ZIP archive, not a CSV file. An Excel workbook is a ZIP archive too: "
    "upload a workbook with the extension .xlsx, or export the data as CSV.": gettext_noop(
        "File %(file)s is a ZIP archive, not a CSV file. An Excel workbook is a ZIP archive too: "
        "give a workbook the extension .xlsx, or export the data as CSV. Unpack other ZIP files first."
    ),
    "File %(file)s is UTF-16 text, which cannot be read. Save it as CSV UTF-8 and upload it again.": gettext_noop(
        "File %(file)s is UTF-16 text, which cannot be read. Save it as CSV UTF-8 and import it again."
    ),
    "File %(file)s is not a text file: it contains the byte 0x00, which no CSV file contains. "
    "Save it as CSV UTF-8 and upload it again.": gettext_noop(
        "File %(file)s is not a text file: it contains the byte 0x00, which no CSV file contains. "
        "Save it as CSV UTF-8 and import it again."
    ),
    "File %(file)s is neither UTF-8 nor Windows-1252: it contains the byte %(byte)s, which neither can read."
    " Save it as CSV UTF-8 and upload it again.": gettext_noop(
        "File %(file)s is neither UTF-8 nor Windows-1252: it contains the byte %(byte)s, which neither can read."
        " Save it as CSV UTF-8 and import it again."
    ),
    "File %(file)s, sheet %(sheet)s, is missing the required column(s): %(columns)s. "
    "The column names must be in the first row of the sheet. The workbook has the sheets %(sheets)s: "
    "move the sheet with the data to the front, or remove the other sheets, and upload it again.": gettext_noop(
        "File %(file)s, sheet %(sheet)s, is missing the required column(s): %(columns)s. "
        "The column names must be in the first row of the sheet. The workbook has the sheets %(sheets)s: "
        "move the sheet with the data to the front, or remove the other sheets, and import it again."
    ),
}
MAPPING_COLUMNS_MISSING = "File %(file)s has no column(s) %(columns)s; choose the mapping again."


def folder_table_names(folder: Path) -> list[str]:
    """Return the names of the CSV, TSV, TXT and XLSX files in `folder`, which the importers may read."""
    return sorted(file.name for file in folder.iterdir() if file.is_file() and file.suffix.lower() in TABLE_SUFFIXES)


def command_message(message: Message, *, map_given: bool = False) -> Message:
    """Return `message` in the command's wording when it names a control of the import page.

    `map_given` is True when the generic column mapping came from --map, and False when it
    came from the organization's saved mapping.
    """
    if message.is_literal:
        return message
    if message.msgid == MAPPING_COLUMNS_MISSING:
        if map_given:
            msgid = gettext_noop(
                "File %(file)s has no column(s) %(columns)s, which --map names; give the column names as the file's "
                "header row spells them."
            )
        else:
            msgid = gettext_noop(
                "File %(file)s has no column(s) %(columns)s, which the organization's saved mapping names; pass "
                "--map FIELD=COLUMN with the column names of the file's header row."
            )
        return Message(msgid, message.params)
    msgid = COMMAND_WORDING.get(message.msgid)
    return Message(msgid, message.params) if msgid else message


def entity_label(entity: str) -> str:
    labels = {
        "people": gettext("people"),
        "teams": gettext("teams"),
        "territories": gettext("territories"),
        "accounts": gettext("accounts"),
        "products": gettext("products"),
        "deals": gettext("deals"),
        "stage_changes": gettext("stage changes"),
        "activities": gettext("activities"),
    }
    return labels[entity]


class Command(BaseCommand):
    help = (
        "Import a CRM export folder into an organization. Re-running with the same files changes nothing. "
        "Exits with status 1 when rows were rejected; the accepted rows are kept."
    )

    # Set by run_from_argv: the command runs from manage.py, not from call_command.
    from_command_line = False

    def run_from_argv(self, argv):
        """Run from manage.py, which prints rejected rows' summary without Django's "CommandError: " prefix.

        BaseCommand.run_from_argv writes a CommandError as "CommandError: <message>", which put
        an English class name before a German sentence. call_command still raises CommandError.
        """
        self.from_command_line = True
        super().run_from_argv(argv)

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="Folder with the export's CSV or XLSX files.")
        parser.add_argument("--org", required=True, help="Slug of the organization to import into.")
        parser.add_argument("--source", required=True, choices=sorted(IMPORTERS), help="CRM that wrote the export.")
        parser.add_argument(
            "--currency",
            help="ISO 4217 code of the amounts in the files, e.g. USD (default: the organization's base currency).",
        )
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the organization if it does not exist; its base currency is --currency, else EUR.",
        )
        parser.add_argument(
            "--language", choices=["de", "en"], help="Language of the output (default: the organization's)."
        )
        parser.add_argument(
            "--date-order",
            choices=["dmy", "mdy"],
            default="",
            help="How to read slashed dates such as 03/04/2025: dmy (3 April) or mdy (4 March). "
            "Without it, dates that read both ways are rejected.",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help="Generic source: the file column of a deal field, e.g. --map external_id=ID --map owner=Owner. "
            "Without --map, the organization's saved mapping is used.",
        )

    def handle(self, *args, **options):
        language = options["language"]
        # Until the organization is known, messages use --language or the default language.
        with translation.override(language or translation.get_language()):
            slug = options["org"]
            try:
                validate_slug(slug)
            except ValidationError:
                raise CommandError(
                    gettext("--org %(slug)s is not a valid slug; use letters, digits, hyphens and underscores.")
                    % {"slug": slug}
                ) from None

            path = options["path"]
            if not path.exists():
                raise CommandError(
                    gettext("%(path)s not found; pass the folder of the CRM export or one of its files.") % {"path": path}
                )

            # The organization is created in the same transaction as the import, so a
            # failed run leaves no empty organization behind.
            started = time.monotonic()
            committed_at = []
            with transaction.atomic():
                # Commit hooks run in the order they were added, after the COMMIT returned, so this
                # first one records when the import was committed, before the recompute and the
                # other tasks that the import schedules are sent to the broker.
                transaction.on_commit(lambda: committed_at.append(time.monotonic()))
                organization = self.organization_get(slug, create=options["create"], currency=options["currency"])
                with translation.override(language or organization.language), scope(organization=organization):
                    try:
                        self.export_files_check(path, options["source"])
                        result = crm_import(
                            organization=organization,
                            source=options["source"],
                            path=path,
                            currency=options["currency"],
                            options=self.importer_options(organization, options),
                        )
                    except ImportSourceError as error:
                        raise CommandError(str(command_message(error.message, map_given=bool(options["map"])))) from None
                    self.report(organization, result)
            # This duration includes the commit, where PostgreSQL checks the deferred foreign keys
            # of the new rows. The importer's own duration ends before it. Inside a caller's
            # transaction (tests) no commit happened, and both durations end here.
            finished = time.monotonic()
            committed = committed_at[0] if committed_at else finished
            logger.info(
                "Import committed organization_id=%s source=%s deals_created=%s seconds=%.2f tasks_sent_seconds=%.2f",
                organization.pk,
                options["source"],
                result.counts["deals"].created,
                committed - started,
                finished - committed,
            )

            if result.errors:
                with translation.override(language or organization.language):
                    message = ngettext(
                        "%(count)s row was rejected; the accepted rows were imported.",
                        "%(count)s rows were rejected; the accepted rows were imported.",
                        len(result.errors),
                    ) % {"count": format_number(len(result.errors))}
                if self.from_command_line and not options["traceback"]:
                    # Exit status 1, as a CommandError with returncode=1 gives, because scripts check it.
                    self.stderr.write(message)
                    raise SystemExit(1)
                raise CommandError(message, returncode=1)

    def export_files_check(self, path: Path, source: str) -> None:
        """Run the upload page's checks on the table files at `path`, a folder or one file; raise on the first problem.

        A file whose content does not fit its extension, an empty file, a file that cannot
        be decoded, an export without data rows and, for a folder, a file that the importer
        would skip raise ImportSourceError with the page's message.
        """
        if path.is_dir():
            directory, names = path, folder_table_names(path)
            if not names:
                raise CommandError(gettext("Folder %(path)s contains no CSV, TSV, TXT or XLSX file.") % {"path": path})
        elif path.suffix.lower() in TABLE_SUFFIXES:
            directory, names = path.parent, [path.name]
        else:
            raise CommandError(
                gettext(
                    "%(path)s is not a CSV, TSV, TXT or XLSX file; pass such a file or the folder of the export "
                    "(unpack a ZIP file first)."
                )
                % {"path": path}
            )
        # The Maven importer reads every row of its four files in the import's transaction and
        # raises the same error on a row that the csv module cannot read. So the check need not
        # read the largest file, the deals, once more before it.
        table_files_check(directory, names, rows_check=source != "maven")
        if path.is_dir():
            import_files_check(source, directory, names)

    def importer_options(self, organization: Organization, options: dict) -> dict:
        """Return the importer's options: the date order and, for generic files, the column mapping."""
        importer_options = {"date_order": options["date_order"]}
        if options["source"] != "generic":
            return importer_options
        mapping = {}
        for item in options["map"]:
            field, separator, column = item.partition("=")
            if not separator or field not in GENERIC_FIELDS:
                raise CommandError(
                    gettext("--map %(item)s is invalid; use FIELD=COLUMN with FIELD one of: %(fields)s.")
                    % {"item": item, "fields": ", ".join(GENERIC_FIELDS)}
                )
            mapping[field] = column
        mapping = mapping or import_mapping_get(organization=organization, source="generic")
        missing = [field for field in REQUIRED_FIELDS if not mapping.get(field)]
        if missing:
            raise CommandError(
                gettext("The column mapping lacks the required field(s) %(fields)s; pass --map FIELD=COLUMN for each of them.")
                % {"fields": ", ".join(missing)}
            )
        importer_options["mapping"] = mapping
        return importer_options

    def organization_get(self, slug: str, *, create: bool, currency: str | None) -> Organization:
        """Return the organization with `slug`, creating it when `create` is set.

        A new organization is named after the slug ("acme-gmbh" → "Acme Gmbh"), has the
        base currency `currency` (default EUR) and the model's other defaults.
        """
        organization = Organization.objects.filter(slug=slug).first()
        if organization is not None:
            return organization
        if not create:
            raise CommandError(
                gettext("Organization %(slug)s not found; check the slug or pass --create to create it.")
                % {"slug": slug}
            )
        values = {"name": slug.replace("-", " ").replace("_", " ").title(), "slug": slug}
        if currency:
            values["currency"] = currency.upper()
        organization = Organization.objects.create(**values)
        self.stdout.write(gettext("Created organization %(name)s (%(slug)s).") % {"name": organization.name, "slug": slug})
        return organization

    def report(self, organization: Organization, result) -> None:
        """Print the rejected rows to stderr, and the per-entity counts and the new members to stdout."""
        for error in result.errors[:MAX_ERRORS_SHOWN]:
            self.stderr.write(str(dataclasses.replace(error, reason=command_message(error.reason))))
        hidden = len(result.errors) - MAX_ERRORS_SHOWN
        if hidden > 0:
            self.stderr.write(
                ngettext("… and %(count)s more rejected row.", "… and %(count)s more rejected rows.", hidden)
                % {"count": format_number(hidden)}
            )

        self.stdout.write(
            gettext("Imported %(path)s (%(source)s) into %(organization)s in %(seconds)s s.")
            % {
                "source": ImportSource(result.source).label,
                "path": result.path,
                "organization": organization.name,
                "seconds": format_fixed(result.duration_seconds, 1),
            }
        )
        headings = [
            gettext("created"),
            gettext("updated"),
            gettext("unchanged"),
            gettext("deleted"),
            gettext("rejected"),
        ]
        entities = list(result.counts)
        label_width = max(len(entity_label(entity)) for entity in entities) + 2
        widths = [max(len(heading), 7) + 2 for heading in headings]
        self.stdout.write(" " * label_width + "".join(heading.rjust(width) for heading, width in zip(headings, widths)))
        for entity in entities:
            counts = result.counts[entity]
            values = [counts.created, counts.updated, counts.unchanged, counts.deleted, counts.rejected]
            self.stdout.write(
                entity_label(entity).ljust(label_width)
                + "".join(format_number(value).rjust(width) for value, width in zip(values, widths))
            )
        self.report_people_created(result.people_created)

    def report_people_created(self, people: list) -> None:
        """Print the members created for people the files name, the first MAX_PEOPLE_SHOWN by name, so that no one is added unnoticed."""
        if not people:
            return
        self.stdout.write(
            ngettext(
                "The import added %(count)s new member with the role “Sales rep” for a person the files name:",
                "The import added %(count)s new members with the role “Sales rep” for people the files name:",
                len(people),
            )
            % {"count": format_number(len(people))}
        )
        for person in people_created_sorted(people)[:MAX_PEOPLE_SHOWN]:
            self.stdout.write(f"  {person.name or '–'} <{person.email}>: {person.account.label}")
        hidden = len(people) - MAX_PEOPLE_SHOWN
        if hidden > 0:
            self.stdout.write(
                "  "
                + ngettext("… and %(count)s more new member.", "… and %(count)s more new members.", hidden)
                % {"count": format_number(hidden)}
            )
