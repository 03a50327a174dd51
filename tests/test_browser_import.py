"""The admin import in a real browser: upload the Enpal Pipedrive export, check, import; live progress polling.

Celery runs eagerly here, so the dry run and the import finish inside the POST that
starts them and the page shows 100 % at once. The polling test therefore sets a run's
progress in the database while the page is open and watches the bar follow it.
"""

import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled

from pipelines.models import Deal, DealStageChange, ImportRun, ImportRunStatus
from tests.test_browser import browser_page  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.browser

ENPAL = Path(__file__).resolve().parent.parent / "demo" / "data" / "enpal-pipedrive"
ADMIN_PASSWORD = "correct-horse-battery"  # set by tests.factories.UserFactory
IMPORT_TIMEOUT_MS = 180_000


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_PROGRESS_DATABASE = ""


def in_plain_thread(function):
    """Run a database query in a thread without Playwright's event loop, close its connection, return the result.

    Queries from the test thread while Playwright runs would open a connection the test
    database teardown does not know about, so dropping the test database would fail.
    """

    errors = []
    results = []

    def target():
        try:
            with scopes_disabled():
                results.append(function())
        except Exception as error:  # noqa: BLE001 - re-raised in the test thread below
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def log_in(page, live_server, next_path):
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(ADMIN_PASSWORD)
    page.locator("main form[method=post] button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}{next_path}")


def test_enpal_upload_check_and_import(org, admin_member, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    log_in(page, live_server, "/o/acme/imports/")
    page.select_option("select[name=source]", "pipedrive")
    page.set_input_files("input[name=files]", sorted(str(path) for path in ENPAL.glob("*.csv")))
    page.locator("form[data-import-upload] button[type=submit]").click()

    status = page.locator("#import-status")
    expect(status).to_have_attribute("data-status", "previewed", timeout=IMPORT_TIMEOUT_MS)
    expect(page.locator('[data-import-counts] tr[data-entity="deals"] [data-created]')).to_have_text("1.995")
    assert in_plain_thread(Deal.objects.count) == 0

    started = time.monotonic()
    # The eager import and its KPI recompute finish inside the POST, and the click waits for its response.
    page.locator("[data-start-import]").click(timeout=IMPORT_TIMEOUT_MS)
    expect(status).to_have_attribute("data-status", "succeeded", timeout=IMPORT_TIMEOUT_MS)
    seconds = time.monotonic() - started
    print(f"Enpal Pipedrive import through the web UI took {seconds:.1f} s")

    # A finished run shows its counts instead of a progress bar.
    expect(page.locator("progress.import-progress")).to_have_count(0)
    expect(page.locator('[data-import-counts] tr[data-entity="stage_changes"] [data-created]')).to_have_text("8.906")
    expect(page.locator("[data-rejected-download]")).to_be_visible()
    assert in_plain_thread(Deal.objects.count) == 1995
    assert in_plain_thread(DealStageChange.objects.count) == 8906


@pytest.fixture
def running_import(org):
    """An import run at 400 of 1,000 rows; created before `browser_page` starts Playwright's loop."""
    with scope(organization=org):
        return ImportRun.objects.create(
            organization=org,
            source="pipedrive",
            language="de",
            directory="imports/none",
            status=ImportRunStatus.RUNNING,
            progress_done=400,
            progress_total=1000,
        )


def test_progress_bar_follows_the_run(org, admin_member, running_import, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    run = running_import
    page = browser_page
    log_in(page, live_server, f"/o/acme/imports/{run.pk}/")
    bar = page.locator("progress.import-progress")
    expect(bar).to_have_attribute("value", "40")
    # A full page load would drop this marker; htmx swaps keep it.
    page.evaluate("window.spmNoReloadMarker = true")

    in_plain_thread(lambda: ImportRun.objects.filter(pk=run.pk).update(progress_done=750))
    expect(bar).to_have_attribute("value", "75")

    in_plain_thread(
        lambda: ImportRun.objects.filter(pk=run.pk).update(status=ImportRunStatus.SUCCEEDED, progress_done=1000)
    )
    status = page.locator("#import-status")
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(bar).to_have_count(0)
    # The finished section no longer polls.
    assert status.get_attribute("hx-trigger") is None
    assert page.evaluate("window.spmNoReloadMarker === true")

    page.reload()
    expect(page.locator("#import-status")).to_have_attribute("data-status", "succeeded")
