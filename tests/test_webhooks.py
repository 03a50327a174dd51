"""Outgoing webhooks: signatures, deliveries to a loopback HTTP server, retries, automatic disabling, events."""

import datetime as dt
import hashlib
import hmac
import json
import threading
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from goals.models import Quota
from integrations.webhooks import outbound, signing
from integrations.webhooks.attainment import attainment_levels_check
from integrations.webhooks.models import (
    AttainmentLevel,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from integrations.webhooks.services import event_emit, retry_delay_seconds, webhook_create, webhook_update
from pipelines.models import DealStatus
from pipelines.services import deal_move_stage
from pipelines.services_records import records_import
from spm.models import AuditLog, Role
from tests.attainment_data import deal_create
from tests.factories import MembershipFactory, UserFactory


class LoopbackHTTPServer:
    """An HTTP server on 127.0.0.1 in a thread that records requests and responds with queued statuses.

    `responses` is a list of (status, body) consumed in order; the last one repeats. GET
    requests get `get_body` as their response, and GET requests for a path in `redirects`
    a 302 to the mapped location.
    """

    def __init__(self, responses=((200, b"ok"),), get_body=b"", content_type="text/plain", redirects=None):
        self.responses = list(responses)
        self.redirects = redirects or {}
        self.get_body = get_body
        self.content_type = content_type
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, text = server.responses[0] if len(server.responses) == 1 else server.responses.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def do_GET(self):
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": b""})
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, _text = server.responses[0] if len(server.responses) == 1 else server.responses.pop(0)
                body = server.get_body if status == 200 else b"not here"
                self.send_response(status)
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    settings.WEBHOOK_MAX_ATTEMPTS = 4
    settings.WEBHOOK_DISABLE_AFTER = 3
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def subscription_create(org, url, events, threshold=Decimal("100")):
    with scopes_disabled():
        return WebhookSubscription.objects.create(
            organization=org, url=url, events=events, secret="whsec_test", attainment_threshold_percent=threshold
        )


def emit(org, event="import.finished", payload=None, **kwargs):
    with scope(organization=org):
        return event_emit(organization_id=org.pk, event=event, payload=payload or {"n": 1}, **kwargs)


# --- signing ---------------------------------------------------------------------------------------


def test_signature_matches_hand_computation():
    body = b'{"a":1}'
    # HMAC-SHA256("whsec_test", "1700000000." + body), computed once by hand with Python's hmac module.
    expected = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"

    header = signing.signature_header(secret="whsec_test", timestamp=1700000000, body=body)

    assert header == f"t=1700000000,v1={expected}"
    assert hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest() == expected


def test_signature_verify_rejects_tampering_and_old_timestamps():
    body = b'{"a":1}'
    header = signing.signature_header(secret="whsec_test", timestamp=1700000000, body=body)

    assert signing.signature_verify(secret="whsec_test", header=header, body=body, now=1700000100)
    assert not signing.signature_verify(secret="whsec_test", header=header, body=b'{"a":2}', now=1700000100)
    assert not signing.signature_verify(secret="whsec_other", header=header, body=body, now=1700000100)
    assert not signing.signature_verify(secret="whsec_test", header=header, body=body, now=1700000301)
    assert not signing.signature_verify(secret="whsec_test", header="v1=abc", body=body, now=1700000000)


# --- delivery --------------------------------------------------------------------------------------


def test_delivery_posts_signed_payload(org, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer([(200, b"thanks")]) as server:
        subscription = subscription_create(org, server.url + "/hook", ["import.finished"])
        with django_capture_on_commit_callbacks(execute=True):
            event_id = emit(org, payload={"import": {"source": "api"}})

    assert len(server.requests) == 1
    request = server.requests[0]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert request["path"] == "/hook"
    assert headers["content-type"] == "application/json"
    assert headers["spm-event"] == "import.finished"
    assert headers["spm-event-id"] == str(event_id)
    timestamp, signature = (part.split("=", 1)[1] for part in headers["spm-signature"].split(","))
    expected = hmac.new(b"whsec_test", timestamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    assert signature == expected
    document = json.loads(request["body"])
    assert document["id"] == str(event_id)
    assert document["type"] == "import.finished"
    assert document["organization"] == {"slug": "acme"}
    assert document["data"] == {"import": {"source": "api"}}
    assert document["created_at"].endswith("Z")
    with scopes_disabled():
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    assert attempt.status_code == 200
    assert attempt.response_excerpt == "thanks"
    assert attempt.retry_in_seconds is None


def test_retry_delays_double_up_to_an_hour():
    assert [retry_delay_seconds(attempt) for attempt in range(1, 8)] == [60, 120, 240, 480, 960, 1920, 3600]


def test_server_errors_retried_with_backoff_until_max_attempts(org, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer([(503, b"busy")]) as server:
        subscription = subscription_create(org, server.url, ["import.finished"])
        with django_capture_on_commit_callbacks(execute=True):
            emit(org)

    assert len(server.requests) == 4
    with scopes_disabled():
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
        subscription.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 4
    assert delivery.last_status_code == 503
    assert [attempt.status_code for attempt in attempts] == [503, 503, 503, 503]
    assert [attempt.retry_in_seconds for attempt in attempts] == [60, 120, 240, None]
    assert subscription.consecutive_failures == 1
    assert subscription.is_active
    # Every attempt is signed afresh but carries the same body and event id.
    assert len({request["body"] for request in server.requests}) == 1


def test_retry_then_success_resets_failures(org, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer([(500, b"oops"), (429, b"slow down"), (204, b"")]) as server:
        subscription = subscription_create(org, server.url, ["import.finished"])
        with scopes_disabled():
            WebhookSubscription.objects.filter(pk=subscription.pk).update(consecutive_failures=2)
        with django_capture_on_commit_callbacks(execute=True):
            emit(org)

    with scopes_disabled():
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        subscription.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 3
    assert subscription.consecutive_failures == 0


def test_client_error_fails_without_retry(org, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer([(400, b"bad payload")]) as server:
        subscription = subscription_create(org, server.url, ["import.finished"])
        with django_capture_on_commit_callbacks(execute=True):
            emit(org)

    assert len(server.requests) == 1
    with scopes_disabled():
        delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1


def test_repeated_failures_disable_and_notify_admins(org, admin_member, client, django_capture_on_commit_callbacks):
    with scopes_disabled():
        admin_member.user.language = "en"
        admin_member.user.save(update_fields=["language"])
        second_admin = MembershipFactory(
            organization=org, role=Role.ADMIN, user=UserFactory(email="admin2@acme.example", language="de")
        )
    with LoopbackHTTPServer([(410, b"gone")]) as server:
        subscription = subscription_create(org, server.url, ["import.finished"])
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                emit(org)
        with django_capture_on_commit_callbacks(execute=True):
            fourth = emit(org)

    assert len(server.requests) == 3
    assert fourth is None
    with scopes_disabled():
        subscription.refresh_from_db()
        audit_actions = list(AuditLog.objects.filter(organization=org).values_list("action", flat=True))
    assert not subscription.is_active
    assert subscription.disabled_at is not None
    assert subscription.consecutive_failures == 3
    assert "webhook.disabled_automatically" in audit_actions
    assert sorted(message.to[0] for message in mail.outbox) == ["admin2@acme.example", "admin@acme.example"]
    english = next(message for message in mail.outbox if message.to == ["admin@acme.example"])
    assert server.url in english.body
    assert "failed 3 deliveries in a row" in english.body
    assert second_admin.user.email == "admin2@acme.example"

    client.force_login(admin_member.user)
    page = client.get(reverse("webhook_list", kwargs={"org_slug": org.slug}))
    assert f'data-webhook-disabled="{subscription.pk}"' in page.content.decode()


def test_switching_on_again_clears_failures(org, admin_member, client):
    subscription = subscription_create(org, "http://127.0.0.1:9/", ["deal.won"])
    with scopes_disabled():
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            is_active=False, consecutive_failures=3, disabled_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        )
    client.force_login(admin_member.user)

    client.post(reverse("webhook_toggle", kwargs={"org_slug": org.slug, "pk": subscription.pk}))

    with scopes_disabled():
        subscription.refresh_from_db()
    assert subscription.is_active
    assert subscription.consecutive_failures == 0
    assert subscription.disabled_at is None


def test_inactive_subscription_gets_no_delivery(org, django_capture_on_commit_callbacks):
    subscription = subscription_create(org, "http://127.0.0.1:9/", ["import.finished"])
    with scopes_disabled():
        WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        event_id = emit(org)

    assert event_id is None
    with scopes_disabled():
        assert WebhookDelivery.objects.count() == 0


def test_same_event_id_delivered_once(org, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["import.finished"])
        event_id = uuid.UUID("00000000-0000-0000-0000-000000000001")
        with django_capture_on_commit_callbacks(execute=True):
            emit(org, event_id=event_id)
            emit(org, event_id=event_id)

    assert len(server.requests) == 1


# --- URL checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/hook", "http://localhost/hook", "http://10.0.0.5/hook", "http://[::1]/", "http://169.254.169.254/"],
)
def test_private_targets_rejected_without_loopback_setting(settings, url):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False

    with pytest.raises(outbound.OutboundURLError) as error:
        outbound.url_validate(url)

    assert "only public addresses are allowed" in str(error.value)


@pytest.mark.parametrize("url", ["ftp://hooks.example/", "hooks.example/path", "https://user:pw@hooks.example/", "http://"])
def test_non_http_urls_rejected(url):
    with pytest.raises(outbound.OutboundURLError):
        outbound.url_validate(url)


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("de", "ftp://example.invalid/ muss mit http:// oder https:// beginnen."),
        ("en", "ftp://example.invalid/ must start with http:// or https://."),
    ],
)
def test_form_scheme_message_translated(org, admin_member, client, language, message):
    client.force_login(admin_member.user)

    response = client.post(
        reverse("webhook_list", kwargs={"org_slug": org.slug}),
        {"url": "ftp://example.invalid/", "events": ["deal.won"], "attainment_threshold_percent": "100"},
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 200
    assert message in response.content.decode()


def test_form_names_rejected_loopback_url(org, admin_member, client, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    client.force_login(admin_member.user)

    response = client.post(
        reverse("webhook_list", kwargs={"org_slug": org.slug}),
        {"url": "http://127.0.0.1:8000/hook", "events": ["deal.won"], "attainment_threshold_percent": "100"},
    )

    assert response.status_code == 200
    assert "127.0.0.1 resolves to the private or loopback address 127.0.0.1" in response.content.decode()
    with scopes_disabled():
        assert WebhookSubscription.objects.count() == 0


def test_delivery_to_loopback_fails_when_setting_turned_off(org, org_in_english, settings, django_capture_on_commit_callbacks):
    subscription = subscription_create(org, "http://127.0.0.1:9/", ["import.finished"])
    settings.WEBHOOKS_ALLOW_LOOPBACK = False

    with django_capture_on_commit_callbacks(execute=True):
        emit(org)

    with scopes_disabled():
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "only public addresses are allowed" in attempt.error


# --- pages -----------------------------------------------------------------------------------------


def test_secret_shown_once_after_creation(org, admin_member, client):
    client.force_login(admin_member.user)

    response = client.post(
        reverse("webhook_list", kwargs={"org_slug": org.slug}),
        {"url": "http://127.0.0.1:9/hook", "events": ["deal.won", "deal.lost"], "attainment_threshold_percent": "100"},
        follow=True,
    )

    with scopes_disabled():
        subscription = WebhookSubscription.objects.get()
    page = response.content.decode()
    assert subscription.events == ["deal.lost", "deal.won"]
    assert subscription.secret.startswith("whsec_")
    assert f"data-webhook-secret>{subscription.secret}<" in page
    again = client.get(reverse("webhook_detail", kwargs={"org_slug": org.slug, "pk": subscription.pk}))
    assert subscription.secret not in again.content.decode()
    with scopes_disabled():
        created = AuditLog.objects.get(action="webhook.created")
    assert subscription.secret not in json.dumps(created.after)


def test_rotating_secret_replaces_it(org, admin_member, client):
    subscription = subscription_create(org, "http://127.0.0.1:9/", ["deal.won"])
    client.force_login(admin_member.user)

    response = client.post(
        reverse("webhook_secret_rotate", kwargs={"org_slug": org.slug, "pk": subscription.pk}), follow=True
    )

    with scopes_disabled():
        subscription.refresh_from_db()
    assert subscription.secret != "whsec_test"
    assert subscription.secret in response.content.decode()
    assert subscription.secret_rotated_at is not None


def test_other_organization_webhook_not_found(org, admin_member, other_org, client):
    foreign = subscription_create(other_org, "http://127.0.0.1:9/", ["deal.won"])
    client.force_login(admin_member.user)

    response = client.get(reverse("webhook_detail", kwargs={"org_slug": org.slug, "pk": foreign.pk}))

    assert response.status_code == 404


# --- events from the existing code -----------------------------------------------------------------


def test_stage_move_to_won_emits_stage_changed_and_won(org, member, stages, django_capture_on_commit_callbacks):
    moved_at = (timezone.now() - dt.timedelta(hours=2)).replace(microsecond=0)
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["deal.stage_changed", "deal.won", "deal.lost"])
        with scope(organization=org):
            deal = deal_create(member, stages, DealStatus.OPEN, "2500.00")
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            deal_move_stage(deal=deal, to_stage=stages[DealStatus.WON], changed_at=moved_at)

    documents = sorted((json.loads(request["body"]) for request in server.requests), key=lambda document: document["type"])
    assert [document["type"] for document in documents] == ["deal.stage_changed", "deal.won"]
    changed, won = documents
    assert changed["data"]["stage_change"]["from_stage"]["name"] == "Qualify"
    assert changed["data"]["stage_change"]["to_stage"]["name"] == "Won"
    assert changed["data"]["stage_change"]["changed_at"] == moved_at.isoformat().replace("+00:00", "Z")
    assert won["data"]["deal"]["id"] == deal.pk
    assert won["data"]["deal"]["status"] == "won"
    assert won["data"]["deal"]["amount"] == "2500.00"
    assert won["data"]["deal"]["closed_at"] == moved_at.isoformat().replace("+00:00", "Z")
    assert won["data"]["deal"]["owner"]["id"] == member.pk


def test_stage_move_to_lost_emits_lost_only_for_lost_subscribers(org, member, stages, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["deal.lost"])
        with scope(organization=org):
            deal = deal_create(member, stages, DealStatus.OPEN, "100.00")
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            deal_move_stage(deal=deal, to_stage=stages[DealStatus.LOST], changed_at=timezone.now())

    assert [json.loads(request["body"])["type"] for request in server.requests] == ["deal.lost"]


def test_records_import_emits_import_finished(org, django_capture_on_commit_callbacks):
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["import.finished"])
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            records_import(organization=org, source="api", accounts=[{"external_id": "A1", "name": "Kunde AG"}])

    assert len(server.requests) == 1
    document = json.loads(server.requests[0]["body"])
    assert document["type"] == "import.finished"
    assert document["data"]["import"]["source"] == "api"
    assert document["data"]["import"]["counts"]["accounts"]["created"] == 1
    assert document["data"]["import"]["rejected_rows"] == 0


def test_recent_stage_change_through_records_import_emits_stage_changed(org, member, django_capture_on_commit_callbacks):
    moved_at = (timezone.now() - dt.timedelta(hours=1)).replace(microsecond=0)
    deal = {"external_id": "D1", "owner_email": "rep@acme.example", "stage": "Qualify", "created_at": "2025-01-01"}
    with scope(organization=org):
        records_import(organization=org, source="api", deals=[deal])
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["deal.stage_changed"])
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            records_import(
                organization=org,
                source="api",
                stage_changes=[
                    {"deal": "D1", "stage": "Proposal", "changed_at": "2025-01-05T10:00:00Z"},
                    {"deal": "D1", "stage": "Negotiation", "changed_at": moved_at.isoformat()},
                ],
            )

    # The January move is history; only the move of the last hour is news.
    assert [json.loads(request["body"])["type"] for request in server.requests] == ["deal.stage_changed"]
    change = json.loads(server.requests[0]["body"])["data"]["stage_change"]
    assert change["from_stage"]["name"] == "Proposal"
    assert change["to_stage"]["name"] == "Negotiation"
    assert change["changed_at"] == moved_at.isoformat().replace("+00:00", "Z")


def test_old_closes_from_import_send_no_deal_events(org, member, django_capture_on_commit_callbacks):
    recent = (timezone.now() - dt.timedelta(days=1)).date().isoformat()
    deals = [
        {"external_id": "OLD", "owner_email": "rep@acme.example", "stage": "Won", "status": "won",
         "amount": "10", "created_at": "2025-01-01", "closed_at": "2025-02-01"},
        {"external_id": "NEW", "owner_email": "rep@acme.example", "stage": "Won", "status": "won",
         "amount": "20", "created_at": "2025-01-01", "closed_at": recent},
    ]  # fmt: skip
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["deal.won"])
        with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
            records_import(organization=org, source="hubspot", deals=deals)

    assert [json.loads(request["body"])["data"]["deal"]["external_id"] for request in server.requests] == ["NEW"]


def test_attainment_crossing_fires_once_upward(org, member, stages, django_capture_on_commit_callbacks):
    today = dt.date(2026, 2, 15)
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["quota.attainment_crossed"], threshold=Decimal("100"))
        with scope(organization=org):
            Quota.objects.create(
                organization=org,
                level="rep",
                membership=member,
                period_kind="quarter",
                period_start=dt.date(2026, 1, 1),
                metric="won_revenue",
                target=Decimal("1000.00"),
            )
            # The first check records 0 % as the starting point.
            assert attainment_levels_check(organization=org, emit=False, today=today) == 0
            deal_create(member, stages, DealStatus.WON, "600.00", closed_at=dt.datetime(2026, 2, 3, 10, tzinfo=dt.UTC))
            with django_capture_on_commit_callbacks(execute=True):
                below = attainment_levels_check(organization=org, today=today)
            second = deal_create(member, stages, DealStatus.WON, "500.00", closed_at=dt.datetime(2026, 2, 10, 10, tzinfo=dt.UTC))
            with django_capture_on_commit_callbacks(execute=True):
                crossed = attainment_levels_check(organization=org, today=today)
            with django_capture_on_commit_callbacks(execute=True):
                again = attainment_levels_check(organization=org, today=today)
            # Falling below and rising again within the quarter does not fire a second time.
            second.status = DealStatus.OPEN
            second.save(update_fields=["status"])
            with django_capture_on_commit_callbacks(execute=True):
                attainment_levels_check(organization=org, today=today)
            second.status = DealStatus.WON
            second.save(update_fields=["status"])
            with django_capture_on_commit_callbacks(execute=True):
                rose_again = attainment_levels_check(organization=org, today=today)
            level = AttainmentLevel.objects.get(subject_id=member.pk, period_kind="quarter")

    assert (below, crossed, again, rose_again) == (0, 1, 0, 0)
    assert len(server.requests) == 1
    data = json.loads(server.requests[0]["body"])["data"]["attainment"]
    assert data["level"] == "rep"
    assert data["subject"]["id"] == member.pk
    assert data["metric"] == "won_revenue"
    assert data["period"]["label"] == "2026-Q1"
    assert data["quota"] == "1000.00"
    assert data["credited"] == "1100.00"
    assert data["attainment"] == "1.1000"
    assert data["threshold_percent"] == "100"
    assert level.last_ratio == Decimal("1.1")
    assert level.crossed_percents == ["100"]


def test_attainment_event_reaches_only_matching_threshold(org, member, stages, django_capture_on_commit_callbacks):
    today = dt.date(2026, 2, 15)
    with LoopbackHTTPServer() as at_half, LoopbackHTTPServer() as at_full:
        subscription_create(org, at_half.url, ["quota.attainment_crossed"], threshold=Decimal("50"))
        subscription_create(org, at_full.url, ["quota.attainment_crossed"], threshold=Decimal("100"))
        with scope(organization=org):
            Quota.objects.create(
                organization=org,
                level="rep",
                membership=member,
                period_kind="quarter",
                period_start=dt.date(2026, 1, 1),
                metric="won_deals",
                target=Decimal("4"),
            )
            attainment_levels_check(organization=org, emit=False, today=today)
            for day in (2, 3):
                deal_create(member, stages, DealStatus.WON, "10.00", closed_at=dt.datetime(2026, 2, day, 10, tzinfo=dt.UTC))
            with django_capture_on_commit_callbacks(execute=True):
                emitted = attainment_levels_check(organization=org, today=today)

    assert emitted == 1
    assert len(at_half.requests) == 1
    assert at_full.requests == []
    data = json.loads(at_half.requests[0]["body"])["data"]["attainment"]
    assert data["credited"] == "2"
    assert data["threshold_percent"] == "50"


def test_attainment_payload_rounds_half_up(org, member, stages, django_capture_on_commit_callbacks):
    # 562.45 / 1,000.00 is exactly 0.56245, which half-even rounding would send as 0.5624.
    today = dt.date(2026, 2, 15)
    with LoopbackHTTPServer() as server:
        subscription_create(org, server.url, ["quota.attainment_crossed"], threshold=Decimal("50"))
        with scope(organization=org):
            Quota.objects.create(
                organization=org,
                level="rep",
                membership=member,
                period_kind="quarter",
                period_start=dt.date(2026, 1, 1),
                metric="won_revenue",
                target=Decimal("1000.00"),
            )
            attainment_levels_check(organization=org, emit=False, today=today)
            deal_create(member, stages, DealStatus.WON, "562.45", closed_at=dt.datetime(2026, 2, 3, 10, tzinfo=dt.UTC))
            with django_capture_on_commit_callbacks(execute=True):
                attainment_levels_check(organization=org, today=today)

    assert len(server.requests) == 1
    data = json.loads(server.requests[0]["body"])["data"]["attainment"]
    assert data["credited"] == "562.45"
    assert data["attainment"] == "0.5625"


def test_creating_attainment_webhook_records_starting_levels(org, member, stages):
    with scope(organization=org):
        Quota.objects.create(
            organization=org,
            level="rep",
            membership=member,
            period_kind="year",
            period_start=dt.date(dt.date.today().year, 1, 1),
            metric="won_deals",
            target=Decimal("10"),
        )
        webhook_create(organization=org, actor=None, url="http://127.0.0.1:9/", events=["quota.attainment_crossed"])

        assert AttainmentLevel.objects.filter(subject_id=member.pk, period_kind="year").count() == 1


def test_adding_attainment_event_records_starting_levels(org, member):
    with scope(organization=org):
        Quota.objects.create(
            organization=org,
            level="rep",
            membership=member,
            period_kind="year",
            period_start=dt.date(dt.date.today().year, 1, 1),
            metric="won_deals",
            target=Decimal("10"),
        )
        subscription, _secret = webhook_create(organization=org, actor=None, url="http://127.0.0.1:9/", events=["deal.won"])
        assert AttainmentLevel.objects.count() == 0

        webhook_update(
            subscription=subscription,
            actor=None,
            url=subscription.url,
            events=["deal.won", "quota.attainment_crossed"],
            description="",
            attainment_threshold_percent=Decimal("100"),
        )

        assert AttainmentLevel.objects.filter(subject_id=member.pk, period_kind="year").count() == 1


def test_detail_queries_independent_of_deliveries(org, admin_member, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    subscription = subscription_create(org, "http://127.0.0.1:9/", ["import.finished"])
    client.force_login(admin_member.user)
    url = reverse("webhook_detail", kwargs={"org_slug": org.slug, "pk": subscription.pk})

    def deliveries_add(count: int) -> None:
        with scopes_disabled():
            for _ in range(count):
                delivery = WebhookDelivery.objects.create(
                    organization=org, subscription=subscription, event_id=uuid.uuid4(), event="import.finished", body="{}"
                )
                WebhookAttempt.objects.create(
                    organization=org, delivery=delivery, number=1, attempted_at=timezone.now(), status_code=500
                )

    deliveries_add(1)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    deliveries_add(5)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)

    assert response.content.decode().count("HTTP 500") == 6
    assert len(many.captured_queries) == len(few.captured_queries)
