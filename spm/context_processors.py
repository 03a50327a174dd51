from django_scopes import scopes_disabled

from spm.models import Membership

# Session key of the slug of the organization whose pages the user opened last (set by OrganizationMiddleware).
LAST_ORGANIZATION_SESSION_KEY = "spm_last_organization"


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

    That is the organization the user opened last in this session, or their only one. The
    menu links only; the page itself runs outside every organization's scope.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    # A user's memberships span organizations; the filter pins them to this user.
    with scopes_disabled():
        memberships = Membership.objects.filter(user=user).select_related("organization")
        slug = request.session.get(LAST_ORGANIZATION_SESSION_KEY)
        if slug:
            last = memberships.filter(organization__slug=slug).first()
            if last is not None:
                return last
        candidates = list(memberships[:2])
    return candidates[0] if len(candidates) == 1 else None
