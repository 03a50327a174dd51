"""Admin pages of outgoing webhooks: list and create, detail with the delivery log, secret rotation, on/off, delete."""

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from integrations.webhooks import services
from integrations.webhooks.forms import WebhookForm
from integrations.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from integrations.webhooks.signing import SIGNATURE_HEADER
from spm.security import admin_required

DELIVERY_LOG_LENGTH = 50
# The session key of a new or rotated secret; the detail page pops it, so it renders once.
SECRET_SESSION_KEY = "webhook_secret_once"


def _secret_keep_once(request, subscription: WebhookSubscription, secret: str) -> None:
    request.session[SECRET_SESSION_KEY] = {"id": subscription.pk, "secret": secret}


def _secret_pop(request, subscription_id: int | None = None) -> str | None:
    stored = request.session.get(SECRET_SESSION_KEY)
    if not stored or (subscription_id is not None and stored.get("id") != subscription_id):
        return None
    del request.session[SECRET_SESSION_KEY]
    return stored["secret"]


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_list(request, org_slug):
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        subscription, secret = services.webhook_create(organization=request.organization, actor=request.user, **form.cleaned_data)
        _secret_keep_once(request, subscription, secret)
        messages.success(request, _("Webhook created. Copy the signing secret now: it is shown only once."))
        return redirect("webhook_detail", org_slug=org_slug, pk=subscription.pk)
    subscriptions = list(WebhookSubscription.objects.all())
    context = {
        "form": form,
        "subscriptions": subscriptions,
        "disabled": [subscription for subscription in subscriptions if subscription.disabled_at and not subscription.is_active],
    }
    return render(request, "webhooks/webhook_list.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request, org_slug, pk):
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    initial = {
        "url": subscription.url,
        "description": subscription.description,
        "events": subscription.events,
        "attainment_threshold_percent": subscription.attainment_threshold_percent,
    }
    form = WebhookForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.webhook_update(subscription=subscription, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Webhook saved."))
        return redirect("webhook_detail", org_slug=org_slug, pk=pk)
    deliveries = WebhookDelivery.objects.filter(subscription=subscription).prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
    )[:DELIVERY_LOG_LENGTH]
    context = {
        "subscription": subscription,
        "form": form,
        "deliveries": deliveries,
        "secret": _secret_pop(request, subscription.pk),
        "signature_header": SIGNATURE_HEADER,
    }
    return render(request, "webhooks/webhook_detail.html", context)


@admin_required
def webhook_secret_rotate(request, org_slug, pk):
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    # The lookup comes before the method check, so another organization's id is a 404 for every method.
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    secret = services.webhook_secret_rotate(subscription=subscription, actor=request.user)
    _secret_keep_once(request, subscription, secret)
    messages.warning(request, _("New signing secret created. The old one no longer signs deliveries; update your receiver."))
    return redirect("webhook_detail", org_slug=org_slug, pk=pk)


@admin_required
def webhook_toggle(request, org_slug, pk):
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    # The lookup comes before the method check, so another organization's id is a 404 for every method.
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    is_active = not subscription.is_active
    services.webhook_active_set(subscription=subscription, actor=request.user, is_active=is_active)
    messages.success(request, _("Webhook switched on.") if is_active else _("Webhook switched off."))
    return redirect("webhook_detail", org_slug=org_slug, pk=pk)


@admin_required
def webhook_delete(request, org_slug, pk):
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    # The lookup comes before the method check, so another organization's id is a 404 for every method.
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    services.webhook_delete(subscription=subscription, actor=request.user)
    messages.success(request, _("Webhook deleted."))
    return redirect("webhook_list", org_slug=org_slug)
