"""The integrations page: connecting a CRM, choosing pipelines, "sync now", status, counts, errors and history."""

import re

import pytest
from django_scopes import scope, scopes_disabled

from integrations.sync.models import CrmConnection, CrmSyncRun, SyncStatus
from spm.models import AuditLog
from tests.fake_crm import (
    fixture_connection,  # noqa: F401 (pytest fixture, requested by name)
    fixture_server,  # noqa: F401 (pytest fixture, requested by name)
    hubspot_demo,
    utc,
)

LIST_URL = "/o/acme/integrations/"


@pytest.fixture
def fake():
    fake = hubspot_demo()
    # The `connection` fixture stores the token the fake accepts, and pages show it masked as ••••••••7f3a.
    fake.token = "pat-eu1-secret-7f3a"
    fake.add_deal(
        "1",
        name="Alpha",
        owner_id="101",
        pipeline="default",
        stage="appointmentscheduled",
        created_at=utc(2025, 1, 6, 9),
        amount="1000",
    )
    fake.move_deal("1", "closedwon", utc(2025, 2, 3, 10))
    fake.add_deal(
        "2",
        name="Beta",
        owner_id="",
        pipeline="default",
        stage="contractsent",
        created_at=utc(2025, 1, 8, 9),
        amount="2500",
    )
    return fake


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


def detail_url(connection) -> str:
    return f"/o/acme/integrations/{connection.pk}/"


def text(content: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content.decode()))


def test_list_full_page_shows_connect_form(admin_client):
    response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    assert "No CRM connected yet." in text(response.content)
    assert 'name="access_token"' in response.content.decode()
    assert response["Vary"].count("HX-Request") == 1


def test_list_fragment_has_table_only(admin_client, connection):
    response = admin_client.get(LIST_URL, headers={"HX-Request": "true"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert f'data-connection-id="{connection.pk}"' in content
    assert 'name="access_token"' not in content


def test_connect_fetches_pipelines_and_redirects(admin_client, org, server, admin_member):
    response = admin_client.post(
        LIST_URL, {"provider": "hubspot", "access_token": "pat-eu1-secret-7f3a", "base_url": server.base_url}
    )

    with scope(organization=org):
        connection = CrmConnection.objects.get()
        audit = AuditLog.objects.get(action="crm_connection.created")
    assert response.status_code == 302
    assert response["Location"] == detail_url(connection)
    assert connection.access_token == "pat-eu1-secret-7f3a"
    assert connection.pipeline_ids == []
    assert [entry["label"] for entry in connection.available_pipelines] == ["Sales Pipeline", "Renewals"]
    assert audit.actor == admin_member.user


def test_connect_with_bad_token_shows_error(admin_client, org, server):
    response = admin_client.post(
        LIST_URL, {"provider": "hubspot", "access_token": "wrong", "base_url": server.base_url}
    )

    assert response.status_code == 400
    assert "HubSpot rejected the access token (HTTP 401)." in text(response.content)
    with scope(organization=org):
        assert CrmConnection.objects.count() == 0


def test_connect_rejects_plain_http(admin_client, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False

    response = admin_client.post(
        LIST_URL, {"provider": "hubspot", "access_token": "t", "base_url": "http://crm.example.com"}
    )

    assert response.status_code == 400
    assert "http://crm.example.com must start with https://." in text(response.content)


def test_connect_rejects_private_address(admin_client, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False

    response = admin_client.post(
        LIST_URL, {"provider": "hubspot", "access_token": "t", "base_url": "https://169.254.169.254/"}
    )

    assert response.status_code == 400
    assert "169.254.169.254 resolves to the private or loopback address 169.254.169.254" in text(response.content)


def test_sync_refuses_loopback_address_in_production(org, org_in_english, connection, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    with scope(organization=org), django_capture_on_commit_callbacks(execute=True):
        from integrations.sync.services import crm_sync_request

        crm_sync_request(connection=connection, trigger="schedule")
    with scope(organization=org):
        run = CrmSyncRun.objects.get()

    assert run.status == SyncStatus.FAILED
    assert run.message.startswith(
        "HubSpot API address rejected: 127.0.0.1 resolves to the private or loopback address 127.0.0.1"
    )
    assert "pat-eu1" not in run.message


def test_connect_offers_only_crms_not_connected(admin_client, connection):
    page = admin_client.get(LIST_URL).content.decode()
    response = admin_client.post(LIST_URL, {"provider": "hubspot", "access_token": "t"})

    assert '<option value="pipedrive"' in page
    assert '<option value="hubspot"' not in page
    assert response.status_code == 400
    assert "Select a valid choice. hubspot is not one of the available choices." in text(response.content)


def test_detail_full_page_masks_token(admin_client, connection):
    response = admin_client.get(detail_url(connection))

    content = response.content.decode()
    assert response.status_code == 200
    assert "••••••••7f3a" in content
    assert "pat-eu1-secret-7f3a" not in content
    assert "Not synced yet: the first run reads the whole history." in text(response.content)
    assert 'value="default"' in content
    assert 'value="renewals"' in content


def test_detail_fragment_is_status_only(admin_client, connection):
    response = admin_client.get(detail_url(connection), headers={"HX-Request": "true"})

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith("<section")
    assert "data-sync-status-panel" in content
    assert 'name="pipeline_ids"' not in content
    assert "HX-Request" in response["Vary"]


def test_save_pipelines_and_schedule_is_audited(admin_client, org, connection):
    response = admin_client.post(
        detail_url(connection), {"pipeline_ids": ["default", "renewals"], "base_url": connection.base_url}
    )

    connection.refresh_from_db()
    assert response.status_code == 302
    assert connection.pipeline_ids == ["default", "renewals"]
    assert connection.is_enabled is False
    with scope(organization=org):
        entry = AuditLog.objects.get(action="crm_connection.changed")
    assert entry.before == {"pipeline_ids": ["default"], "is_enabled": True}
    assert entry.after == {"pipeline_ids": ["default", "renewals"], "is_enabled": False}


def test_save_requires_a_pipeline(admin_client, connection):
    response = admin_client.post(detail_url(connection), {"is_enabled": "on", "base_url": connection.base_url})

    assert response.status_code == 400
    connection.refresh_from_db()
    assert connection.pipeline_ids == ["default"]


def test_sync_now_runs_and_page_shows_counts(admin_client, org, org_in_english, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{detail_url(connection)}sync/")

    assert response.status_code == 302
    with scope(organization=org):
        run = CrmSyncRun.objects.get()
    assert (run.status, run.trigger, run.is_backfill) == (SyncStatus.SUCCEEDED, "manual", True)
    # Beta has no owner in HubSpot: rejected and listed, Alpha created.
    assert run.deal_counts == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1, "deleted": 0}
    page = admin_client.get(LIST_URL).content.decode()
    assert re.search(r'data-count="created">1<', page)
    assert re.search(r'data-count="rejected">1<', page)
    assert 'data-sync-status="succeeded"' in page
    assert "1 record rejected" in text(page.encode())
    run_page = admin_client.get(f"{detail_url(connection)}runs/{run.pk}/")
    assert run_page.status_code == 200
    assert "owner: missing value" in text(run_page.content)
    assert ">2<" in run_page.content.decode()


def test_sync_now_twice_queues_one_run(admin_client, org, connection):
    admin_client.post(f"{detail_url(connection)}sync/")
    response = admin_client.post(f"{detail_url(connection)}sync/", follow=True)

    assert "A sync of this connection is already queued or running." in text(response.content)
    with scope(organization=org):
        assert CrmSyncRun.objects.count() == 1
    connection.refresh_from_db()
    assert connection.status == SyncStatus.QUEUED


def test_bad_token_error_shown_on_page(admin_client, org, org_in_english, connection, fake, django_capture_on_commit_callbacks):
    fake.token = "rotated"
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"{detail_url(connection)}sync/")

    page = text(admin_client.get(LIST_URL).content)
    detail = text(admin_client.get(detail_url(connection)).content)

    expected = (
        "HubSpot rejected the access token (HTTP 401). Enter a valid token with read access to deals, owners, "
        "pipelines and activities."
    )
    assert expected in page
    assert expected in detail
    assert "Failed" in detail


def test_busy_connection_polls_for_status(admin_client, connection):
    with scopes_disabled():
        CrmConnection.objects.filter(pk=connection.pk).update(status=SyncStatus.RUNNING, last_run_at=utc(2025, 2, 1, 9))

    content = admin_client.get(detail_url(connection)).content.decode()

    assert 'hx-trigger="every 2s"' in content
    assert re.search(r'<button class="btn btn-sm btn-primary" type="submit"\s+disabled', content)


def test_delete_connection_keeps_deals(admin_client, org, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"{detail_url(connection)}sync/")

    response = admin_client.post(f"{detail_url(connection)}delete/")

    assert response.status_code == 302
    with scope(organization=org):
        assert CrmConnection.objects.count() == 0
        assert AuditLog.objects.filter(action="crm_connection.deleted").count() == 1
        from pipelines.models import Deal

        assert Deal.objects.filter(source="hubspot").count() == 1


def test_pipelines_reload(admin_client, connection, fake):
    fake.add_pipeline("partners", "Partners", [("p1", "Partner lead", "0.1", False)])

    admin_client.post(f"{detail_url(connection)}pipelines/")

    connection.refresh_from_db()
    assert [entry["id"] for entry in connection.available_pipelines] == ["default", "renewals", "partners"]


def test_rep_gets_404(client, member):
    client.force_login(member.user)

    assert client.get(LIST_URL).status_code == 404


def test_task_of_removed_connection_does_nothing(org, connection):
    from integrations.sync.tasks import crm_sync_run

    with scope(organization=org):
        run = CrmSyncRun.objects.create(organization=org, connection=connection, trigger="manual")
        connection.delete()

    assert crm_sync_run.delay(organization_id=org.pk, run_id=run.pk).get() == "missing"


def test_new_token_fetches_pipelines_again(admin_client, org, connection, fake):
    fake.add_pipeline("partners", "Partners", [("p1", "Partner lead", "0.1", False)])
    fake.token = "pat-eu1-rotated-7f3a"

    response = admin_client.post(
        detail_url(connection),
        {
            "pipeline_ids": ["default"],
            "is_enabled": "on",
            "access_token": "pat-eu1-rotated-7f3a",
            "base_url": connection.base_url,
        },
    )

    connection.refresh_from_db()
    assert response.status_code == 302
    assert [entry["id"] for entry in connection.available_pipelines] == ["default", "renewals", "partners"]
    with scope(organization=org):
        entry = AuditLog.objects.get(action="crm_connection.changed")
    assert connection.access_token == "pat-eu1-rotated-7f3a"
    assert entry.before == {"token": "••••••••7f3a"}
    assert entry.after == {"token": "••••••••7f3a"}


def test_same_settings_fetch_nothing(admin_client, connection, fake):
    admin_client.post(
        detail_url(connection), {"pipeline_ids": ["default"], "is_enabled": "on", "base_url": connection.base_url}
    )

    assert fake.requests_to("/crm/v3/pipelines/deals") == []


def test_list_polls_while_run_busy(admin_client, connection):
    idle = admin_client.get(LIST_URL).content.decode()
    with scopes_disabled():
        CrmConnection.objects.filter(pk=connection.pk).update(status=SyncStatus.QUEUED, last_run_at=utc(2025, 2, 1, 9))

    busy = admin_client.get(LIST_URL, headers={"HX-Request": "true"}).content.decode()

    assert 'hx-trigger="every 2s"' not in idle
    assert 'hx-trigger="every 2s"' in busy
    assert 'data-sync-status="queued"' in busy
