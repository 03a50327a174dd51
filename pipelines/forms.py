"""Forms of the import pages: upload, column mapping for generic files, exchange-rate upload."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pipelines.importers.generic import GENERIC_FIELDS, REQUIRED_FIELDS
from pipelines.importers.upload_checks import empty_file_error
from pipelines.models import ImportSource
from pipelines.upload_limits import upload_too_large_message
from spm.currencies import is_currency_code

UPLOAD_SOURCES = [choice for choice in ImportSource.choices if choice[0] != ImportSource.MAVEN]
DATE_ORDER_CHOICES = [
    ("", _("Reject dates that read both ways")),
    ("dmy", _("DD/MM/YYYY (03/04/2025 is 3 April)")),
    ("mdy", _("MM/DD/YYYY (03/04/2025 is 4 March)")),
]


def empty_upload_check(upload) -> None:
    """Raise ValidationError naming the file when `upload` has 0 bytes, in the words that `import_crm` uses.

    The file fields allow empty files, because Django's own message does not name the file.
    """
    if upload.size == 0:
        raise forms.ValidationError(str(empty_file_error(upload.name)))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files and cleans to a list of them."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx,.zip"}))
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single_clean = super().clean
        if isinstance(data, (list, tuple)):
            return [single_clean(item, initial) for item in data]
        return [single_clean(data, initial)]


class ImportUploadForm(forms.Form):
    source = forms.ChoiceField(label=_("Source"), choices=UPLOAD_SOURCES)
    files = MultipleFileField(
        label=_("Files"),
        help_text=_("CSV, XLSX or a ZIP file; for a Pipedrive change log, all its CSV files."),
    )
    currency = forms.CharField(
        label=_("Currency of the amounts"),
        required=False,
        max_length=3,
        help_text=_("ISO code such as EUR; empty means the organization's currency or the file's currency column."),
    )
    date_order = forms.ChoiceField(label=_("Date order"), choices=DATE_ORDER_CHOICES, required=False)

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if currency and not is_currency_code(currency):
            raise forms.ValidationError(
                gettext("%(value)s is not an ISO 4217 currency code; use a code such as EUR, CHF or USD.")
                % {"value": self.cleaned_data["currency"].strip()}
            )
        return currency

    def clean_files(self) -> list:
        files = self.cleaned_data["files"]
        for upload in files:
            empty_upload_check(upload)
        limit = settings.IMPORT_MAX_UPLOAD_BYTES
        if sum(upload.size for upload in files) > limit:
            raise forms.ValidationError(upload_too_large_message(limit))
        return files


class ImportMappingForm(forms.Form):
    """One select per deal field, listing the file's columns; the required fields must be chosen."""

    def __init__(self, *args, columns: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", _("– not in the file –"))] + [(column, column) for column in columns if column]
        for field, label in GENERIC_FIELDS.items():
            self.fields[field] = forms.ChoiceField(label=label, choices=choices, required=field in REQUIRED_FIELDS)

    def mapping(self) -> dict[str, str]:
        return {field: column for field, column in self.cleaned_data.items() if column}


class ExchangeRateUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Exchange rates file"),
        help_text=_("The ECB reference rates CSV (Date,USD,JPY,… per 1 EUR) or a list with currency, date, rate."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx"}),
        allow_empty_file=True,
    )
    # The import list page also shows ImportUploadForm, whose date order select has the default id.
    date_order = forms.ChoiceField(
        label=_("Date order"),
        choices=DATE_ORDER_CHOICES,
        required=False,
        widget=forms.Select(attrs={"id": "id_rates_date_order"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        empty_upload_check(upload)
        return upload
