"""Form widgets shared by the apps."""

from django import forms

ISO_DATE_FORMAT = "%Y-%m-%d"


class IsoDateInput(forms.DateInput):
    """An `<input type="date">` whose value is always ISO 8601 (2016-10-01).

    Browsers accept only yyyy-mm-dd in a date input's value attribute and show
    the field empty for anything else, so the language's date format
    (01.10.2016 in German) would make a form post the field as empty.
    `DateField` parses the ISO value in every language.
    """

    input_type = "date"

    def __init__(self, attrs=None, format=None):
        super().__init__(attrs=attrs, format=format or ISO_DATE_FORMAT)


class IsoTimeInput(forms.TimeInput):
    """An `<input type="time">` whose value is always hh:mm, which browsers accept in every language."""

    input_type = "time"

    def __init__(self, attrs=None, format=None):
        super().__init__(attrs=attrs, format=format or "%H:%M")
