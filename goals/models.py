"""Territories and teams (both trees)."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Organization


class Territory(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("parent")
    )
    external_id = models.CharField(_("external id"), max_length=200, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("territory")
        verbose_name_plural = _("territories")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="goals_territory_unique_name"),
        ]

    def __str__(self):
        return self.name


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    manager = models.ForeignKey(
        "spm.Membership",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
        verbose_name=_("manager"),
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("parent team")
    )
    external_id = models.CharField(_("external id"), max_length=200, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="goals_team_unique_name"),
        ]

    def __str__(self):
        return self.name
