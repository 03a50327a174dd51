"""Webhook delivery and mailbox polling through Redis and a real Celery worker, on loopback servers."""

import json
import time

import pytest
from django_scopes import scopes_disabled

from integrations.capture.tasks import mailbox_poll_schedule
from integrations.webhooks.models import DeliveryStatus, WebhookDelivery
from integrations.webhooks.services import event_emit
from pipelines.models import Activity
from tests.test_capture import FakeIMAPServer, mailbox_create, message
from tests.test_webhooks import LoopbackHTTPServer, subscription_create

WORKER_WAIT_SECONDS = 60


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached after {WORKER_WAIT_SECONDS} s"
        time.sleep(0.2)


@pytest.mark.worker
def test_worker_delivers_signed_event(celery_worker, org):
    with LoopbackHTTPServer([(200, b"ok")]) as server:
        subscription = subscription_create(org, server.url + "/hook", ["import.finished"])
        # No transaction is open, so the delivery task is sent to the worker at once.
        event_id = event_emit(organization_id=org.pk, event="import.finished", payload={"import": {"source": "api"}})

        def delivered() -> bool:
            with scopes_disabled():
                return WebhookDelivery.objects.filter(subscription=subscription, status=DeliveryStatus.SUCCEEDED).exists()

        _wait_for(delivered, "a succeeded delivery")

    assert len(server.requests) == 1
    assert json.loads(server.requests[0]["body"])["id"] == str(event_id)


@pytest.mark.worker
def test_worker_polls_mailbox_from_beat_job(celery_worker, org, member):
    from integrations.capture.models import AccountDomain
    from tests.factories import AccountFactory

    with scopes_disabled():
        account = AccountFactory(organization=org, name="Customer GmbH")
        AccountDomain.objects.create(organization=org, account=account, domain="customer.example")
    messages = {1: message("w1@acme.example", "rep@acme.example", "anna@customer.example", "Offer")}
    with FakeIMAPServer(messages) as server:
        mailbox_create(org, server.port)
        enqueued = mailbox_poll_schedule.delay().get(timeout=WORKER_WAIT_SECONDS)

        def captured() -> bool:
            with scopes_disabled():
                return Activity.objects.filter(organization=org, source="email", external_id="w1@acme.example").exists()

        _wait_for(captured, "the captured e-mail activity")

    assert enqueued == 1
