"""The form that creates an API token."""

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.api.models import ApiTokenScope


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        widget=forms.TextInput(attrs={"class": "form-control"}),
        help_text=_("What the token is for, e.g. “HubSpot sync” or “BI export”.")
    )
    scope = forms.ChoiceField(
        label=_("Scope"),
        choices=ApiTokenScope.choices,
        initial=ApiTokenScope.READ,
        widget=forms.Select(attrs={"class": "form-select"}),
        help_text=_("Read tokens can only read; write tokens can also create and update records."),
    )
