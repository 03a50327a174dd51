from django_scopes import scopes_disabled

from spm.models import Membership

# Cookie with the slug of the organization whose pages the browser opened last (set by OrganizationMiddleware).
# It only picks a menu: the slug counts only where the user is a member.
LAST_ORGANIZATION_COOKIE = "spm_last_organization"
LAST_ORGANIZATION_COOKIE_SECONDS = 365 * 24 * 3600


def organization(request):
    membership = getattr(request, "membership", None)
    if membership is None and _is_account_page(request):
        membership = _account_page_membership(request)
    return {
        "organization": membership.organization if membership is not None else None,
        "membership": membership,
    }


def _is_account_page(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and match.func.__module__.startswith("allauth.")


def _account_page_membership(request) -> Membership | None:
    """Return the membership whose menu the account pages (django-allauth) show.

    That is the organization the browser opened last, if the user is a member of it, or their only one. The
    menu links only; the page itself runs outside every organization's scope.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    # A user's memberships span organizations; the filter pins them to this user.
    with scopes_disabled():
        memberships = Membership.objects.filter(user=user).select_related("organization")
        slug = request.COOKIES.get(LAST_ORGANIZATION_COOKIE)
        if slug:
            last = memberships.filter(organization__slug=slug).first()
            if last is not None:
                return last
        candidates = list(memberships[:2])
    return candidates[0] if len(candidates) == 1 else None
