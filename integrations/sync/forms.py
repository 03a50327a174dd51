"""Forms of the integrations page: add a CRM connection, and change its token, address, pipelines and schedule."""

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.sync.models import CrmProvider
from integrations.webhooks.outbound import (
    OutboundURLError,
    loopback_allowed,
    url_check,
    url_validate,
)


def clean_base_url(value: str) -> str:
    """Accept an https address whose host is public; http and private hosts only with WEBHOOKS_ALLOW_LOOPBACK.

    The same check runs again before every request (integrations.webhooks.outbound).
    """
    if not value:
        return ""
    schemes = ("http", "https") if loopback_allowed() else ("https",)
    try:
        url_check(value, schemes=schemes)
        return url_validate(value).rstrip("/")
    except OutboundURLError as error:
        raise forms.ValidationError(str(error)) from None


class CrmConnectionCreateForm(forms.Form):
    provider = forms.ChoiceField(label=_("CRM"), choices=CrmProvider.choices)
    access_token = forms.CharField(
        label=_("Access token"),
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "HubSpot: the access token of a private app with read scopes for deals, owners and activities. "
            "Pipedrive: your personal API token. It is stored in the database and shown only masked."
        ),
    )
    base_url = forms.URLField(
        label=_("API address"),
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text=_("Leave empty for the CRM's own API (api.hubapi.com or api.pipedrive.com)."),
    )

    def __init__(self, *args, taken: set[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.taken = taken
        # Only CRMs not yet connected are offered; clean_provider still rejects a forged value.
        self.fields["provider"].choices = [choice for choice in CrmProvider.choices if choice[0] not in taken]

    def clean_provider(self) -> str:
        provider = self.cleaned_data["provider"]
        if provider in self.taken:
            raise forms.ValidationError(
                gettext("This organization is already connected to %(crm)s; change that connection instead.")
                % {"crm": CrmProvider(provider).label}
            )
        return provider

    def clean_base_url(self) -> str:
        return clean_base_url(self.cleaned_data["base_url"])


class CrmConnectionSettingsForm(forms.Form):
    pipeline_ids = forms.MultipleChoiceField(
        label=_("Pipelines to sync"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Deals of other pipelines are not synced."),
    )
    is_enabled = forms.BooleanField(label=_("Sync every 15 minutes"), required=False)
    access_token = forms.CharField(
        label=_("New access token"),
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave empty to keep the stored token."),
    )
    base_url = forms.URLField(label=_("API address"), required=False, max_length=300, assume_scheme="https")

    def __init__(self, *args, connection, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "pipeline_ids": connection.pipeline_ids,
                "is_enabled": connection.is_enabled,
                "base_url": connection.base_url,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["pipeline_ids"].choices = [
            (str(entry["id"]), entry["label"]) for entry in connection.available_pipelines
        ]

    def clean_base_url(self) -> str:
        return clean_base_url(self.cleaned_data["base_url"])
