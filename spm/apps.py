from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SpmConfig(AppConfig):
    name = "spm"
    verbose_name = _("Organizations")

    def ready(self):
        from . import (
            accounts,  # noqa: F401  connects the login receiver that verifies login addresses
            db_functions,  # noqa: F401  registers SQLite helpers on connect
        )
        from .audit import audit_receivers_connect

        audit_receivers_connect()
        _allauth_labels_translate()


def _allauth_labels_translate() -> None:
    """Give allauth's reauthentication code form a translatable field label.

    allauth 65 declares its `recipient` field without a label, so Django shows the
    untranslated field name "Recipient" on the German page.
    """
    from allauth.account.forms import RequestReauthenticationCodeForm

    RequestReauthenticationCodeForm.base_fields["recipient"].label = _("Recipient")
