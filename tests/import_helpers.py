"""Helpers shared by the CRM import tests: export folders, service runs, the import pages of Acme.

The page helpers post as the client they are given. Tests that use them request the
`import_storage` fixture, so that uploads land below their tmp_path.
"""

import datetime as dt
from pathlib import Path
from unittest import mock

from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scope, scopes_disabled

from pipelines.models import ImportRun, Pipeline, Stage
from pipelines.services import crm_import
from pipelines.services_records import records_import

# The day file imports run on, so that rules relative to today give the same result every day.
TODAY = dt.date(2025, 4, 1)
IMPORTS_URL = "/o/acme/imports/"


def export_folder(folder: Path, files: dict[str, str]) -> Path:
    """Write `files` (name to text) as UTF-8 into `folder`, creating it if needed, and return `folder`."""
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run_file_import(org, source: str, folder: Path, **options):
    """Import the export in `folder` into `org` on TODAY, passing `options` to `crm_import` unchanged."""
    with scope(organization=org):
        return crm_import(organization=org, source=source, path=folder, today=TODAY, **options)


def run_records(org, **records):
    """Import `records` (entity to list of records) as the API does, without scheduling a KPI recomputation."""
    with mock.patch("pipelines.services_records.kpi_recompute_schedule"), scope(organization=org):
        return records_import(organization=org, source="api", label="test", **records)


def stage_rows(org) -> list[tuple[str, str, int, str]]:
    """Return (pipeline, stage, order, kind) of every stage of `org`, by pipeline name and order."""
    with scopes_disabled():
        return list(
            Stage.objects.filter(organization=org).order_by("pipeline__name", "order").values_list("pipeline__name", "name", "order", "kind")
        )


def pipeline_names(org) -> list[str]:
    with scopes_disabled():
        return sorted(Pipeline.objects.filter(organization=org).values_list("name", flat=True))


def import_upload(client, source: str, files: dict[str, bytes], **headers):
    """Post `files` (name to content) to the import page as one upload and return the response."""
    uploads = [SimpleUploadedFile(name, content) for name, content in files.items()]
    return client.post(IMPORTS_URL, {"source": source, "files": uploads}, **headers)


def only_import_run(org) -> ImportRun:
    """Return the only import run of `org`, and raise if there is none or more than one."""
    with scope(organization=org):
        return ImportRun.objects.get()


def uploaded_dry_run(org, client, capture_on_commit, source: str, files: dict[str, bytes], **headers) -> ImportRun:
    """Upload `files` of a format that needs no mapping and return the run after its dry run.

    `capture_on_commit` is the test's `django_capture_on_commit_callbacks` fixture, which runs
    the dry-run task that the upload schedules for after its commit.
    """
    with capture_on_commit(execute=True):
        import_upload(client, source, files, **headers)
    return only_import_run(org)


def mapped_dry_run(org, client, capture_on_commit, text: str, mapping: dict[str, str]) -> ImportRun:
    """Upload `text` as the generic deals.csv, post `mapping` and return the run after its dry run."""
    import_upload(client, "generic", {"deals.csv": text.encode()})
    run = only_import_run(org)
    with capture_on_commit(execute=True):
        client.post(f"{IMPORTS_URL}{run.pk}/mapping/", mapping)
    run.refresh_from_db()
    return run


def import_start(client, capture_on_commit, run: ImportRun) -> None:
    """Start the import of the dry-run `run`, let it run, and refresh `run`."""
    with capture_on_commit(execute=True):
        client.post(f"{IMPORTS_URL}{run.pk}/", {"action": "start"})
    run.refresh_from_db()
