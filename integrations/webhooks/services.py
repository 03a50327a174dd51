"""Writes of the webhooks app: subscriptions, emitting events, and delivering them with retries.

Delivery: `event_emit` stores one WebhookDelivery per matching active subscription and,
after commit, enqueues `integrations.webhooks.tasks.webhook_deliver` for each. Every attempt
posts the same body with a fresh signature. A network error, a timeout, 408, 429 or a 5xx
status is retried after `retry_delay_seconds(attempt)`; another status fails at once. A
delivery that fails for good counts against its subscription, and WEBHOOK_DISABLE_AFTER
failed deliveries in a row disable it and e-mail the organization's admins.
"""

import datetime as dt
import json
import logging
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django_scopes import scope, scopes_disabled

from integrations.webhooks import outbound, signing
from integrations.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from spm.audit import audit_record
from spm.models import Membership, Organization, Role, User

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_DISABLE_AFTER = 5
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600
RESPONSE_EXCERPT_CHARS = 500
# Status codes that mean "try again later". Any other non-2xx status fails the delivery at once.
RETRYABLE_STATUS = {408, 429}
USER_AGENT = "SPM-Webhooks/1"


def max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def disable_after() -> int:
    return int(getattr(settings, "WEBHOOK_DISABLE_AFTER", DEFAULT_DISABLE_AFTER))


def retry_delay_seconds(attempt: int) -> int:
    """Return the wait in seconds after failed attempt number `attempt` (1-based): 60, 120, 240, … at most 3600."""
    return min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS)


# --- subscriptions ---------------------------------------------------------------------------------


def _audit_state(subscription: WebhookSubscription) -> dict:
    # The secret never goes into the audit log.
    return {
        "url": subscription.url,
        "description": subscription.description,
        "events": list(subscription.events),
        "attainment_threshold_percent": str(subscription.attainment_threshold_percent),
        "is_active": subscription.is_active,
    }


def webhook_create(
    *,
    organization: Organization,
    actor: User | None,
    url: str,
    events: list[str],
    description: str = "",
    attainment_threshold_percent: Decimal = Decimal("100"),
) -> tuple[WebhookSubscription, str]:
    """Create an active subscription and return it with its new secret, which the caller shows once."""
    secret = signing.secret_generate()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            organization=organization,
            url=outbound.url_validate(url),
            description=description,
            events=sorted(set(events)),
            attainment_threshold_percent=attainment_threshold_percent,
            secret=secret,
            created_by=actor,
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="webhook.created",
            object_type="webhook",
            object_id=subscription.pk,
            after=_audit_state(subscription),
        )
    if WebhookEvent.ATTAINMENT_CROSSED in subscription.events:
        from integrations.webhooks.attainment import attainment_levels_check

        # Records today's attainment as the starting point, so subjects already above the
        # threshold do not fire at once.
        attainment_levels_check(organization=organization, emit=False)
    logger.info("Webhook created organization_id=%s webhook_id=%s", organization.pk, subscription.pk)
    return subscription, secret


def webhook_update(
    *,
    subscription: WebhookSubscription,
    actor: User | None,
    url: str,
    events: list[str],
    description: str,
    attainment_threshold_percent: Decimal,
) -> WebhookSubscription:
    """Change the URL, events, description and threshold of a subscription; the secret stays."""
    before = _audit_state(subscription)
    is_new_attainment = WebhookEvent.ATTAINMENT_CROSSED in events and WebhookEvent.ATTAINMENT_CROSSED not in subscription.events
    subscription.url = outbound.url_validate(url)
    subscription.events = sorted(set(events))
    subscription.description = description
    subscription.attainment_threshold_percent = attainment_threshold_percent
    with transaction.atomic():
        subscription.save(update_fields=["url", "events", "description", "attainment_threshold_percent"])
        audit_record(
            organization=subscription.organization_id,
            actor=actor,
            action="webhook.changed",
            object_type="webhook",
            object_id=subscription.pk,
            before=before,
            after=_audit_state(subscription),
        )
    if is_new_attainment:
        from integrations.webhooks.attainment import attainment_levels_check

        # As on creation: today's levels are the starting point, not a crossing.
        attainment_levels_check(organization=subscription.organization, emit=False)
    return subscription


def webhook_secret_rotate(*, subscription: WebhookSubscription, actor: User | None) -> str:
    """Replace the signing secret and return the new one; deliveries from now on are signed with it."""
    secret = signing.secret_generate()
    subscription.secret = secret
    subscription.secret_rotated_at = timezone.now()
    with transaction.atomic():
        subscription.save(update_fields=["secret", "secret_rotated_at"])
        audit_record(
            organization=subscription.organization_id,
            actor=actor,
            action="webhook.secret_rotated",
            object_type="webhook",
            object_id=subscription.pk,
        )
    logger.info("Webhook secret rotated organization_id=%s webhook_id=%s", subscription.organization_id, subscription.pk)
    return secret


def webhook_active_set(*, subscription: WebhookSubscription, actor: User | None, is_active: bool) -> None:
    """Switch a subscription on or off by hand; switching on clears the failure count and the automatic disabling."""
    before = _audit_state(subscription)
    subscription.is_active = is_active
    if is_active:
        subscription.consecutive_failures = 0
        subscription.disabled_at = None
    with transaction.atomic():
        subscription.save(update_fields=["is_active", "consecutive_failures", "disabled_at"])
        audit_record(
            organization=subscription.organization_id,
            actor=actor,
            action="webhook.enabled" if is_active else "webhook.disabled",
            object_type="webhook",
            object_id=subscription.pk,
            before=before,
            after=_audit_state(subscription),
        )


def webhook_delete(*, subscription: WebhookSubscription, actor: User | None) -> None:
    with transaction.atomic():
        audit_record(
            organization=subscription.organization_id,
            actor=actor,
            action="webhook.deleted",
            object_type="webhook",
            object_id=subscription.pk,
            before=_audit_state(subscription),
        )
        subscription.delete()


# --- events --------------------------------------------------------------------------------------


def payload_build(*, organization: Organization, event: str, event_id: uuid.UUID, data: dict, created_at: dt.datetime) -> str:
    """Return the JSON body of an event: id, type, created_at (UTC, ISO 8601), organization and data."""
    document = {
        "id": str(event_id),
        "type": event,
        "created_at": created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "organization": {"slug": organization.slug},
        "data": data,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def event_emit(
    *,
    organization_id: int,
    event: str,
    payload: dict,
    event_id: uuid.UUID | None = None,
    threshold_percent: Decimal | None = None,
) -> uuid.UUID | None:
    """Queue `event` with `payload` (the "data" member) for every active subscription of the organization.

    Attainment events reach only the subscriptions whose threshold is `threshold_percent`.
    Returns the event id, or None when no subscription wants the event. Call it after the
    change has committed (see integrations.webhooks.events), because the deliveries
    start right away.
    """
    if event not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {event!r}; use one of {', '.join(WebhookEvent.values)}.")
    with scopes_disabled():
        organization = Organization.objects.get(pk=organization_id)
    with scope(organization=organization):
        subscriptions = [
            subscription
            for subscription in WebhookSubscription.objects.filter(organization=organization, is_active=True)
            if event in subscription.events
            and (threshold_percent is None or subscription.attainment_threshold_percent == threshold_percent)
        ]
        # No subscription wants the event, so no body is built.
        if not subscriptions:
            return None

        event_id = event_id or uuid.uuid4()
        body = payload_build(
            organization=organization, event=event, event_id=event_id, data=payload, created_at=timezone.now()
        )
        created = []
        with transaction.atomic():
            for subscription in subscriptions:
                try:
                    with transaction.atomic():
                        created.append(
                            WebhookDelivery.objects.create(
                                organization=organization,
                                subscription=subscription,
                                event_id=event_id,
                                event=event,
                                body=body,
                            )
                        )
                except IntegrityError:
                    # The same event id was emitted before, e.g. by a retried task.
                    continue
            transaction.on_commit(lambda: _deliveries_enqueue(organization.pk, [delivery.pk for delivery in created]))

    logger.info(
        "Webhook event emitted organization_id=%s event=%s event_id=%s deliveries=%s",
        organization_id,
        event,
        event_id,
        len(created),
    )
    return event_id


def _deliveries_enqueue(organization_id: int, delivery_ids: list[int]) -> None:
    from integrations.webhooks.tasks import webhook_deliver

    for delivery_id in delivery_ids:
        webhook_deliver.delay(organization_id=organization_id, delivery_id=delivery_id)


# --- delivery ------------------------------------------------------------------------------------


def delivery_attempt(*, delivery: WebhookDelivery, now: dt.datetime | None = None) -> int | None:
    """Post the delivery once and record the attempt; return the seconds until the next attempt, or None when done.

    Marks the delivery succeeded on a 2xx response. A retryable failure (network error,
    timeout, 408, 429, 5xx) below the maximum of attempts leaves it retrying and returns
    the delay. Any other outcome fails it and counts against the subscription, which may
    disable it. A delivery of an inactive subscription is skipped without a request.
    """
    subscription = delivery.subscription
    # Finished deliveries stay finished when a task is delivered twice.
    if delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED):
        return None
    if not subscription.is_active:
        delivery.status = DeliveryStatus.SKIPPED
        delivery.finished_at = timezone.now()
        delivery.save(update_fields=["status", "finished_at"])
        return None

    now = now or timezone.now()
    number = delivery.attempts + 1
    body = delivery.body.encode("utf-8")
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "SPM-Event": delivery.event,
        "SPM-Event-Id": str(delivery.event_id),
        "SPM-Delivery-Id": str(delivery.pk),
        signing.SIGNATURE_HEADER: signing.signature_header(secret=subscription.secret, timestamp=timestamp, body=body),
    }
    status_code = None
    excerpt = error = ""
    duration_ms = None
    try:
        response = outbound.http_request("POST", subscription.url, body=body, headers=headers)
    except outbound.OutboundURLError as rejected:
        error, is_retryable = str(rejected), False
    except outbound.OutboundRequestError as failure:
        error, is_retryable = str(failure), True
    else:
        status_code = response.status
        duration_ms = response.duration_ms
        excerpt = response.body[: RESPONSE_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:RESPONSE_EXCERPT_CHARS]
        is_retryable = status_code in RETRYABLE_STATUS or status_code >= 500

    is_success = status_code is not None and 200 <= status_code < 300
    retry_in = None
    if not is_success and is_retryable and number < max_attempts():
        retry_in = retry_delay_seconds(number)

    with transaction.atomic():
        WebhookAttempt.objects.create(
            organization_id=delivery.organization_id,
            delivery=delivery,
            number=number,
            attempted_at=now,
            status_code=status_code,
            response_excerpt=excerpt,
            error=error[:500],
            duration_ms=duration_ms,
            retry_in_seconds=retry_in,
        )
        delivery.attempts = number
        delivery.last_status_code = status_code
        if is_success:
            delivery.status = DeliveryStatus.SUCCEEDED
        elif retry_in is not None:
            delivery.status = DeliveryStatus.RETRYING
        else:
            delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = now + dt.timedelta(seconds=retry_in) if retry_in is not None else None
        delivery.finished_at = None if retry_in is not None else timezone.now()
        delivery.save(update_fields=["attempts", "last_status_code", "status", "next_attempt_at", "finished_at"])
        if is_success:
            WebhookSubscription.objects.filter(pk=subscription.pk).update(consecutive_failures=0)
        elif retry_in is None:
            _failure_count(subscription)

    logger.info(
        "Webhook attempt organization_id=%s webhook_id=%s delivery_id=%s attempt=%s status_code=%s retry_in=%s",
        delivery.organization_id,
        subscription.pk,
        delivery.pk,
        number,
        status_code,
        retry_in,
    )
    return retry_in


def _failure_count(subscription: WebhookSubscription) -> None:
    """Count one failed delivery; at WEBHOOK_DISABLE_AFTER in a row, disable the subscription and notify admins."""
    locked = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    locked.consecutive_failures += 1
    locked.save(update_fields=["consecutive_failures"])
    # Still below the limit, or already disabled by a concurrent delivery.
    if locked.consecutive_failures < disable_after() or not locked.is_active:
        return

    locked.is_active = False
    locked.disabled_at = timezone.now()
    locked.save(update_fields=["is_active", "disabled_at"])
    audit_record(
        organization=locked.organization_id,
        action="webhook.disabled_automatically",
        object_type="webhook",
        object_id=locked.pk,
        after={"consecutive_failures": locked.consecutive_failures},
    )
    logger.warning(
        "Webhook disabled after failures organization_id=%s webhook_id=%s consecutive_failures=%s",
        locked.organization_id,
        locked.pk,
        locked.consecutive_failures,
    )
    transaction.on_commit(lambda: webhook_disabled_notify(subscription_id=locked.pk))


def webhook_disabled_notify(*, subscription_id: int) -> int:
    """E-mail every admin of the subscription's organization, each in their own language; return the number sent."""
    with scopes_disabled():
        subscription = WebhookSubscription.objects.select_related("organization").get(pk=subscription_id)
        admins = list(
            Membership.objects.filter(organization=subscription.organization, role=Role.ADMIN).select_related("user")
        )
    organization = subscription.organization
    sent = 0
    for admin in admins:
        language = admin.user.language or organization.language
        with translation.override(language):
            path = reverse("webhook_list", kwargs={"org_slug": organization.slug})
            context = {
                "subscription": subscription,
                "organization": organization,
                "failures": subscription.consecutive_failures,
                "path": path,
            }
            subject = render_to_string("webhooks/disabled_email_subject.txt", context).strip()
            text = render_to_string("webhooks/disabled_email.txt", context)
        send_mail(subject, text, None, [admin.user.email])
        sent += 1
    logger.info(
        "Webhook disabled notice sent organization_id=%s webhook_id=%s recipients=%s",
        organization.pk,
        subscription.pk,
        sent,
    )
    return sent
