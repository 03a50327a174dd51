"""Territories, teams, assignments over time, quotas, ramps, contests."""

from decimal import Decimal

from django.core.validators import MinValueValidator
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


class Assignment(models.Model):
    """A member's team and territory over a date range `[valid_from, valid_to)`.

    Won deals are credited to the team and territory valid on their close date,
    and quotas are split by the days each assignment covers, so a move inside a
    quarter splits both credit and quota by date. Membership.team/territory
    hold the current values.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    membership = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="assignments", verbose_name=_("member")
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments", verbose_name=_("team")
    )
    territory = models.ForeignKey(
        Territory,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assignments",
        verbose_name=_("territory"),
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid until (exclusive)"), null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["membership_id", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "membership", "valid_from"], name="goals_assignment_unique_start"
            ),
        ]


class LeavePeriod(models.Model):
    """Days `[starts_on, ends_on]` (inclusive) a member is on leave; prorated quotas exclude them."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    membership = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="leave_periods", verbose_name=_("member")
    )
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("leave period")
        verbose_name_plural = _("leave periods")
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_on__gte=models.F("starts_on")), name="goals_leave_ordered"),
        ]


class RampSchedule(models.Model):
    """Share of the full quota in a new hire's first months, e.g. [25, 50, 75, 100]."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    month_percentages = models.JSONField(
        _("percent of full quota per month"),
        help_text=_("One number per month after the start date; months after the list get 100 %."),
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("ramp schedule")
        verbose_name_plural = _("ramp schedules")
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="goals_rampschedule_unique_name"),
        ]

    def __str__(self):
        return self.name


class QuotaMetric(models.TextChoices):
    WON_REVENUE = "won_revenue", _("Won revenue")
    WON_DEALS = "won_deals", _("Won deals")
    PIPELINE_CREATED = "pipeline_created", _("New pipeline created")
    ACTIVITIES = "activities", _("Activities")
    MEETINGS = "meetings", _("Meetings")


class QuotaLevel(models.TextChoices):
    REP = "rep", _("Rep")
    TEAM = "team", _("Team")
    TERRITORY = "territory", _("Territory")


class QuotaPeriodKind(models.TextChoices):
    YEAR = "year", _("Fiscal year")
    QUARTER = "quarter", _("Quarter")
    MONTH = "month", _("Month")


class Quota(models.Model):
    """A full-period target of one rep, team or territory for one metric.

    `period_start` is the first day of a fiscal year, quarter or month (see
    spm.fiscal). Money targets are in the organization's base currency. A team or
    territory without an explicit quota gets the sum of its members' prorated
    quotas; that roll-up is computed, never stored here.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    level = models.CharField(_("level"), max_length=16, choices=QuotaLevel.choices)
    membership = models.ForeignKey(
        "spm.Membership", null=True, blank=True, on_delete=models.CASCADE, related_name="quotas", verbose_name=_("rep")
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="quotas", verbose_name=_("team")
    )
    territory = models.ForeignKey(
        Territory, null=True, blank=True, on_delete=models.CASCADE, related_name="quotas", verbose_name=_("territory")
    )
    period_kind = models.CharField(_("period kind"), max_length=8, choices=QuotaPeriodKind.choices)
    period_start = models.DateField(_("period start"))
    metric = models.CharField(_("metric"), max_length=32, choices=QuotaMetric.choices)
    target = models.DecimalField(
        _("target"), max_digits=18, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    is_prorated = models.BooleanField(
        _("prorate by active days"),
        default=True,
        help_text=_("Reduce the target for members active for only part of the period."),
    )
    updated_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("changed by")
    )
    updated_at = models.DateTimeField(_("changed at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(level="rep", membership__isnull=False, team__isnull=True, territory__isnull=True)
                    | models.Q(level="team", membership__isnull=True, team__isnull=False, territory__isnull=True)
                    | models.Q(level="territory", membership__isnull=True, team__isnull=True, territory__isnull=False)
                ),
                name="goals_quota_one_subject",
            ),
            models.UniqueConstraint(
                fields=["organization", "membership", "period_kind", "period_start", "metric"],
                condition=models.Q(level="rep"),
                name="goals_quota_unique_rep_period",
            ),
            models.UniqueConstraint(
                fields=["organization", "team", "period_kind", "period_start", "metric"],
                condition=models.Q(level="team"),
                name="goals_quota_unique_team_period",
            ),
            models.UniqueConstraint(
                fields=["organization", "territory", "period_kind", "period_start", "metric"],
                condition=models.Q(level="territory"),
                name="goals_quota_unique_territory_period",
            ),
        ]
        indexes = [
            # Attainment and the quota editor read one period's quotas of one metric.
            models.Index(fields=["organization", "period_start", "metric"], name="goals_quota_period"),
        ]


class QuotaTemplate(models.Model):
    """A named target that an admin applies to many reps at once."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    metric = models.CharField(_("metric"), max_length=32, choices=QuotaMetric.choices)
    period_kind = models.CharField(_("period kind"), max_length=8, choices=QuotaPeriodKind.choices)
    target = models.DecimalField(
        _("target"), max_digits=18, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    is_prorated = models.BooleanField(_("prorate by active days"), default=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("quota template")
        verbose_name_plural = _("quota templates")
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="goals_quotatemplate_unique_name"),
        ]

    def __str__(self):
        return self.name


class ContestNormalization(models.TextChoices):
    PERCENT_OF_QUOTA = "percent_of_quota", _("Percent of prorated quota")
    ABSOLUTE = "absolute", _("Absolute value")
    IMPROVEMENT = "improvement", _("Improvement over the previous period")


class Contest(models.Model):
    """A sales contest over `[starts_on, ends_on]` (inclusive) among chosen members or teams."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    metric = models.CharField(_("metric"), max_length=32, choices=QuotaMetric.choices)
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    normalization = models.CharField(
        _("ranking"), max_length=24, choices=ContestNormalization.choices, default=ContestNormalization.PERCENT_OF_QUOTA
    )
    is_team_mode = models.BooleanField(_("teams compete"), default=False)
    participants = models.ManyToManyField(
        "spm.Membership", blank=True, related_name="contests", verbose_name=_("participants")
    )
    teams = models.ManyToManyField(Team, blank=True, related_name="contests", verbose_name=_("teams"))
    created_by = models.ForeignKey(
        "spm.Membership", null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("contest")
        verbose_name_plural = _("contests")
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_on__gte=models.F("starts_on")), name="goals_contest_ordered"),
        ]

    def __str__(self):
        return self.name


class ScorecardView(models.Model):
    """Who opened whose scorecard and when; admins can read this log (works-council requirement)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    viewer = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="+", verbose_name=_("viewer")
    )
    subject = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="+", verbose_name=_("viewed member")
    )
    viewed_at = models.DateTimeField(_("viewed at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("scorecard view")
        verbose_name_plural = _("scorecard views")
        indexes = [
            # The admin's view log lists an organization's views newest first.
            models.Index(fields=["organization", "-viewed_at"], name="goals_scorecardview_recent"),
        ]
