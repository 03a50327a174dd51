"""Database ids read from requests: parsing and range checks shared by query strings and forms.

Every primary key is a BigAutoField, a signed 64-bit integer on PostgreSQL and SQLite.
SQLite raises OverflowError for a larger query parameter, and Django's `__in` lookup passes
such a value through unchecked, so ids are checked against this range before any query.
"""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404

# Largest value of a signed 64-bit integer (PostgreSQL bigint, SQLite INTEGER).
MAX_ID = 2**63 - 1

_DIGITS = re.compile(r"[0-9]+")


def id_parse(text: str) -> int | None:
    """Return `text` as an id from 0 to MAX_ID, or None for anything else.

    Only ASCII digits count: str.isdigit() also accepts "²" and "١٢", which int() rejects or reads.
    Surrounding whitespace is ignored.
    """
    text = str(text).strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _is_invalid_pk(field, value) -> bool:
    """Tell whether `value` cannot be a primary key of the field's model, for integer primary keys only."""
    model = field.queryset.model
    if field.to_field_name is not None or isinstance(value, model):
        return False
    if model._meta.pk.get_internal_type() not in ("AutoField", "BigAutoField", "SmallAutoField"):
        return False
    return id_parse(value) is None


class IdModelChoiceField(forms.ModelChoiceField):
    """ModelChoiceField that rejects a non-numeric or out-of-range id as an invalid choice before querying."""

    def to_python(self, value):
        if value not in self.empty_values and _is_invalid_pk(self, value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value})
        return super().to_python(value)


class IdModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """ModelMultipleChoiceField that rejects non-numeric or out-of-range ids as invalid choices before querying."""

    def _check_values(self, value):
        for pk in value:
            if _is_invalid_pk(self, pk):
                raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk})
        return super()._check_values(value)


def id_or_404(text: str | None) -> int:
    """Return `text` as an id, or raise Http404 when it cannot name any row (missing, not numeric, too large)."""
    parsed = id_parse(text or "")
    if parsed is None:
        raise Http404(f"Invalid id {text!r}.")
    return parsed
