"""Size limits of uploaded table files, shared by the CRM imports and the quota and people uploads.

IMPORT_MAX_UPLOAD_BYTES bounds a file as sent and, because an XLSX workbook is a ZIP
archive whose XML parts openpyxl unpacks, also the unpacked size of a workbook. A small
workbook can otherwise unpack to gigabytes of shared strings held in memory.
"""

import zipfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext

from pipelines.importers.base import ImportSourceError


def upload_too_large_message(limit: int) -> str:
    """Return the message for an upload of several files whose sizes add up to more than `limit` bytes."""
    return gettext("The upload is larger than %(size)d MB; split the export or ask for a higher limit.") % {
        "size": limit // (1024 * 1024)
    }


def file_size_check(file_name: str, size: int) -> None:
    """Raise ImportSourceError naming both sizes when `size` bytes exceed IMPORT_MAX_UPLOAD_BYTES."""
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if size > limit:
        raise ImportSourceError(
            gettext(
                "File %(file)s is %(size)s, more than the upload limit of %(limit)s. "
                "Split it into smaller files or ask your administrator for a higher limit."
            )
            % {"file": file_name, "size": filesizeformat(size), "limit": filesizeformat(limit)}
        )


def workbook_unpacked_size(workbook: Path | BinaryIO) -> int | None:
    """Return the sum of the unpacked sizes of an XLSX workbook's parts, or None when it is no ZIP archive.

    The sizes come from the archive's central directory. openpyxl reads with Python's
    zipfile, which stops a part at its stated size (3.11, ZipExtFile._read1). A part
    that understates its size therefore fails its CRC check instead of unpacking further.
    """
    try:
        with zipfile.ZipFile(workbook) as archive:
            return sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        return None


def workbook_size_check(workbook: Path | BinaryIO, file_name: str) -> None:
    """Raise ImportSourceError naming both sizes when the workbook unpacks to more than IMPORT_MAX_UPLOAD_BYTES.

    A file that is no ZIP archive passes, because opening it as a workbook fails later
    with a message of its own.
    """
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    size = workbook_unpacked_size(workbook)
    if size is not None and size > limit:
        raise ImportSourceError(
            gettext(
                "File %(file)s unpacks to %(size)s, more than the upload limit of %(limit)s. "
                "Split it into smaller files or ask your administrator for a higher limit."
            )
            % {"file": file_name, "size": filesizeformat(size), "limit": filesizeformat(limit)}
        )
