"""spm.http.lookup_then_post_only: the lookup's 404 comes before the 405 for methods other than POST."""

import pytest
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from spm.http import lookup_then_post_only

KNOWN_ID = 7


def thing_lookup(request, thing_id):
    if thing_id != KNOWN_ID:
        raise Http404("No such thing.")
    return {"thing": f"thing-{thing_id}"}


@lookup_then_post_only(thing_lookup)
def thing_delete(request, org_slug, thing):
    """Delete a thing."""
    return HttpResponse(f"{org_slug}:{thing}")


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_unknown_id_is_404_for_every_method(method):
    request = getattr(RequestFactory(), method)("/o/acme/things/8/delete/")

    with pytest.raises(Http404):
        thing_delete(request, org_slug="acme", thing_id=8)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_known_id_is_405_for_other_methods(method):
    request = getattr(RequestFactory(), method)("/o/acme/things/7/delete/")

    response = thing_delete(request, org_slug="acme", thing_id=KNOWN_ID)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_post_passes_lookup_result():
    request = RequestFactory().post("/o/acme/things/7/delete/")

    response = thing_delete(request, org_slug="acme", thing_id=KNOWN_ID)

    assert response.status_code == 200
    assert response.content == b"acme:thing-7"


def test_wrapped_view_keeps_name_and_docstring():
    assert thing_delete.__name__ == "thing_delete"
    assert thing_delete.__doc__ == "Delete a thing."
