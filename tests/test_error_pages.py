"""Error pages: the layout head (favicon, language, translated title), also when a context processor fails."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import get_resolver
from django.utils import translation

from tests.factories import UserFactory

FAVICON = '<link rel="icon" href="/static/spm/favicon.svg" type="image/svg+xml">'


def failing_context_processor(request):
    raise RuntimeError("context processor failed")


@pytest.fixture
def broken_context_processor(settings):
    engine = dict(settings.TEMPLATES[0])
    engine["OPTIONS"] = {
        **engine["OPTIONS"],
        "context_processors": [*engine["OPTIONS"]["context_processors"], f"{__name__}.failing_context_processor"],
    }
    settings.TEMPLATES = [engine]


@pytest.mark.parametrize(
    ("language", "title", "heading"),
    [
        ("de", "<title>Serverfehler · SPM</title>", '<h1 class="h3">Serverfehler</h1>'),
        ("en", "<title>Server error · SPM</title>", '<h1 class="h3">Server error</h1>'),
    ],
)
def test_server_error_survives_broken_processor(db, client, broken_context_processor, language, title, heading):
    client.force_login(UserFactory())
    client.raise_request_exception = False

    # The start page renders a template, so the failing context processor raises there.
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=language)

    page = response.content.decode()
    assert response.status_code == 500
    assert f'<html lang="{language}">' in page
    assert title in page
    assert heading in page
    assert FAVICON in page


@pytest.mark.parametrize(
    ("status", "language", "title"),
    [
        (400, "de", "<title>Ungültige Anfrage · SPM</title>"),
        (400, "en", "<title>Bad request · SPM</title>"),
        (403, "de", "<title>Zugriff verweigert · SPM</title>"),
        (403, "en", "<title>Access denied · SPM</title>"),
        (500, "de", "<title>Serverfehler · SPM</title>"),
        (500, "en", "<title>Server error · SPM</title>"),
    ],
)
def test_error_handler_pages_have_layout_head(db, status, language, title):
    handler = get_resolver().resolve_error_handler(status)
    request = RequestFactory().get("/")

    with translation.override(language):
        if status == 500:
            response = handler(request)
        else:
            response = handler(request, exception=PermissionDenied() if status == 403 else ValueError())

    page = response.content.decode()
    assert response.status_code == status
    assert f'<html lang="{language}">' in page
    assert title in page
    assert FAVICON in page


def test_not_found_page_has_layout_head(db, client):
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="de")

    page = response.content.decode()
    assert response.status_code == 404
    assert '<html lang="de">' in page
    assert "<title>Seite nicht gefunden · SPM</title>" in page
    assert FAVICON in page


@pytest.mark.parametrize(
    ("language", "title"),
    [("de", "<title>Formular abgelaufen · SPM</title>"), ("en", "<title>Form expired · SPM</title>")],
)
def test_csrf_failure_page_has_layout_head(db, language, title):
    """A POST with a stale security token gets SPM's page in the user's language, not Django's built-in one."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)

    response = client.post("/accounts/login/", {"login": "x@example.com", "password": "x"}, HTTP_ACCEPT_LANGUAGE=language)

    page = response.content.decode()
    assert response.status_code == 403
    assert f'<html lang="{language}">' in page
    assert title in page
    assert FAVICON in page


@pytest.mark.parametrize(("language", "detail"), [("de", "Nicht gefunden."), ("en", "Not found.")])
def test_api_path_not_found_is_json(db, client, language, detail):
    """An API address that matches no URL (a word where the id goes) gets the API's JSON body, not the HTML page."""
    response = client.get("/api/v1/deals/abc/", HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("path", ["/api/v1/deals/abc/", "/api/v1/no-such-endpoint", "/api/v2/deals/"])
@pytest.mark.parametrize(("language", "detail"), [("de", "Nicht gefunden."), ("en", "Not found.")])
def test_api_path_not_found_is_json_with_debug(db, client, settings, path, language, detail):
    """With DEBUG on, Django skips handler404 and would show its technical HTML page."""
    settings.DEBUG = True

    response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("debug", [False, True])
def test_api_path_without_slash_is_redirected(db, client, settings, debug):
    """The catch-all /api/ pattern keeps the APPEND_SLASH redirect to an existing endpoint."""
    settings.DEBUG = debug

    response = client.get("/api/v1/deals?updated_since=2017-01-01")

    assert response.status_code == 301
    assert response["Location"] == "/api/v1/deals/?updated_since=2017-01-01"
