"""Shared parts of `import_people` and `import_quotas`: find the organization, print the result."""

from pathlib import Path

from django.core.management.base import CommandError
from django.utils.translation import gettext, ngettext

from dashboards.templatetags.spm_format import format_number
from spm.models import Organization

# Rejected rows printed in full; the rest are only counted.
MAX_ERRORS_SHOWN = 50


def organization_get(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(
            gettext("Organization %(slug)s not found; check --org against the slug in the URL /o/<slug>/.")
            % {"slug": slug}
        )
    return organization


def file_read(path: Path) -> bytes:
    if not path.is_file():
        raise CommandError(gettext("File %(path)s not found; give the path of a CSV or XLSX file.") % {"path": path})
    return path.read_bytes()


def result_print(command, result) -> None:
    command.stdout.write(
        gettext("created %(created)s, updated %(updated)s, unchanged %(unchanged)s, rejected %(rejected)s")
        % {
            "created": format_number(result.created),
            "updated": format_number(result.updated),
            "unchanged": format_number(result.unchanged),
            "rejected": format_number(result.rejected),
        }
    )
    for error in result.errors[:MAX_ERRORS_SHOWN]:
        command.stderr.write(str(error))
    if result.rejected > MAX_ERRORS_SHOWN:
        hidden = result.rejected - MAX_ERRORS_SHOWN
        command.stderr.write(
            ngettext("… and %(count)s more rejected row.", "… and %(count)s more rejected rows.", hidden)
            % {"count": format_number(hidden)}
        )
