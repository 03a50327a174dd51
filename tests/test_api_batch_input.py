"""How the API reads a batch body: its size limit, UTF-8, unknown fields and the batch-level messages."""

import io
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import translation
from django_scopes import scopes_disabled

from integrations.api.parsers import JsonBodyParser, RequestBodyTooLarge
from integrations.api.serializers import RECORD_FIELDS, STAGE_FIELDS
from pipelines.models import Deal
from tests.test_api import DEAL_RECORD, client_for, make_token

DEAL_FIELDS = (
    "account, amount, closed_at, created_at, currency, custom_fields, deal_source, deleted, deleted_at, entry_stage, "
    "expected_close_on, external_id, lost_reason, name, owner, owner_email, pipeline, probability, product, stage, status"
)


@pytest.fixture(autouse=True)
def _empty_throttle_cache():
    cache.clear()


@pytest.fixture
def write_plain(org, admin_member):
    _token, plain = make_token(org, "write", admin_member.user)
    return plain


def only_error(response) -> dict:
    body = response.json()
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


@pytest.mark.django_db
def test_full_batch_above_site_upload_limit(org, write_plain):
    records = [
        {
            **DEAL_RECORD,
            "external_id": f"D{index}",
            "name": f"Deal {index}",
            "owner_email": "rita@example.com",
            "pipeline": "Sales",
            "currency": "EUR",
            "probability": 50,
            "status": "open",
            "expected_close_on": "2017-03-01",
            "deal_source": "Inbound web form",
            "product": "GTX Pro",
            "lost_reason": "",
            "custom_fields": {"note": "n" * 200},
        }
        for index in range(settings.API_BATCH_MAX_RECORDS)
    ]
    body = json.dumps({"records": records})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = client_for(write_plain).post(reverse("api_deals"), body, content_type="application/json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["counts"]["deals"]["created"] == 5000
    with scopes_disabled():
        assert Deal.objects.filter(organization=org).count() == 5000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("en", "The request body is larger than the maximum of 16,777,216 bytes; send the records in smaller batches."),
        (
            "de",
            "Der Anfragetext ist größer als das Maximum von 16.777.216 Bytes; senden Sie die Datensätze in kleineren Stapeln.",
        ),
    ],
)
def test_body_above_api_limit_is_413(write_plain, language, detail):
    body = '{"records": [' + " " * (30 * 1024 * 1024) + "]}"

    response = client_for(write_plain, language).post(reverse("api_deals"), body, content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": detail}


def test_parser_limits_bytes_read(settings):
    # The limit also applies to the bytes read, for a stream whose Content-Length header is missing or too small.
    settings.API_MAX_BODY_BYTES = 10
    parser = JsonBodyParser()

    with translation.override("en"), pytest.raises(RequestBodyTooLarge) as raised:
        parser.parse(io.BytesIO(b'{"records": []}'))
    at_limit = parser.parse(io.BytesIO(b'{"a": 100}'))

    assert raised.value.status_code == 413
    assert str(raised.value.detail) == "The request body is larger than the maximum of 10 bytes; send the records in smaller batches."
    assert at_limit == {"a": 100}


@pytest.mark.django_db
def test_unknown_record_field_rejects_batch(org, write_plain):
    reason = f"Unknown field 'ammount'; records of this endpoint accept: {DEAL_FIELDS}."
    records = [{**DEAL_RECORD, "ammount": "99999", "foo": 1}, {**DEAL_RECORD, "external_id": "D2", "foo": 2}]

    response = client_for(write_plain).post(reverse("api_deals"), {"records": records}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": reason,
        "errors": [
            {"field": "records.0.ammount", "value": "99999", "reason": reason},
            {
                "field": "records.0.foo",
                "value": "1",
                "reason": f"Unknown field 'foo'; records of this endpoint accept: {DEAL_FIELDS}.",
            },
        ],
    }
    with scopes_disabled():
        assert Deal.objects.filter(organization=org).count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("en", "Unknown field 'recrods'; a batch accepts: currency, records, source."),
        ("de", "Unbekanntes Feld 'recrods'; ein Stapel akzeptiert: currency, records, source."),
    ],
)
def test_unknown_batch_field_is_400(write_plain, language, reason):
    batch = {"records": [], "recrods": [DEAL_RECORD]}

    response = client_for(write_plain, language).post(reverse("api_deals"), batch, format="json")

    assert response.status_code == 400
    assert only_error(response) == {"field": "recrods", "value": str([DEAL_RECORD]), "reason": reason}


@pytest.mark.django_db
def test_unknown_stage_field_is_400(write_plain):
    record = {"name": "Sales", "stages": [{"name": "Won", "kind": "won"}, {"name": "Demo", "probabilty": 40}]}

    response = client_for(write_plain).post(reverse("api_pipelines"), {"records": [record]}, format="json")

    assert response.status_code == 400
    assert only_error(response) == {
        "field": "records.0.stages.1.probabilty",
        "value": "40",
        "reason": "Unknown field 'probabilty'; a stage accepts: kind, name, probability.",
    }


@pytest.mark.django_db
def test_custom_fields_keys_stay_free(org, write_plain):
    record = {**DEAL_RECORD, "custom_fields": {"ammount": "1", "any key": [1, 2]}}

    response = client_for(write_plain).post(reverse("api_deals"), {"records": [record]}, format="json")

    assert response.status_code == 200
    with scopes_disabled():
        assert Deal.objects.get(organization=org).custom_fields == {"ammount": "1", "any key": [1, 2]}


def test_record_fields_match_writer():
    # The API's accepted fields are the keys RecordsWriter reads; a field added there must be added here.
    source = (Path(settings.BASE_DIR) / "pipelines" / "importers" / "record_writer.py").read_text()
    read = set(re.findall(r'(?:record|spec), "([a-z_]+)"', source)) | set(re.findall(r'record\.get\("([a-z_]+)"\)', source))
    read |= {"active_from", "active_to"}

    accepted = {name for fields in RECORD_FIELDS.values() for name in fields} | set(STAGE_FIELDS)

    assert accepted == read


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "batch", "field", "reason"),
    [
        (
            "en",
            {"source": "Hub Spot", "records": []},
            "source",
            "Invalid source; use 1 to 32 lower-case letters, digits, “_”, “.” or “-”, such as hubspot.",
        ),
        (
            "de",
            {"source": "Hub Spot", "records": []},
            "source",
            "Ungültige Quelle; verwenden Sie 1 bis 32 Kleinbuchstaben, Ziffern, „_“, „.“ oder „-“, zum Beispiel hubspot.",
        ),
        (
            "en",
            {"currency": "EURO", "records": []},
            "currency",
            "Invalid currency; give a three-letter ISO 4217 code in capital letters, such as EUR.",
        ),
        (
            "de",
            {"currency": "EURO", "records": []},
            "currency",
            "Ungültige Währung; geben Sie einen dreistelligen ISO-4217-Code in Großbuchstaben an, zum Beispiel EUR.",
        ),
    ],
)
def test_batch_format_messages(write_plain, language, batch, field, reason):
    response = client_for(write_plain, language).post(reverse("api_deals"), batch, format="json")

    assert response.status_code == 400
    assert only_error(response) == {"field": field, "value": batch[field], "reason": reason}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "body", "reason"),
    [
        (
            "en",
            '{"records": [{"name": "Müller"}]}'.encode("latin-1"),
            "The request body is not valid UTF-8 (byte 0xFC at offset 24); send the JSON encoded as UTF-8.",
        ),
        (
            "en",
            '{"records": []}'.encode("utf-16"),
            "The request body is not valid UTF-8 (byte 0xFF at offset 0); send the JSON encoded as UTF-8.",
        ),
        (
            "de",
            '{"records": []}'.encode("utf-16"),
            "Der Anfragetext ist kein gültiges UTF-8 (Byte 0xFF an Position 0); senden Sie das JSON in UTF-8 kodiert.",
        ),
    ],
)
def test_body_not_utf8_names_encoding(write_plain, language, body, reason):
    response = client_for(write_plain, language).post(reverse("api_deals"), body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": reason, "errors": [{"field": "non_field_errors", "value": None, "reason": reason}]}


@pytest.mark.django_db
def test_declared_charset_is_ignored(org, write_plain):
    # application/json defines no charset parameter (RFC 8259, section 11), so the body is read as UTF-8 whatever the header names.
    body = json.dumps({"records": [{**DEAL_RECORD, "name": "Müller"}]}, ensure_ascii=False).encode()

    response = client_for(write_plain).post(
        reverse("api_deals"), body, content_type="application/json; charset=iso-8859-1"
    )

    assert response.status_code == 200
    with scopes_disabled():
        assert Deal.objects.get(organization=org).name == "Müller"
