import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from integrations.capture.services import CALENDAR_MAX_BYTES, calendar_feed_url_validate, domain_normalize
from integrations.webhooks import outbound
from pipelines.models import Account
from spm.ids import IdModelChoiceField

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class CalendarFeedForm(forms.Form):
    url = forms.CharField(
        label=_("Calendar feed URL (ICS)"),
        max_length=1000,
        help_text=_("The private address of your calendar in iCalendar format, starting with https:// or webcal://. It is read every hour."),
        widget=forms.URLInput(attrs={"class": "form-control"}),
    )

    def clean_url(self):
        try:
            return calendar_feed_url_validate(self.cleaned_data["url"])
        except outbound.OutboundURLError as error:
            raise ValidationError(str(error)) from None


class CalendarUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Calendar file (.ics)"),
        help_text=_("Meetings of the last 180 days and the next 60 days are read."),
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".ics,text/calendar"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > CALENDAR_MAX_BYTES:
            raise ValidationError(
                _("%(name)s is larger than %(size)s MB; export a shorter date range.")
                % {"name": upload.name, "size": CALENDAR_MAX_BYTES // (1024 * 1024)}
            )
        return upload


class MailboxForm(forms.Form):
    host = forms.CharField(label=_("IMAP server"), max_length=253, widget=forms.TextInput(attrs={"class": "form-control"}))
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=993, widget=forms.NumberInput(attrs={"class": "form-control"}))
    use_ssl = forms.BooleanField(label=_("Use SSL/TLS"), required=False, initial=True)
    username = forms.CharField(label=_("User name"), max_length=200, widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off"}))
    password = forms.CharField(
        label=_("Password"),
        max_length=500,
        required=False,
        help_text=_("Stored in the SPM database in clear text, because the poller logs in with it. Leave empty to keep the stored password."),
        widget=forms.PasswordInput(attrs={"class": "form-control", "autocomplete": "new-password"}),
    )
    folder = forms.CharField(label=_("Folder"), max_length=200, initial="INBOX", widget=forms.TextInput(attrs={"class": "form-control"}))
    is_active = forms.BooleanField(label=_("Read this mailbox every five minutes"), required=False, initial=True)

    def __init__(self, *args, has_password: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_password = has_password

    def clean_host(self):
        host = self.cleaned_data["host"].strip()
        normalized = _host_normalize(host)
        if normalized is None:
            raise ValidationError(
                _(
                    "%(host)s is not a valid host name; enter a name such as imap.example.com or an IP address, "
                    "without a port or protocol (the port has its own field)."
                )
                % {"host": host}
            )
        return normalized

    def clean(self):
        cleaned = super().clean()
        if not self.has_password and not cleaned.get("password"):
            self.add_error("password", _("Enter the password of the mailbox."))
        host, port = cleaned.get("host"), cleaned.get("port")
        if host and port:
            try:
                outbound.url_resolve(host, port)
            except outbound.OutboundURLError as error:
                self.add_error("host", str(error))
            except outbound.OutboundRequestError:
                pass
        return cleaned


# One label of a DNS name in ASCII (an internationalized name after its IDNA encoding).
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _host_normalize(text: str) -> str | None:
    """Return `text` as a host name or an IP address (IPv6 without brackets), or None when it is neither."""
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return host


class AccountDomainForm(forms.Form):
    account = IdModelChoiceField(
        label=_("Account"),
        queryset=Account.objects.none(),
        empty_label=_("– choose an account –"),
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    domain = forms.CharField(
        label=_("E-mail domain"),
        max_length=253,
        help_text=_("For example customer.example; subdomains such as mail.customer.example match too."),
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = Account.objects.order_by("name")

    def clean_domain(self):
        domain = domain_normalize(self.cleaned_data["domain"])
        if not DOMAIN.match(domain):
            raise ValidationError(
                _("%(domain)s is not a domain name; enter it like customer.example.") % {"domain": self.cleaned_data["domain"]}
            )
        from integrations.capture.models import AccountDomain

        existing = AccountDomain.objects.filter(domain=domain).select_related("account").first()
        if existing is not None:
            raise ValidationError(
                _("%(domain)s already belongs to %(account)s; delete that entry first.")
                % {"domain": domain, "account": existing.account.name}
            )
        return domain
