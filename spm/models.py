"""Tenancy: users, organizations (the tenant), memberships with roles, audit log."""

import functools
import zoneinfo
from decimal import Decimal

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person who can log in; identified by e-mail, not by a username."""

    username = None
    email = models.EmailField(_("e-mail address"), unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        choices=[("de", _("German")), ("en", _("English"))],
        help_text=_("Language of the interface; empty means the browser's language."),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    def __str__(self):
        return self.name or self.email


# Areas of the IANA time zone database's Area/Location names. zoneinfo also lists names outside
# them: backward-compatible links (US/Eastern, GMT+0, Etc/GMT-1, Japan), the placeholder zone
# Factory, files of the system's zone directory (localtime, posixrules) and copies (posix/…, right/…).
# The values are the labels of the area groups in the settings form's time zone list.
TIME_ZONE_AREAS = {
    "Africa": _("Africa"), "America": _("America"), "Antarctica": _("Antarctica"), "Arctic": _("Arctic"),
    "Asia": _("Asia"), "Atlantic": _("Atlantic"), "Australia": _("Australia"), "Europe": _("Europe"),
    "Indian": _("Indian Ocean"), "Pacific": _("Pacific"),
}  # fmt: skip


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Return the time zones an organization can choose: "UTC", then the Area/Location names, sorted.

    Some Area/Location names are links to another zone (Asia/Calcutta, Europe/Kiev). They stay,
    because tzdata since 2022b also turns current names into links in its default build
    (Europe/Amsterdam to Europe/Brussels), and which names are links depends on that build.
    """
    located = (name for name in zoneinfo.available_timezones() if "/" in name)
    return ("UTC", *sorted(name for name in located if name.split("/", 1)[0] in TIME_ZONE_AREAS))


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            _(
                "%(value)s is not a supported time zone; use an IANA name of the form Region/City, such as "
                "Europe/Berlin, or UTC."
            ),
            params={"value": value},
        )


class LeaderboardPrivacy(models.TextChoices):
    NAMES = "names", _("Show names")
    PSEUDONYMS = "pseudonyms", _("Show pseudonyms")
    OWN_RANK = "own_rank", _("Show only one's own rank")


class Organization(models.Model):
    """The tenant. Every tenant-owned row points here."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Berlin", validators=[validate_time_zone]
    )
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        _("fiscal year start month"),
        default=1,
        choices=[(month, str(month)) for month in range(1, 13)],
    )
    currency = models.CharField(_("base currency"), max_length=3, default="EUR")
    language = models.CharField(
        _("default language"), max_length=8, default="de", choices=[("de", _("German")), ("en", _("English"))]
    )
    attainment_warning_percent = models.DecimalField(
        _("early-warning threshold (%)"),
        max_digits=5,
        decimal_places=1,
        default=Decimal("70.0"),
        validators=[MinValueValidator(0), MaxValueValidator(200)],
        help_text=_("Warn when a rep's projected attainment at period end falls below this percentage."),
    )
    leaderboard_privacy = models.CharField(
        _("leaderboard privacy"),
        max_length=16,
        choices=LeaderboardPrivacy.choices,
        default=LeaderboardPrivacy.NAMES,
    )
    minimum_group_size = models.PositiveSmallIntegerField(
        _("minimum group size"),
        default=0,
        help_text=_("Team figures of groups with fewer members are hidden; 0 turns this off."),
    )
    requires_mfa = models.BooleanField(
        _("require two-factor authentication"),
        default=False,
        help_text=_("Members without an authenticator app are sent to its setup page before they can continue."),
    )
    activity_retention_days = models.PositiveIntegerField(
        _("keep activities for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(36500)],
        help_text=_("Activities older than this are deleted every night; empty keeps them."),
    )
    audit_retention_days = models.PositiveIntegerField(
        _("keep the audit log for (days)"),
        null=True,
        blank=True,
        # At least a year, so one mistyped value cannot wipe the recent trail.
        validators=[MinValueValidator(365), MaxValueValidator(36500)],
        help_text=_("Audit log entries older than this are deleted every night; empty keeps them. At least 365."),
    )
    # The time of the latest change that committed while its KPI recompute could not be queued
    # because the broker was unreachable; None when no recompute is pending. An hourly beat task
    # (dashboards.tasks.kpi_snapshot_recompute_pending_schedule) queues the full recompute, and
    # the recompute clears it unless a later deferral changed it meanwhile.
    kpi_recompute_deferred_at = models.DateTimeField(
        _("KPI recompute deferred at"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self):
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    REP = "rep", _("Sales rep")


class Membership(models.Model):
    """A user's place in one organization: role, team, manager and active dates."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    team = models.ForeignKey(
        "goals.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="members", verbose_name=_("team")
    )
    territory = models.ForeignKey(
        "goals.Territory",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
        verbose_name=_("territory"),
    )
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports", verbose_name=_("manager")
    )
    active_from = models.DateField(_("active from"), null=True, blank=True)
    active_to = models.DateField(_("active to"), null=True, blank=True)
    # 254 characters, the length of User.email, because importers that name people by e-mail address
    # (Pipedrive users.csv, owner_email) store the address as the external id.
    external_id = models.CharField(
        _("external id"), max_length=254, blank=True, help_text=_("The person's id or name in the source CRM.")
    )
    ramp_schedule = models.ForeignKey(
        "goals.RampSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
        verbose_name=_("ramp schedule"),
        help_text=_("Reduced quota in the first months after the member's start date."),
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="spm_membership_unique_user"),
        ]
        indexes = [
            # Importers look people up by their source id.
            models.Index(fields=["organization", "external_id"], name="spm_membership_external"),
        ]

    def __str__(self):
        return str(self.user)

    @property
    def display_name(self) -> str:
        return self.user.name or self.user.email

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER

    @property
    def is_rep(self) -> bool:
        return self.role == Role.REP


class AuditLogImmutableError(Exception):
    """Raised when code tries to change or delete an audit log row through the model API."""


class AuditLogQuerySet(models.QuerySet):
    """Querysets of audit rows: reads and inserts only.

    `update()` and `delete()` raise. Retention deletes go through
    `spm.audit.audit_retention_delete`, which uses a raw statement inside the
    privileged session that the PostgreSQL trigger admits.
    """

    def update(self, **kwargs):
        raise AuditLogImmutableError("Audit log rows cannot be updated.")

    def delete(self):
        raise AuditLogImmutableError("Audit log rows cannot be deleted; retention uses spm.audit.audit_retention_delete.")


class AuditLog(models.Model):
    """Append-only record of logins, role, quota and stage changes, imports and personal-data exports.

    The model API only inserts: `save()` on an existing row, `delete()` and the
    queryset's `update()`/`delete()` raise AuditLogImmutableError. On PostgreSQL a
    trigger (migration spm 0004) also rejects UPDATE and DELETE in SQL, except
    setting `actor` to NULL when the user is deleted, and except inside the
    privileged session of `spm.audit.audit_privileged()`.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("actor")
    )
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(_manager_class=models.Manager.from_queryset(AuditLogQuerySet), organization="organization")

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [
            # The audit page lists an organization's entries newest first.
            models.Index(fields=["organization", "-created_at"], name="spm_auditlog_recent"),
        ]

    def __str__(self):
        return f"{self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AuditLogImmutableError("Audit log rows cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutableError("Audit log rows cannot be deleted; retention uses spm.audit.audit_retention_delete.")
