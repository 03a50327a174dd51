"""View decorators for HTTP methods under /o/<org-slug>/."""

import functools
from collections.abc import Callable

from django.http import HttpResponseNotAllowed


def lookup_then_post_only(lookup: Callable[..., dict]):
    """Let only POST reach the view, and return 405 for other methods only after `lookup` has found its objects.

    `lookup(request, **url_kwargs)` receives the URL's keyword arguments except
    `org_slug`, raises Http404 for objects the member may not see, and returns
    the keyword arguments that the view receives in their place. Because the
    lookup runs first, an id of another organization or of a member out of
    sight is a 404 for every method, and a 405 never confirms that it exists.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, org_slug, **url_kwargs):
            found = lookup(request, **url_kwargs)
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            return view(request, org_slug, **found)

        return wrapped

    return decorator
