"""Web imports: storing uploads, the dry run, the import itself, progress and the rejected-rows report.

An ImportRun moves through uploaded → previewing → previewed → queued → running →
succeeded or failed. The dry run executes the real importer inside a transaction that
is rolled back, so its counts and preview rows are exactly what the import would
write. The import runs in one transaction, so a failure leaves the previous data as it
was and only the ImportRun records the error.
"""

import logging
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterable
from decimal import Decimal, DecimalException
from pathlib import Path, PurePath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy, gettext_noop
from kombu.exceptions import OperationalError as BrokerOperationalError

from pipelines.import_files import import_files_check, table_header
from pipelines.importers.base import (
    ImportSourceError,
    Message,
    PersonAccount,
    RowError,
    people_created_sorted,
    person_sort_key,
)
from pipelines.importers.formats import header_duplicates_check, table_stream
from pipelines.importers.upload_checks import (
    WORKBOOK_SUFFIXES,
    empty_file_error,
    file_has_data_rows,
    no_data_rows_error,
    table_file_check,
)
from pipelines.models import (
    Deal,
    DealStatus,
    ImportMapping,
    ImportRun,
    ImportRunStatus,
    ImportSource,
)
from pipelines.services import crm_import
from pipelines.upload_limits import upload_too_large_message, workbook_size_check
from spm.exports import INTEGER, Column, Table
from spm.models import AuditLog, Organization, User

logger = logging.getLogger(__name__)

ALLOWED_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".zip")
PREVIEW_ROWS = 10
# Created people kept on the run for its page; the summary's count includes the ones left out.
PEOPLE_CREATED_STORED = 200
# Seconds between two progress writes; the page polls every second.
PROGRESS_INTERVAL_SECONDS = 0.5
# Skipped file names listed in the error for a ZIP file without a table file.
SKIPPED_NAMES_SHOWN = 10


class ImportUploadError(Exception):
    """The upload cannot be stored: too large, an unsupported file type, a broken ZIP file, content that does not fit its file type, or no data rows."""


def import_directory(run: ImportRun) -> Path:
    return Path(settings.MEDIA_ROOT) / run.directory


def import_run_create(
    *,
    organization: Organization,
    source: str,
    files: Iterable[UploadedFile],
    actor: User | None,
    language: str,
    currency: str = "",
    date_order: str = "",
) -> ImportRun:
    """Store uploaded files under MEDIA_ROOT/imports/<organization id>/<random>/ and create their ImportRun.

    ZIP files are unpacked flat (folders inside are dropped), without the metadata files
    that macOS Finder adds. Each file and the sum of all, unpacked, may have at most
    IMPORT_MAX_UPLOAD_BYTES, and so may the unpacked parts of each XLSX workbook. Raises
    ImportUploadError and stores nothing when a limit is exceeded or a file type is not
    CSV, TXT, TSV, XLSX or ZIP, when two files get the same name (jan/deals.csv and
    feb/deals.csv in one ZIP), when a file's content does not fit its extension (a ZIP
    archive named .csv), when no file has a data row below its header, and when the
    importer of `source` would skip a file (see `import_files_check`). Writes an
    `import.uploaded` audit log entry.
    """
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    relative = Path("imports") / str(organization.pk) / uuid.uuid4().hex
    directory = Path(settings.MEDIA_ROOT) / relative
    directory.mkdir(parents=True, exist_ok=False)
    names = []
    # Files in ZIP archives that are no table file, named when nothing else is left to import.
    skipped: list[str] = []
    try:
        total = 0
        sources: dict[str, str] = {}
        for upload in files:
            name = _safe_name(upload.name)
            suffix = Path(name).suffix.lower()
            if suffix not in ALLOWED_SUFFIXES:
                raise ImportUploadError(
                    gettext("%(file)s is not a CSV, XLSX or ZIP file.") % {"file": name}
                )
            if upload.size > limit or total + upload.size > limit:
                raise ImportUploadError(upload_too_large_message(limit))
            total += upload.size
            if suffix == ".zip":
                total = _zip_extract(upload, directory, names, sources, total, limit, skipped)
                continue
            _name_claim(sources, name, upload.name)
            with open(directory / name, "wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            names.append(name)
        if not names:
            raise ImportUploadError(_no_file_message(skipped))
        table_files_check(directory, names)
        import_files_check(source, directory, names)
    except (ImportUploadError, ImportSourceError, zipfile.BadZipFile) as error:
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(error, zipfile.BadZipFile):
            raise ImportUploadError(gettext("The ZIP file is damaged and cannot be opened.")) from None
        if isinstance(error, ImportSourceError):
            raise ImportUploadError(str(error)) from None
        raise
    except BaseException:
        # No run refers to the folder, so nothing would ever delete it.
        shutil.rmtree(directory, ignore_errors=True)
        raise

    with transaction.atomic():
        run = ImportRun.objects.create(
            organization=organization,
            source=source,
            created_by=actor,
            language=language,
            directory=str(relative),
            file_names=sorted(names),
            currency=currency.upper(),
            date_order=date_order,
        )
        AuditLog.objects.create(
            organization=organization,
            actor=actor,
            action="import.uploaded",
            object_type="import_run",
            object_id=str(run.pk),
            after={"source": source, "files": run.file_names},
        )
    logger.info("Import uploaded organization_id=%s import_run_id=%s files=%s", organization.pk, run.pk, len(names))
    return run


def table_files_check(directory: Path, names: list[str], *, rows_check: bool = True) -> None:
    """Raise ImportSourceError when a table file is empty, does not match its extension or cannot be decoded, or when no file has a data row.

    A workbook whose parts unpack to more than IMPORT_MAX_UPLOAD_BYTES fails too. The web
    upload and `import_crm` run the same checks.

    A header row that names a column twice fails too, so that a generic file does not reach
    the column mapping page, which cannot map such a header.

    A single file without data rows may belong to an export of several files (a Pipedrive
    change log without activities), so only an upload whose files all lack them fails.
    With `rows_check` false, a CSV row that the csv module cannot read is left to the
    importer, which raises the same error when it reads the rows (formats.table_stream).
    """
    for name in names:
        path = directory / name
        if path.stat().st_size == 0:
            raise empty_file_error(name)
        table_file_check(path)
        if path.suffix.lower() in WORKBOOK_SUFFIXES:
            workbook_size_check(path, name)
            # NOTE: this checks the sheet that table_header picks without required columns, the
            # first one with a header. An importer that looks for its columns may read another sheet.
            header_duplicates_check(table_header(path), name)
        else:
            # The importer reads the file the same way, so a file that cannot be decoded or whose
            # header row cannot be read or names a column twice fails here and not in the run.
            table_stream(path, rows_check=rows_check)
    if any(file_has_data_rows(directory / name) for name in names):
        return
    if len(names) == 1:
        raise no_data_rows_error(names[0])
    raise ImportSourceError(
        gettext("None of the files %(files)s has data rows below its header row.") % {"files": ", ".join(sorted(names))}
    )


def _safe_name(name: str) -> str:
    """Return the file's base name with only letters, digits, dot, dash and underscore."""
    base = PurePath(name.replace("\\", "/")).name
    cleaned = "".join(character if character.isalnum() or character in "._-" else "_" for character in base)
    return cleaned.lstrip(".")[:120] or "upload"


def _name_claim(sources: dict[str, str], name: str, source: str) -> None:
    """Record that stored file `name` comes from upload path `source`; raise ImportUploadError if another path has it.

    Importers find their files by name or take the first file of a kind, so a second file
    of the same name would replace the first one without notice.
    """
    if name in sources:
        raise ImportUploadError(
            gettext(
                "The upload contains two files named %(name)s: %(first)s and %(second)s. An import reads only one "
                "file of a name; upload the files one after the other."
            )
            % {"name": name, "first": sources[name], "second": source}
        )
    sources[name] = source


def _is_mac_metadata(member_path: str) -> bool:
    """Return True for files that macOS Finder adds to a ZIP: the __MACOSX/ folder, AppleDouble ._* files and .DS_Store."""
    parts = PurePath(member_path.replace("\\", "/")).parts
    if "__MACOSX" in parts:
        return True
    base = parts[-1] if parts else ""
    return base.startswith("._") or base == ".DS_Store"


# Compression methods that Python's zipfile reads.
ZIP_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# Names of other methods that archivers write; 99 marks a WinZip AES-encrypted member.
ZIP_METHOD_NAMES = {9: "Deflate64", 10: "PKWARE DCL Implode", 93: "Zstandard", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd"}
ZIP_AES_METHOD = 99
# Bit 0 of a member's general purpose flags marks it as encrypted with a password.
ZIP_ENCRYPTED_FLAG = 0x1


def _zip_extract(
    upload: UploadedFile,
    directory: Path,
    names: list[str],
    sources: dict[str, str],
    total: int,
    limit: int,
    skipped: list[str],
) -> int:
    """Unpack the table files of a ZIP into `directory`; returns the new byte total. Counts unpacked sizes.

    Skips macOS metadata before the name is sanitized, which would drop its folder and leading dot.
    Other files that are no table file (nested ZIP files too) are appended to `skipped`. Raises
    ImportUploadError for a table file that is password-protected or uses a compression method
    that zipfile cannot read.
    """
    with zipfile.ZipFile(upload) as archive:
        for member in archive.infolist():
            if member.is_dir() or _is_mac_metadata(member.filename):
                continue
            name = _safe_name(member.filename)
            if Path(name).suffix.lower() not in ALLOWED_SUFFIXES[:-1]:
                skipped.append(member.filename)
                continue
            _zip_member_check(upload.name, member)
            _name_claim(sources, name, f"{upload.name}/{member.filename}")
            total += member.file_size
            if total > limit:
                raise ImportUploadError(upload_too_large_message(limit))
            with archive.open(member) as source, open(directory / name, "wb") as target:
                # Copy with a running count: the header's file_size may understate a crafted archive.
                written = 0
                while chunk := source.read(1024 * 1024):
                    written += len(chunk)
                    if written > member.file_size or total - member.file_size + written > limit:
                        raise ImportUploadError(upload_too_large_message(limit))
                    target.write(chunk)
            names.append(name)
    return total


def _zip_member_check(archive_name: str, member: zipfile.ZipInfo) -> None:
    """Raise ImportUploadError when zipfile cannot unpack `member`: it has a password or an unreadable compression method."""
    params = {"file": member.filename, "zip": archive_name}
    if member.flag_bits & ZIP_ENCRYPTED_FLAG or member.compress_type == ZIP_AES_METHOD:
        raise ImportUploadError(
            gettext(
                "%(file)s in %(zip)s is password-protected, so SPM cannot read it. Pack the files again without "
                "a password and upload the new ZIP file."
            )
            % params
        )
    if member.compress_type not in ZIP_READABLE_METHODS:
        method = ZIP_METHOD_NAMES.get(member.compress_type) or gettext("method %(number)s") % {
            "number": member.compress_type
        }
        raise ImportUploadError(
            gettext(
                "%(file)s in %(zip)s uses a compression method that SPM cannot read (%(method)s). Pack the files "
                "again with standard ZIP compression (Deflate) and upload the new ZIP file."
            )
            % {**params, "method": method}
        )


def _no_file_message(skipped: list[str]) -> str:
    """Return the error for an upload without a table file, naming the files skipped in its ZIP files."""
    if not skipped:
        return gettext("The upload contains no file to import.")
    shown = ", ".join(skipped[:SKIPPED_NAMES_SHOWN])
    if len(skipped) > SKIPPED_NAMES_SHOWN:
        shown += ", " + gettext("and %(count)s more") % {"count": len(skipped) - SKIPPED_NAMES_SHOWN}
    return gettext(
        "The upload contains no file to import. Skipped: %(files)s. SPM imports CSV, TSV, TXT, XLSX and XLSM "
        "files; it does not unpack a ZIP file inside a ZIP file."
    ) % {"files": shown}


def import_mapping_save(*, organization: Organization, source: str, columns: dict[str, str], actor: User | None) -> ImportMapping:
    """Save the organization's column mapping for `source`, so the next upload starts from it."""
    mapping, _created = ImportMapping.objects.update_or_create(
        organization=organization, source=source, defaults={"columns": columns, "updated_by": actor}
    )
    return mapping


def import_mapping_get(*, organization: Organization, source: str) -> dict[str, str]:
    mapping = ImportMapping.objects.filter(organization=organization, source=source).first()
    return dict(mapping.columns) if mapping else {}


def import_run_enqueue(*, run: ImportRun, dry_run: bool, actor: User | None) -> ImportRun:
    """Mark the run as checking (dry run) or queued, and start its task after commit.

    Returns without change when the run is already busy or finished: a double-clicked
    button must not import twice.
    """
    from pipelines.tasks import import_run_execute

    allowed = (
        (ImportRunStatus.UPLOADED, ImportRunStatus.PREVIEWED, ImportRunStatus.FAILED)
        if dry_run
        else (ImportRunStatus.PREVIEWED,)
    )
    status = ImportRunStatus.PREVIEWING if dry_run else ImportRunStatus.QUEUED
    with transaction.atomic():
        # The task id is cleared, so that the task claims the run (pipelines.tasks.import_run_execute).
        updated = ImportRun.objects.filter(pk=run.pk, status__in=allowed).update(
            status=status, task_id="", progress_done=0, progress_total=0, message="", message_data={}
        )
        # Already running, or imported: nothing to start.
        if not updated:
            run.refresh_from_db()
            return run
        if not dry_run:
            AuditLog.objects.create(
                organization_id=run.organization_id,
                actor=actor,
                action="import.started",
                object_type="import_run",
                object_id=str(run.pk),
                after={"source": run.source},
            )
        organization_id, run_id, previous_status = run.organization_id, run.pk, run.status

        def task_send() -> None:
            try:
                import_run_execute.delay(organization_id=organization_id, import_run_id=run_id, dry_run=dry_run)
            except BrokerOperationalError:
                # Nothing was queued: put the run back, so the admin can start it again later.
                ImportRun.objects.filter(pk=run_id, status=status).update(status=previous_status)
                logger.warning(
                    "Import task not queued, broker unreachable organization_id=%s import_run_id=%s", organization_id, run_id
                )
                raise

        transaction.on_commit(task_send)
    run.refresh_from_db()
    return run


class ProgressWriter:
    """Writes progress to the ImportRun row at most every PROGRESS_INTERVAL_SECONDS, outside the import's transaction."""

    def __init__(self, run: ImportRun):
        self.run_id = run.pk
        self.alias = settings.IMPORT_PROGRESS_DATABASE or "default"
        self.last_write = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last_write < PROGRESS_INTERVAL_SECONDS and done < total:
            return
        self.last_write = now
        ImportRun.objects.using(self.alias).filter(pk=self.run_id).update(progress_done=done, progress_total=total)


def import_run_execute(*, run: ImportRun, dry_run: bool) -> ImportRun:
    """Run the dry run or the import of `run` and store its outcome on the row; never raises for import errors.

    The dry run rolls back everything the importer wrote, including users, the audit
    entry and the KPI recompute it schedules. The import commits in one transaction, or
    on any error rolls back completely; the run then records the failure and its message
    and an `import.failed` audit log entry is written. An error in the work that the
    import schedules for after its commit (KPI recompute, statistics, webhooks) cannot
    undo the import, so the run succeeds with a warning and the error is logged.
    """
    organization = run.organization
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRunStatus.PREVIEWING if dry_run else ImportRunStatus.RUNNING, started_at=timezone.now()
    )
    logger.info("Import run started organization_id=%s import_run_id=%s dry_run=%s", organization.pk, run.pk, dry_run)
    options = dict(run.options)
    if run.date_order:
        options["date_order"] = run.date_order

    committed = False

    def commit_note() -> None:
        nonlocal committed
        committed = True

    warning = None
    with translation.override(run.language or organization.language):
        try:
            with transaction.atomic():
                # Registered first, so it runs before the work that the import schedules for after its commit.
                transaction.on_commit(commit_note)
                result = crm_import(
                    organization=organization,
                    source=run.source,
                    path=import_directory(run),
                    currency=run.currency or None,
                    actor=run.created_by,
                    options=options,
                    progress=ProgressWriter(run),
                )
                preview = _preview_rows(organization, run.source, result.deal_keys[:PREVIEW_ROWS])
                if dry_run:
                    transaction.set_rollback(True)
        except Exception as error:  # noqa: BLE001 - any failure must end the run, not leave it running
            if not committed:
                return _import_run_fail(run, _failure_message(run, error), dry_run)
            # Django runs the on_commit callbacks after the commit and passes their errors on,
            # and with CELERY_TASK_ALWAYS_EAGER the KPI recompute runs inside such a callback.
            # NOTE: Django skips the callbacks registered after the one that raised.
            logger.exception(
                "Work after the import's commit failed organization_id=%s import_run_id=%s", organization.pk, run.pk
            )
            warning = Message(
                gettext_noop(
                    "The data was imported, but updating the figures afterwards failed, so dashboards and reports "
                    "may still show the figures from before the import. The error is logged with import run %(run)s; "
                    "please tell your operator this number."
                ),
                {"run": run.pk},
            )

    # Reasons are stored as message ids, so the page and the report show them in the reader's language.
    rejected = [error.as_json() for error in result.errors]
    summary = {
        **result.as_dict(),
        "people_created_count": len(result.people_created),
        # Sorted before the cut, so the page lists the first people by name, as import_crm prints them.
        "people_created": [person.as_json() for person in people_created_sorted(result.people_created)[:PEOPLE_CREATED_STORED]],
    }
    status = ImportRunStatus.PREVIEWED if dry_run else ImportRunStatus.SUCCEEDED
    ImportRun.objects.filter(pk=run.pk).update(
        status=status,
        summary=summary,
        preview=preview,
        rejected_rows=rejected,
        finished_at=timezone.now(),
        **_message_fields(warning, run),
    )
    logger.info(
        "Import run finished organization_id=%s import_run_id=%s dry_run=%s rejected_rows=%s seconds=%.2f",
        organization.pk,
        run.pk,
        dry_run,
        len(rejected),
        result.duration_seconds,
    )
    run.refresh_from_db()
    return run


def _failure_message(run: ImportRun, error: Exception) -> Message:
    """Return the message that a failed run shows for `error`; logs errors that have no message for users.

    A Python exception's text is for the operator, so users get a general message with the
    run's id, which the log line carries too.
    """
    if isinstance(error, ImportSourceError):
        return error.message
    if isinstance(error, DecimalException):
        # A decimal error's text is Python's signal list ("[<class 'decimal.InvalidOperation'>]"), so
        # the run gets a message about the numbers instead. One cause: the preview reading back, on
        # SQLite, an amount that rounds up to 17 digits before the point.
        logger.exception(
            "Import run failed on a decimal value organization_id=%s import_run_id=%s", run.organization_id, run.pk
        )
        return Message(
            gettext_noop(
                "The import failed and changed nothing: a number in the files could not be calculated or stored "
                "exactly. Amounts can be at most 9,999,999,999,999.99, also after conversion to the base currency."
            )
        )
    logger.exception("Import run failed organization_id=%s import_run_id=%s", run.organization_id, run.pk)
    return Message(
        gettext_noop(
            "The import failed because of an unexpected error and changed nothing. The error is logged with "
            "import run %(run)s; please tell your operator this number."
        ),
        {"run": run.pk},
    )


def _message_fields(message: Message | None, run: ImportRun) -> dict:
    """Return the run's `message` (text in the run's language) and `message_data` (shown in the reader's language)."""
    if message is None:
        return {"message": "", "message_data": {}}
    with translation.override(run.language or run.organization.language):
        text = str(message)
    return {"message": text, "message_data": {} if message.is_literal else message.as_json()}


def import_run_message(run: ImportRun) -> str:
    """Return the run's failure or warning message in the active language; older runs show their stored text."""
    if run.message_data:
        return str(Message.from_json(run.message_data))
    return run.message


def _import_run_fail(run: ImportRun, message: Message, dry_run: bool) -> ImportRun:
    fields = _message_fields(message, run)
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRunStatus.FAILED, finished_at=timezone.now(), **fields)
    AuditLog.objects.create(
        organization_id=run.organization_id,
        actor=run.created_by,
        action="import.failed",
        object_type="import_run",
        object_id=str(run.pk),
        after={"source": run.source, "dry_run": dry_run, "message": fields["message"][:2000]},
    )
    logger.warning("Import run failed organization_id=%s import_run_id=%s dry_run=%s", run.organization_id, run.pk, dry_run)
    run.refresh_from_db()
    return run


def _preview_rows(organization: Organization, source: str, keys: list[str]) -> list[dict]:
    """Return the deals `keys` as stored, as JSON-ready dicts in the order of `keys`."""
    deals = {
        deal.external_id: deal
        for deal in Deal.all_objects.filter(organization=organization, source=source, external_id__in=keys).select_related(
            "owner__user", "stage"
        )
    }
    rows = []
    for key in keys:
        deal = deals.get(key)
        if deal is None:
            continue
        rows.append(
            {
                "external_id": deal.external_id,
                "name": deal.name,
                "owner": deal.owner.display_name,
                "stage": deal.stage.name,
                "status": deal.status,
                "amount": None if deal.amount is None else str(deal.amount),
                "currency": deal.currency,
                "base_amount": None if deal.base_amount is None else str(deal.base_amount),
                "created_at": deal.created_at.isoformat(),
                "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
            }
        )
    return rows


def preview_rows_for_display(run: ImportRun) -> list[dict]:
    """Return the run's preview rows with amounts as Decimal and times as datetimes, for the money and date filters."""
    import datetime as dt

    rows = []
    for row in run.preview:
        display_row = dict(row)
        for key in ("amount", "base_amount"):
            display_row[key] = Decimal(row[key]) if row.get(key) is not None else None
        for key in ("created_at", "closed_at"):
            display_row[key] = dt.datetime.fromisoformat(row[key]) if row.get(key) else None
        # The preview stores the status code; show its label in the active language.
        display_row["status"] = DealStatus(row["status"]).label if row.get("status") in DealStatus.values else row.get("status")
        rows.append(display_row)
    return rows


def import_rejected_rows(run: ImportRun, *, limit: int | None = None) -> list[RowError]:
    """Return the run's rejected rows, the first `limit` of them when given.

    Their column and reason render in the active language. Runs that an older version stored
    hold translated text, which renders as it was stored.
    """
    rows = run.rejected_rows if limit is None else run.rejected_rows[:limit]
    return [RowError.from_json(row) for row in rows]


# Rows of the counts table, deals first: they are what an import is for, and the entities
# after them are what the deals refer to. A stored summary is JSON, which PostgreSQL's
# jsonb returns with its keys in another order.
COUNT_ROWS = (
    ("deals", gettext_lazy("Deals")),
    ("stage_changes", gettext_lazy("Stage changes")),
    ("activities", gettext_lazy("Activities")),
    ("people", gettext_lazy("People")),
    ("teams", gettext_lazy("Teams")),
    ("territories", gettext_lazy("Territories")),
    ("accounts", gettext_lazy("Accounts")),
    ("products", gettext_lazy("Products")),
)


def import_count_rows(run: ImportRun) -> list[dict]:
    """Return the rows of the run's counts table in the order of COUNT_ROWS: entity, label and its counts.

    An entity that COUNT_ROWS does not list follows in alphabetical order, labeled with its key.
    """
    counts = (run.summary or {}).get("counts", {})
    labels = dict(COUNT_ROWS)
    known = [entity for entity, _label in COUNT_ROWS if entity in counts]
    others = sorted(entity for entity in counts if entity not in labels)
    return [{"entity": entity, "label": labels.get(entity, entity), "numbers": counts[entity]} for entity in known + others]


def import_people_created(run: ImportRun) -> list[dict[str, str]]:
    """Return the stored people the run created (or its dry run would create) by name, with the account label translated."""
    people = []
    stored = (run.summary or {}).get("people_created", [])
    # Runs stored before the summary was sorted hold the people in file order.
    for person in sorted(stored, key=lambda person: person_sort_key(person.get("name", ""), person.get("email", ""))):
        account = person.get("account", "")
        label = PersonAccount(account).label if account in PersonAccount.values else account
        people.append({**person, "account_label": label})
    return people


def import_rejected_table(run: ImportRun) -> Table:
    """Return the run's rejected rows as a download table; see `rejected_rows_table`."""
    # The translated file name carries ".csv"; csv_response adds the suffix itself.
    name = (gettext("rejected-rows-%(id)s.csv") % {"id": run.pk}).removesuffix(".csv")
    return rejected_rows_table(import_rejected_rows(run), name=name)


def rejected_rows_table(errors: Iterable[RowError], *, name: str) -> Table:
    """Return rejected rows as a download table: file, line, column, value, reason, headed in the active language.

    The column and the reason are in the active language too (see `import_rejected_rows`).
    spm.exports prefixes cells a spreadsheet would run as formulas with `'`.
    """
    columns = [
        Column(gettext("File")),
        Column(gettext("Line"), INTEGER),
        Column(gettext("Column")),
        Column(gettext("Value")),
        Column(gettext("Reason")),
    ]
    rows = [[error.file_name, error.line, str(error.column), error.value, str(error.reason)] for error in errors]
    return Table(name=name, columns=columns, rows=rows)


def source_needs_mapping(source: str) -> bool:
    return source == ImportSource.GENERIC
