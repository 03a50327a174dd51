"""A KPI recompute that cannot be queued after its change committed: the change stays, the recompute waits.

The broker outage is simulated by making `apply_async` of the recompute tasks raise
kombu's OperationalError, which spm.celery.TenantTask raises when Redis cannot be
reached (tests/test_faults.py stops a real Redis for the same case).
"""

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from kombu.exceptions import OperationalError as BrokerOperationalError

from dashboards import services as dashboard_services
from dashboards.models import KpiSnapshot
from dashboards.tasks import (
    kpi_snapshot_recompute,
    kpi_snapshot_recompute_deals,
    kpi_snapshot_recompute_pending_schedule,
)
from pipelines import services as pipeline_services
from pipelines.models import DealStageChange, DealStatus, ExchangeRate, StageKind
from pipelines.services import deal_move_stage
from pipelines.tasks import table_statistics_refresh
from spm.models import Organization
from tests.factories import (
    DealFactory,
    MembershipFactory,
    OrganizationFactory,
    PipelineFactory,
    StageFactory,
)
from tests.test_import_maven import run_import

ECB = "Date,USD,JPY,GBP,\n2025-03-11,1.0000,160.00,0.8000,\n2025-03-10,1.2500,N/A,0.8500,\n"
DEFERRED_EN = (
    "Your change is saved. The background service is unavailable, so the figures are updated within an hour "
    "after it is back."
)
DEFERRED_DE = (
    "Ihre Änderung ist gespeichert. Der Hintergrunddienst ist nicht erreichbar, daher werden die Zahlen "
    "innerhalb einer Stunde aktualisiert, nachdem er wieder verfügbar ist."
)


def send_failing(*args, **kwargs):
    """Fail like `apply_async` while Redis is unreachable."""
    raise BrokerOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def broker_down(monkeypatch):
    """Make sending either KPI recompute task fail as it does while Redis is unreachable."""
    monkeypatch.setattr(kpi_snapshot_recompute, "apply_async", send_failing)
    monkeypatch.setattr(kpi_snapshot_recompute_deals, "apply_async", send_failing)


def deferred_at(organization) -> dt.datetime | None:
    return Organization.objects.values_list("kpi_recompute_deferred_at", flat=True).get(pk=organization.pk)


def deferral_logs(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("KPI recompute not queued")]


@pytest.fixture
def open_deal(org):
    """An open deal of 750.25 USD in Acme's pipeline, with the pipeline's won stage."""
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        open_stage = StageFactory(pipeline=pipeline, name="Engaging", order=1, kind=StageKind.OPEN)
        StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON, probability=100)
        return DealFactory(
            owner=MembershipFactory(organization=org),
            pipeline=pipeline,
            stage=open_stage,
            status=DealStatus.OPEN,
            amount=Decimal("750.25"),
            currency="USD",
            base_amount=None,
            created_at=dt.datetime(2025, 2, 1, 12, tzinfo=dt.timezone.utc),
        )


@pytest.mark.parametrize(("language", "warning"), [("en", DEFERRED_EN), ("de", DEFERRED_DE)])
def test_rates_upload_broker_down_saves_and_warns(
    org, admin_member, open_deal, client, settings, tmp_path, transactional_db, broker_down, caplog, language, warning
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    with caplog.at_level(logging.ERROR, logger="pipelines.services"):
        response = client.post(
            "/o/acme/imports/rates/",
            {"file": SimpleUploadedFile("eurofxref-hist.csv", ECB.encode())},
            HTTP_ACCEPT_LANGUAGE=language,
        )
    page = client.get("/o/acme/imports/", HTTP_ACCEPT_LANGUAGE=language)
    shown = [str(message) for message in page.context["messages"]]

    assert response.status_code == 302
    assert response["Location"] == "/o/acme/imports/"
    assert len(shown) == 2
    assert shown[1] == warning
    with scope(organization=org):
        assert ExchangeRate.objects.count() == 5
    assert deferred_at(org) is not None
    assert deferral_logs(caplog) == [
        f"KPI recompute not queued because the broker is unreachable, marked pending organization_id={org.pk} "
        "error=Error 111 connecting to 127.0.0.1:6379. Connection refused."
    ]


def test_rates_upload_broker_up_no_warning(org, admin_member, open_deal, client, settings, tmp_path, transactional_db):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    client.post("/o/acme/imports/rates/", {"file": SimpleUploadedFile("eurofxref-hist.csv", ECB.encode())})
    page = client.get("/o/acme/imports/")

    assert [str(message) for message in page.context["messages"]] == [
        "Exchange rates: 5 new, 0 changed, 0 unchanged, 0 rows rejected; 1 deal converted again."
    ]
    assert deferred_at(org) is None


def test_stage_move_broker_down_marks_pending(org, open_deal, broker_down, django_capture_on_commit_callbacks):
    with scopes_disabled():
        won = open_deal.pipeline.stages.get(kind=StageKind.WON)
    moved_at = dt.datetime(2025, 3, 3, 9, tzinfo=dt.timezone.utc)

    with scope(organization=org), django_capture_on_commit_callbacks(execute=True):
        change = deal_move_stage(deal=open_deal, to_stage=won, changed_at=moved_at)

    with scopes_disabled():
        assert DealStageChange.objects.filter(pk=change.pk).exists()
        open_deal.refresh_from_db()
    assert open_deal.status == DealStatus.WON
    assert deferred_at(org) is not None


def test_later_deferral_moves_mark(org, broker_down, django_capture_on_commit_callbacks, monkeypatch):
    from pipelines.services import kpi_recompute_schedule

    first, second = (dt.datetime(2025, 3, 3, hour, tzinfo=dt.timezone.utc) for hour in (9, 10))
    for moment in (first, second):
        monkeypatch.setattr(timezone, "now", lambda moment=moment: moment)
        with django_capture_on_commit_callbacks(execute=True):
            kpi_recompute_schedule(organization_id=org.pk)

        assert deferred_at(org) == moment


def test_pending_schedule_recomputes_and_clears(org, open_deal):
    with scopes_disabled():
        other = OrganizationFactory(name="Other", slug="other")
    marked_at = dt.datetime(2025, 3, 3, 9, tzinfo=dt.timezone.utc)
    Organization.objects.filter(pk=org.pk).update(kpi_recompute_deferred_at=marked_at)

    enqueued = kpi_snapshot_recompute_pending_schedule.delay().get()

    with scopes_disabled():
        rows = KpiSnapshot.objects.filter(organization=org).count()
        other_rows = KpiSnapshot.objects.filter(organization=other).count()
    assert enqueued == 1
    assert deferred_at(org) is None
    assert rows > 0
    assert other_rows == 0
    assert rows == dashboard_services.kpi_snapshot_recompute(organization=org)["rows_written"]


def test_deferral_during_recompute_stays_pending(org, open_deal, monkeypatch):
    marked_at = dt.datetime(2025, 3, 3, 9, tzinfo=dt.timezone.utc)
    deferred_meanwhile = dt.datetime(2025, 3, 3, 9, 30, tzinfo=dt.timezone.utc)
    Organization.objects.filter(pk=org.pk).update(kpi_recompute_deferred_at=marked_at)
    recompute = dashboard_services.kpi_snapshot_recompute

    def recompute_while_another_change_defers(*, organization):
        Organization.objects.filter(pk=organization.pk).update(kpi_recompute_deferred_at=deferred_meanwhile)
        return recompute(organization=organization)

    monkeypatch.setattr(dashboard_services, "kpi_snapshot_recompute", recompute_while_another_change_defers)

    kpi_snapshot_recompute.delay(organization_id=org.pk).get()

    assert deferred_at(org) == deferred_meanwhile


def test_beat_runs_pending_recompute_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["kpi-recompute-pending"]

    assert entry["task"] == "dashboards.tasks.kpi_snapshot_recompute_pending_schedule"
    assert entry["schedule"].minute == {25}
    assert entry["schedule"].hour == set(range(24))


def test_import_broker_down_marks_pending(org, broker_down, monkeypatch, django_capture_on_commit_callbacks, caplog):
    """An import whose statistics refresh and recompute cannot be queued keeps its rows and marks the recompute pending."""
    monkeypatch.setattr(pipeline_services, "STATISTICS_REFRESH_ROWS", 1)
    monkeypatch.setattr(table_statistics_refresh, "apply_async", send_failing)

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        result = run_import(org)

    assert result.counts["deals"].created == 6
    assert deferred_at(org) is not None
    assert "Table statistics refresh not queued because the broker is unreachable" in caplog.text
