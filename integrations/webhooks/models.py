"""Webhook subscriptions, their deliveries with every attempt, and the attainment crossings already announced."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Organization


class WebhookEvent(models.TextChoices):
    DEAL_WON = "deal.won", _("Deal won")
    DEAL_LOST = "deal.lost", _("Deal lost")
    DEAL_STAGE_CHANGED = "deal.stage_changed", _("Deal moved to another stage")
    ATTAINMENT_CROSSED = "quota.attainment_crossed", _("Quota attainment crossed the threshold")
    IMPORT_FINISHED = "import.finished", _("Import finished")


class WebhookSubscription(models.Model):
    """A URL that receives signed POST requests for the chosen events.

    The signing secret is stored in clear text because every delivery signs with it. The
    page shows it once after creation or rotation, and afterwards only its first characters.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list)
    attainment_threshold_percent = models.DecimalField(
        _("attainment threshold (%)"),
        max_digits=5,
        decimal_places=1,
        default=Decimal("100.0"),
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("500"))],
        help_text=_("The attainment event fires when a rep's, team's or territory's attainment rises to this percentage."),
    )
    secret = models.CharField(_("signing secret"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)
    consecutive_failures = models.PositiveIntegerField(_("failed deliveries in a row"), default=0)
    disabled_at = models.DateTimeField(_("disabled automatically at"), null=True, blank=True)
    created_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    secret_rotated_at = models.DateTimeField(_("secret rotated at"), null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["created_at", "id"]
        indexes = [
            # Emitting an event reads the organization's active subscriptions.
            models.Index(fields=["organization", "is_active"], name="webhooks_subscription_active"),
        ]

    def __str__(self):
        return self.url

    @property
    def secret_hint(self) -> str:
        return f"{self.secret[:10]}…"

    def event_labels(self) -> list[str]:
        labels = dict(WebhookEvent.choices)
        return [str(labels.get(event, event)) for event in self.events]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRYING = "retrying", _("Retrying")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (webhook disabled)")


class WebhookDelivery(models.Model):
    """One event sent to one subscription; `body` is the exact JSON that every attempt signs and posts."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("webhook")
    )
    event_id = models.UUIDField(_("event id"))
    event = models.CharField(_("event"), max_length=40, choices=WebhookEvent.choices)
    body = models.TextField(_("payload"))
    status = models.CharField(_("status"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(_("last status code"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            # An event reaches each subscription once, however often its emitter runs.
            models.UniqueConstraint(
                fields=["organization", "subscription", "event_id"], name="webhooks_delivery_unique_event"
            ),
        ]
        indexes = [
            # The delivery log of one webhook, newest first.
            models.Index(fields=["organization", "subscription", "-created_at"], name="webhooks_delivery_recent"),
        ]


class WebhookAttempt(models.Model):
    """One HTTP POST of a delivery: its status code or network error and the start of the response."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveSmallIntegerField(_("attempt"))
    attempted_at = models.DateTimeField(_("attempted at"))
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    retry_in_seconds = models.PositiveIntegerField(
        _("next attempt in (s)"), null=True, blank=True, help_text=_("Empty when no further attempt follows.")
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "delivery", "number"], name="webhooks_attempt_unique_number"
            ),
        ]

    @property
    def is_success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class AttainmentLevel(models.Model):
    """The last attainment seen for a subject, metric and quota period, and which thresholds it has crossed.

    The attainment event compares a recompute's attainment with `last_ratio`, so it fires
    on an upward crossing only, and `crossed_percents` keeps it to once per threshold.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    level = models.CharField(_("level"), max_length=16)
    subject_id = models.BigIntegerField(_("subject id"))
    metric = models.CharField(_("metric"), max_length=32)
    period_kind = models.CharField(_("period kind"), max_length=8)
    period_start = models.DateField(_("period start"))
    last_ratio = models.DecimalField(_("last attainment"), max_digits=12, decimal_places=6, null=True, blank=True)
    crossed_percents = models.JSONField(_("thresholds crossed (%)"), default=list)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("attainment level seen")
        verbose_name_plural = _("attainment levels seen")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "level", "subject_id", "metric", "period_kind", "period_start"],
                name="webhooks_attainmentlevel_unique_subject",
            ),
        ]
