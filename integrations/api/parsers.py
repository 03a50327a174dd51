"""The API's JSON body parser: UTF-8 only, with its own size limit in place of DATA_UPLOAD_MAX_MEMORY_SIZE.

DRF's JSONParser reads the body through Django's `request.body`, which rejects anything
above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default) with an HTML error page. A full
batch of API_BATCH_MAX_RECORDS records is larger than that, and the site-wide limit
should stay small for the HTML forms. This parser is not a JSONParser subclass, so DRF
hands it the unread request stream, and it reads at most API_MAX_BODY_BYTES.
"""

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings
from rest_framework.utils import json

# Bytes read from the request stream at a time, so a short read cannot end the body early.
READ_CHUNK_BYTES = 64 * 1024


class RequestBodyTooLarge(APIException):
    """A request body above API_MAX_BODY_BYTES: 413 with a `detail` that names the limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_body_too_large"

    def __init__(self, limit: int):
        super().__init__(
            _("The request body is larger than the maximum of %(limit)s bytes; send the records in smaller batches.")
            % {"limit": number_format(limit, force_grouping=True)}
        )


class JsonBodyParser(BaseParser):
    """Parse an application/json body of at most API_MAX_BODY_BYTES, decoded as UTF-8.

    JSON exchanged between systems must be UTF-8 (RFC 8259, section 8.1), and the
    application/json media type defines no charset parameter (section 11), so a charset
    in the Content-Type header is ignored. Raises RequestBodyTooLarge, or ParseError with the
    UnicodeDecodeError or JSONDecodeError as its cause; the exception handler words the
    message from that cause.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        if request is not None and content_length(request.META) > limit:
            # Rejected before reading, so an oversized upload is not buffered at all.
            raise RequestBodyTooLarge(limit)
        body = read_at_most(stream, limit + 1)
        if len(body) > limit:
            raise RequestBodyTooLarge(limit)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError("The request body is not valid UTF-8.") from error
        parse_constant = json.strict_constant if api_settings.STRICT_JSON else None
        try:
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as error:
            raise ParseError("The request body is not valid JSON.") from error


def content_length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def read_at_most(stream, size: int) -> bytes:
    """Read from `stream` until it ends or `size` bytes are read."""
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, READ_CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
