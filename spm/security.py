"""Role checks for views under /o/<org-slug>/, on top of OrganizationMiddleware's membership check."""

from functools import wraps

from django.http import Http404

from spm.models import Role


def role_required(*roles: str):
    """Let only members with one of `roles` reach the view; everyone else gets 404.

    404 rather than 403, because a rep need not learn which admin pages exist.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None or membership.role not in roles:
                raise Http404("Not available for this role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


admin_required = role_required(Role.ADMIN)
