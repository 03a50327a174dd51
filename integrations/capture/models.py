"""Activity capture settings: account e-mail domains, reps' calendar feeds and the organization's mailbox."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Organization


class AccountDomain(models.Model):
    """An e-mail domain that belongs to an account: attendees and correspondents from it are matched to the account."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    account = models.ForeignKey(
        "pipelines.Account", on_delete=models.CASCADE, related_name="capture_domains", verbose_name=_("account")
    )
    domain = models.CharField(_("domain"), max_length=253, help_text=_("For example customer.example, without @."))

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("account domain")
        verbose_name_plural = _("account domains")
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"], name="capture_accountdomain_unique_domain"),
        ]

    def __str__(self):
        return self.domain


class CalendarFeed(models.Model):
    """A rep's calendar subscription URL (ICS), polled every hour; one per member.

    The personal-data export lists it; erasing the person (spm.privacy) deletes it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    member = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="calendar_feeds", verbose_name=_("member")
    )
    url = models.URLField(_("feed URL"), max_length=1000)
    is_active = models.BooleanField(_("active"), default=True)
    last_polled_at = models.DateTimeField(_("last read at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_counts = models.JSONField(_("last result"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")
        constraints = [
            models.UniqueConstraint(fields=["organization", "member"], name="capture_calendarfeed_unique_member"),
        ]


class Mailbox(models.Model):
    """The organization's IMAP mailbox whose messages become e-mail activities.

    The password is stored in clear text in the database, because the poller must log in
    with it. Restrict database access and backups accordingly, and use an account that
    can only read this mailbox.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    host = models.CharField(_("IMAP server"), max_length=253)
    port = models.PositiveIntegerField(
        _("port"), default=993, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    use_ssl = models.BooleanField(_("use SSL/TLS"), default=True, help_text=_("Port 993 uses SSL/TLS; port 143 usually not."))
    username = models.CharField(_("user name"), max_length=200)
    password = models.CharField(_("password"), max_length=500)
    folder = models.CharField(_("folder"), max_length=200, default="INBOX")
    is_active = models.BooleanField(_("active"), default=True)
    uid_validity = models.BigIntegerField(_("UIDVALIDITY"), null=True, blank=True)
    last_uid = models.BigIntegerField(_("last message UID read"), default=0)
    last_polled_at = models.DateTimeField(_("last read at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_counts = models.JSONField(_("last result"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="capture_mailbox_unique_organization"),
        ]

    def __str__(self):
        return f"{self.username}@{self.host}"
