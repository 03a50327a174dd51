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
        response.data = {"detail": errors[0]["reason"] if errors else "", "errors": errors}
    elif isinstance(error, (Http404, exceptions.NotFound)):
        # Django's message names the model in English only ("No Deal matches …"); DRF's is translated.
        response.data = {"detail": str(exceptions.NotFound.default_detail)}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response


def _parse_error_reason(error: exceptions.ParseError) -> str:
    """Return the reason of a body DRF's JSONParser could not read, in the active language, with the position if known.

    DRF words the message in English and raises ParseError inside its `except`, so the
    JSONDecodeError with the line and column is the ParseError's `__context__`.
    """
    cause = error.__cause__ or error.__context__
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
