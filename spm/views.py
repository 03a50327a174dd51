from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import is_valid_path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language
from django.views import defaults
from django.views.decorators.http import require_POST
from django_scopes import scopes_disabled
from rest_framework.exceptions import NotFound

from spm.models import Membership, Role


@login_required
def home(request):
    # A user's memberships span organizations; the filter pins them to this user.
    with scopes_disabled():
        memberships = list(
            Membership.objects.filter(user=request.user).select_related("organization").order_by("organization__name")
        )
    if len(memberships) == 1:
        return redirect(_landing_url(memberships[0]))
    return render(request, "spm/home.html", {"memberships": memberships})


def organization_home(request, org_slug):
    """Send a member who opens /o/<slug>/ to their role's start page: reps to their scorecard, others to the dashboard."""
    return redirect(_landing_url(request.membership))


def _landing_url(membership: Membership) -> str:
    slug = membership.organization.slug
    return f"/o/{slug}/me/" if membership.role == Role.REP else f"/o/{slug}/dashboard/"


@require_POST
def set_language(request):
    """Switch the interface language and remember it on the user, then go back."""
    language = request.POST.get("language", "")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        next_url = "/"
    response = redirect(next_url)
    if not check_for_language(language) or language not in dict(settings.LANGUAGES):
        return response

    if request.user.is_authenticated and request.user.language != language:
        request.user.language = language
        request.user.save(update_fields=["language"])
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


def page_not_found(request, exception):
    """Return the API's JSON error body for a path under /api/ that matches no URL, else the HTML page."""
    if request.path.startswith("/api/"):
        return _api_not_found_response()
    return defaults.page_not_found(request, exception)


def api_path_not_found(request, unmatched_path):
    """Return the API's JSON 404 for a path under /api/ that no API pattern matches.

    handler404 returns the same body, but Django calls it only with DEBUG off and shows its
    technical HTML page with DEBUG on. Because this pattern matches every such path,
    CommonMiddleware no longer redirects /api/v1/deals to /api/v1/deals/ (APPEND_SLASH),
    so this view sends that redirect itself.
    """
    if settings.APPEND_SLASH and not request.path_info.endswith("/"):
        match = is_valid_path(f"{request.path_info}/", getattr(request, "urlconf", None))
        if match and match.func is not api_path_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return _api_not_found_response()


def _api_not_found_response() -> JsonResponse:
    # DRF's message and translation, as the API's own 404 bodies use.
    return JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
