"""API content negotiation that rejects an unknown ?format= value with a 400 naming the accepted formats."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.settings import api_settings


class UnsupportedFormat(ValidationError):
    """A ValidationError for a ?format= value that no renderer of the view writes."""

    def __init__(self, value: str, formats: list[str]):
        self.value = value
        self.formats = formats
        message = _("Invalid value %(value)r; use one of: %(choices)s.") % {"value": value, "choices": ", ".join(formats)}
        super().__init__({api_settings.URL_FORMAT_OVERRIDE: [message]})


class FormatParameterNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, except that a format no renderer of the view has raises UnsupportedFormat, not Http404.

    The exception handler turns it into the API's 400 body with `field` "format", the
    value sent and the accepted formats.
    """

    def filter_renderers(self, renderers, format):
        matching = [renderer for renderer in renderers if renderer.format == format]
        if matching:
            return matching
        # dict.fromkeys drops repeated formats (two renderers may share one) and keeps the order.
        raise UnsupportedFormat(format, list(dict.fromkeys(renderer.format for renderer in renderers)))
