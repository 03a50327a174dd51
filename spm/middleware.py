"""Request middleware: the user's language and the tenant scope of /o/<org-slug>/ URLs."""

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import Resolver404, resolve
from django.utils import timezone, translation
from django_scopes import scope, scopes_disabled

from spm.models import Membership


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
        # The lookup is pinned to this user and slug, so it cannot leak another tenant's rows.
        with scopes_disabled():
            membership = (
                Membership.objects.select_related("organization", "user", "team")
                .filter(organization__slug=slug, user=request.user)
                .first()
            )
        if membership is None:
            raise Http404("No organization with this slug for this user.")

        organization = membership.organization
        request.organization = organization
        request.membership = membership
        with scope(organization=organization), timezone.override(organization.tzinfo):
            return self.get_response(request)
