from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SkillsConfig(AppConfig):
    name = "coaching.skills"
    label = "coaching_skills"
    verbose_name = _("Skills and development")
