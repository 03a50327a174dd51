"""Per-organization API tokens: only a hash of each token is stored."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Organization, User


class ApiTokenScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Read and write")


class ApiToken(models.Model):
    """A bearer token for /api/v1/ of one organization.

    The token reads `spm_<organization id>_<secret>`. Only the SHA-256 of the whole token is
    stored, because the secret carries 256 random bits and a slow password hash would add
    nothing but latency to every request. `prefix` keeps the first characters, so an
    admin can tell tokens apart.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=100)
    scope = models.CharField(_("scope"), max_length=8, choices=ApiTokenScope.choices, default=ApiTokenScope.READ)
    prefix = models.CharField(_("token prefix"), max_length=32)
    token_hash = models.CharField(_("token hash"), max_length=64)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("revoked by")
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Authentication looks a token up by its organization id (from the token) and hash.
            models.UniqueConstraint(fields=["organization", "token_hash"], name="api_apitoken_unique_hash"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.scope == ApiTokenScope.WRITE
