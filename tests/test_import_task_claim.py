"""The import task claims its run before it imports, so a second delivery or another task imports nothing.

The tasks run eagerly with a chosen task id (`apply(task_id=...)`). The advisory-lock
case needs PostgreSQL. tests/test_faults.py sends an import twice to a real worker.
"""

import psycopg
import pytest
from django.db import connection
from django_scopes import scopes_disabled

from pipelines.models import ImportRun, ImportRunStatus
from pipelines.tasks import _IMPORT_LOCK_KEY_BASE, import_run_execute
from tests.test_faults import IMPORT_FIRST, deal_amounts, import_run_prepared


@pytest.fixture
def media(settings, tmp_path):
    """Store uploads under tmp_path and write import progress through the test's own connection."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_PROGRESS_DATABASE = ""


def run_task(run: ImportRun, task_id: str, *, dry_run: bool = False) -> str:
    arguments = {"organization_id": run.organization_id, "import_run_id": run.pk, "dry_run": dry_run}
    # apply() runs the task in this process. The real worker tests of the suite leave Celery's
    # "inside a worker" flag set here, and get() would then raise; the eager result needs no wait.
    return import_run_execute.apply(kwargs=arguments, task_id=task_id).get(disable_sync_subtasks=False)


def stored(run: ImportRun) -> tuple[str, str]:
    with scopes_disabled():
        run.refresh_from_db(fields=["status", "task_id"])
    return run.status, run.task_id


def test_queued_run_claimed_and_imported(org, admin_member, media):
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.QUEUED)

    status = run_task(run, "task-a")

    assert status == ImportRunStatus.SUCCEEDED
    assert stored(run) == (ImportRunStatus.SUCCEEDED, "task-a")
    assert len(deal_amounts(org)) == 2


def test_running_run_of_other_task_skipped(org, admin_member, media):
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.RUNNING)
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(task_id="task-a")

    status = run_task(run, "task-b")

    assert status == ImportRunStatus.RUNNING
    assert stored(run) == (ImportRunStatus.RUNNING, "task-a")
    assert deal_amounts(org) == {}


def test_running_run_redelivered_to_same_task(org, admin_member, media):
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.RUNNING)
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(task_id="task-a")

    status = run_task(run, "task-a")

    assert status == ImportRunStatus.SUCCEEDED
    assert stored(run) == (ImportRunStatus.SUCCEEDED, "task-a")
    assert len(deal_amounts(org)) == 2


def test_finished_run_not_imported_again(org, admin_member, media):
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.QUEUED)
    run_task(run, "task-a")
    with scopes_disabled():
        run.refresh_from_db()
    finished_at = run.finished_at

    status = run_task(run, "task-a")

    with scopes_disabled():
        run.refresh_from_db()
    assert status == ImportRunStatus.SUCCEEDED
    assert run.finished_at == finished_at


def test_dry_run_claimed_by_first_task_only(org, admin_member, media):
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.PREVIEWING)
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(task_id="task-a")

    status = run_task(run, "task-b", dry_run=True)

    assert status == ImportRunStatus.PREVIEWING
    assert stored(run) == (ImportRunStatus.PREVIEWING, "task-a")


def test_dry_run_unclaimed_previewed(org, admin_member, media):
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.PREVIEWING)

    status = run_task(run, "task-a", dry_run=True)

    assert status == ImportRunStatus.PREVIEWED
    assert stored(run) == (ImportRunStatus.PREVIEWED, "task-a")
    assert deal_amounts(org) == {}


def test_enqueue_clears_previous_task_id(org, admin_member, media):
    from pipelines.services_imports import import_run_enqueue

    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.PREVIEWED)
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(task_id="dry-run-task")

    with scopes_disabled():
        import_run_enqueue(run=run, dry_run=False, actor=admin_member.user)

    assert stored(run) == (ImportRunStatus.QUEUED, "")


@pytest.mark.django_db(transaction=True)
def test_delivery_while_another_runs_skipped(org, admin_member, media):
    if connection.vendor != "postgresql":
        pytest.skip("the run lock is a PostgreSQL advisory lock")
    run = import_run_prepared(org, admin_member, IMPORT_FIRST, ImportRunStatus.RUNNING)
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(task_id="task-a")
    settings_dict = connection.settings_dict
    # Another session holds the run's lock, as the first delivery's worker does while it imports.
    with psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        dbname=settings_dict["NAME"],
        autocommit=True,
    ) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [_IMPORT_LOCK_KEY_BASE + run.pk])
        status = run_task(run, "task-a")

    assert status == ImportRunStatus.RUNNING
    assert stored(run) == (ImportRunStatus.RUNNING, "task-a")
    assert deal_amounts(org) == {}
