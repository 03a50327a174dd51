"""Request middleware: language, tenant scope of /o/<org-slug>/ URLs, two-factor duty, audit actor, broker state."""

import logging
import threading
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_scopes import scope, scopes_disabled
from kombu.exceptions import OperationalError as BrokerOperationalError

from spm import audit
from spm.accounts import has_totp
from spm.celery import recompute_deferred_organizations
from spm.context_processors import (
    LAST_ORGANIZATION_COOKIE,
    LAST_ORGANIZATION_COOKIE_SECONDS,
)
from spm.models import Membership

logger = logging.getLogger(__name__)


class UserLanguageMiddleware:
    """Prefer the language a logged-in user chose over the browser's Accept-Language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


# Methods of the pages under /o/<org-slug>/. The API under /api/ has its own rules.
ORGANIZATION_PAGE_METHODS = ["GET", "HEAD", "POST"]


class OrganizationMiddleware:
    """Resolve the organization from the URL, require membership and open its scope.

    Every URL with an `org_slug` argument runs inside `django_scopes.scope`, so a
    query on a tenant-owned model can only see that organization's rows. A user
    who is not a member gets 404, which does not reveal whether the slug exists.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        slug = match.kwargs.get("org_slug")
        if slug is None:
            return self.get_response(request)

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        # The filter on this user and slug can only match the user's own membership row.
        with scopes_disabled():
            membership = (
                Membership.objects.select_related("organization", "user", "team")
                .filter(organization__slug=slug, user=request.user)
                .first()
            )
        if membership is None:
            raise Http404("No organization with this slug for this user.")
        # Pages under /o/ are read with GET and changed by form POSTs. A view without its own method
        # check would run its GET code for PUT, PATCH, DELETE or OPTIONS, so those get 405 here.
        if request.method not in ORGANIZATION_PAGE_METHODS:
            return HttpResponseNotAllowed(ORGANIZATION_PAGE_METHODS)

        organization = membership.organization
        request.organization = organization
        request.membership = membership
        if organization.requires_mfa and not has_totp(request.user):
            messages.warning(
                request,
                _("%(organization)s requires two-factor authentication. Set up an authenticator app to continue.")
                % {"organization": organization.name},
            )
            response = redirect("mfa_activate_totp")
        else:
            with scope(organization=organization), timezone.override(organization.tzinfo):
                response = self.get_response(request)
        # The account pages outside organizations show this organization's menu (spm.context_processors).
        # A cookie rather than the session, so that no request writes the session for it.
        if request.COOKIES.get(LAST_ORGANIZATION_COOKIE) != slug:
            response.set_cookie(
                LAST_ORGANIZATION_COOKIE,
                slug,
                max_age=LAST_ORGANIZATION_COOKIE_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


class AuditActorMiddleware:
    """Make the request's user the actor of audit rows written while the request runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user if request.user.is_authenticated else None
        actor_token = audit.current_actor.set(user)
        started_token = audit.request_started_at.set(timezone.now())
        try:
            return self.get_response(request)
        finally:
            audit.current_actor.reset(actor_token)
            audit.request_started_at.reset(started_token)


# Seconds a broker check result is reused, so a page view costs at most one check per interval and process.
BROKER_CHECK_INTERVAL_SECONDS = 5.0
# Upper bound of one check. A broker that does not respond within it counts as down.
BROKER_CHECK_TIMEOUT_SECONDS = 0.5


class _BrokerStatus:
    """Cached result of "does the Celery broker accept connections?" for this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._available = True

    def is_available(self) -> bool:
        from spm.celery import app as celery_app

        # Eager mode (no broker configured) runs tasks in-process, so nothing can be out of date.
        if celery_app.conf.task_always_eager or celery_app.conf.broker_url.startswith("memory://"):
            return True
        with self._lock:
            if time.monotonic() - self._checked_at < BROKER_CHECK_INTERVAL_SECONDS:
                return self._available
            connection = celery_app.connection_for_write()
            try:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_CHECK_TIMEOUT_SECONDS)
                available = True
            except Exception as error:  # kombu raises transport-specific errors for an unreachable broker
                logger.warning("Celery broker unreachable: %s", error)
                available = False
            finally:
                connection.release()
            self._available = available
            self._checked_at = time.monotonic()
            return available

    def reset(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")


broker_status = _BrokerStatus()


class BrokerStatusMiddleware:
    """Degrade gracefully while the Celery broker (Redis) is down.

    Pages of an organization still render from the database, and a full-page GET
    gets a warning that the numbers may be out of date, because recomputes cannot
    be queued. A change whose KPI recompute could not be queued after it committed
    stays saved, and its user is told that the figures follow later (see
    pipelines.services.kpi_recompute_defer). A request that fails because a task
    could not be sent returns 503 with an explanation instead of a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "GET"
            and request.user.is_authenticated
            and not getattr(request, "htmx", False)
            and request.path_info.startswith("/o/")
            and not broker_status.is_available()
        ):
            messages.warning(
                request,
                _(
                    "The background service is unavailable, so the numbers may be out of date. "
                    "They are updated automatically once it is back."
                ),
            )
        deferred = set()
        token = recompute_deferred_organizations.set(deferred)
        try:
            response = self.get_response(request)
        finally:
            recompute_deferred_organizations.reset(token)
        if deferred and request.path_info.startswith("/o/"):
            messages.warning(
                request,
                _(
                    "Your change is saved. The background service is unavailable, so the figures are updated "
                    "within an hour after it is back."
                ),
            )
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, BrokerOperationalError):
            return None
        broker_status.reset()
        logger.error("Task could not be queued, broker unreachable path=%s error=%s", request.path_info, exception)
        return render(request, "spm/broker_unavailable.html", status=503)
