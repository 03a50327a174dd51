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
