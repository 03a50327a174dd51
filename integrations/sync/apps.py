from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmSyncConfig(AppConfig):
    name = "integrations.sync"
    label = "crm_sync"
    verbose_name = _("CRM sync")
