"""Error bodies of /api/v1/: every error names the field, the value sent and how to fix it."""

import json

from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.views import exception_handler


def api_exception_handler(error, context):
    """Return DRF's response with the body `{"detail": …, "errors": [{"field", "value", "reason"}]}`.

    `errors` lists one entry per invalid value of a ValidationError, or the one
    reason of a request body that is not valid JSON; other errors (401, 403,
    404, 429) carry only `detail`.
    """
    response = exception_handler(error, context)
    if response is None:
        return None
    if isinstance(error, exceptions.ParseError):
        reason = _parse_error_reason(error)
        response.data = {"detail": reason, "errors": [{"field": "non_field_errors", "value": None, "reason": reason}]}
    elif isinstance(error, exceptions.ValidationError):
        request = context.get("request")
        sent = _sent_values(request)
        errors = []
        _flatten(error.detail, "", sent, errors)
        data = getattr(request, "_full_data", None)
        for entry in errors:
            if entry["value"] is None and entry["field"].startswith("records."):
                value = _value_at(data, entry["field"])
                entry["value"] = None if value is None else str(value)[:200]
        response.data = {"detail": errors[0]["reason"] if errors else "", "errors": errors}
    elif isinstance(error, (Http404, exceptions.NotFound)):
        # Django's message names the model in English only ("No Deal matches …"); DRF's is translated.
        response.data = {"detail": str(exceptions.NotFound.default_detail)}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response


def _parse_error_reason(error: exceptions.ParseError) -> str:
    """Return the reason of a body the API's parser could not read, in the active language, with the position if known.

    The parser words the message in English and raises ParseError from the
    UnicodeDecodeError or JSONDecodeError, which is the ParseError's `__cause__`.
    """
    cause = error.__cause__ or error.__context__
    if isinstance(cause, UnicodeDecodeError):
        return _(
            "The request body is not valid UTF-8 (byte 0x%(byte)02X at offset %(offset)d); "
            "send the JSON encoded as UTF-8."
        ) % {"byte": cause.object[cause.start], "offset": cause.start}
    if isinstance(cause, json.JSONDecodeError):
        return _(
            "The request body is not valid JSON (line %(line)d, column %(column)d); "
            "send a JSON object such as {\"records\": [...]}."
        ) % {"line": cause.lineno, "column": cause.colno}
    return _("The request body is not valid JSON; send a JSON object such as {\"records\": [...]}.")


def _sent_values(request) -> dict:
    if request is None:
        return {}
    values = dict(request.query_params.items())
    data = getattr(request, "_full_data", None)
    if isinstance(data, dict):
        values.update({key: value for key, value in data.items() if key != "records"})
    return values


def _value_at(data, field: str):
    """Return the value at a path such as `records.0.ammount` in the request body, or None when there is none."""
    value = data
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _flatten(detail, prefix: str, sent: dict, errors: list) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), sent, errors)
    elif isinstance(detail, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            for item in detail:
                field = prefix or "non_field_errors"
                value = sent.get(field)
                errors.append({"field": field, "value": None if value is None else str(value)[:200], "reason": str(item)})
        else:
            for index, item in enumerate(detail):
                _flatten(item, f"{prefix}[{index}]", sent, errors)
    else:
        errors.append({"field": prefix or "non_field_errors", "value": None, "reason": str(detail)})
