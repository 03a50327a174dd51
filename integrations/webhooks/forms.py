from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from integrations.webhooks import outbound
from integrations.webhooks.models import WebhookEvent


class WebhookForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        help_text=_("An http:// or https:// address on the internet that accepts POST requests with JSON."),
        widget=forms.URLInput(attrs={"class": "form-control", "placeholder": "https://example.com/hooks/spm"}),
    )
    description = forms.CharField(
        label=_("Description"), max_length=200, required=False, widget=forms.TextInput(attrs={"class": "form-control"})
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event.")},
    )
    attainment_threshold_percent = forms.DecimalField(
        label=_("Attainment threshold (%)"),
        initial=Decimal("100"),
        min_value=Decimal("1"),
        max_value=Decimal("500"),
        max_digits=5,
        decimal_places=1,
        localize=True,
        help_text=_("Only for the attainment event: it fires when attainment rises to this percentage, e.g. 100."),
        widget=forms.TextInput(attrs={"class": "form-control", "inputmode": "decimal"}),
    )

    def clean_url(self):
        try:
            return outbound.url_validate(self.cleaned_data["url"])
        except outbound.OutboundURLError as error:
            raise ValidationError(str(error)) from None
