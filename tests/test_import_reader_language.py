"""Import and API messages in the reader's language: the accepted status words and unreadable JSON bodies."""

import pytest
from django.urls import reverse
from django.utils import translation
from django_scopes import scope
from rest_framework.test import APIClient

from integrations.api.services import api_token_create
from pipelines.forms import ImportMappingForm
from tests.import_helpers import export_folder, run_file_import

MAPPING = {"external_id": "ID", "owner": "Owner", "created_at": "Created", "status": "Status"}


@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("en", "unknown status; expected open, won or lost"),
        ("de", "unbekannter Status; zulässig sind: offen/open, gewonnen/won, verloren/lost"),
    ],
)
def test_unknown_status_lists_accepted_words(org, tmp_path, language, reason):
    rows = "ID,Owner,Created,Status\nX-1,Eva Roth,2025-02-03,pending\nX-2,Eva Roth,2025-02-03,offen\n"
    folder = export_folder(tmp_path / "generic", {"deals.csv": rows})

    result = run_file_import(org, "generic", folder, options={"mapping": MAPPING})
    with translation.override(language):
        reasons = [(error.line, str(error.column), error.value, str(error.reason)) for error in result.errors]

    assert reasons == [(2, "Status", "pending", reason)]


def test_status_label_lists_german_words():
    with translation.override("de"):
        form = ImportMappingForm(columns=["Status"])
        label = str(form.fields["status"].label)

    assert label == "Status (offen/open, gewonnen/won, verloren/lost)"


@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("en", 'The request body is not valid JSON (line 1, column 14); send a JSON object such as {"records": [...]}.'),
        (
            "de",
            "Der Anfragetext ist kein gültiges JSON (Zeile 1, Spalte 14); senden Sie ein JSON-Objekt wie "
            '{"records": [...]}.',
        ),
    ],
)
def test_api_invalid_json_is_400_with_errors(org, admin_member, language, reason):
    with scope(organization=org):
        _token, plain = api_token_create(organization=org, name="write token", scope="write", actor=admin_member.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE=language)

    response = client.post(reverse("api_deals"), data='{"records": [', content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": reason,
        "errors": [{"field": "non_field_errors", "value": None, "reason": reason}],
    }


def test_api_body_not_utf8_is_400_with_errors(org, admin_member):
    with scope(organization=org):
        _token, plain = api_token_create(organization=org, name="write token", scope="write", actor=admin_member.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE="en")

    response = client.post(reverse("api_deals"), data=b'{"records": "\xff"}', content_type="application/json")

    reason = "The request body is not valid UTF-8 (byte 0xFF at offset 13); send the JSON encoded as UTF-8."
    assert response.status_code == 400
    assert response.json() == {"detail": reason, "errors": [{"field": "non_field_errors", "value": None, "reason": reason}]}
