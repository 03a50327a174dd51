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
        help_text=_("One number per month after the start date; months after the list get 100%."),
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


# --- forecasting ----------------------------------------------------------------------------------


class ForecastCategory(models.TextChoices):
    PIPELINE = "pipeline", _("Pipeline")
    BEST_CASE = "best_case", _("Best case")
    COMMIT = "commit", _("Commit")
    CLOSED = "closed", _("Closed")
    OMITTED = "omitted", _("Omitted")


class ForecastPeriodKind(models.TextChoices):
    QUARTER = "quarter", _("Quarter")
    MONTH = "month", _("Month")


class ForecastSettings(models.Model):
    """An organization's forecast period; without a row the forecast runs per fiscal quarter."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    period_kind = models.CharField(
        _("forecast period"), max_length=8, choices=ForecastPeriodKind.choices, default=ForecastPeriodKind.QUARTER
    )
    updated_at = models.DateTimeField(_("changed at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("forecast settings")
        verbose_name_plural = _("forecast settings")
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="goals_forecastsettings_unique_org"),
        ]


class StageForecastCategory(models.Model):
    """The forecast category an admin chose for an open stage; stages without a row use the default rule."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    stage = models.ForeignKey(
        "pipelines.Stage", on_delete=models.CASCADE, related_name="+", verbose_name=_("stage")
    )
    category = models.CharField(_("forecast category"), max_length=16, choices=ForecastCategory.choices)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("stage forecast category")
        verbose_name_plural = _("stage forecast categories")
        constraints = [
            models.UniqueConstraint(fields=["organization", "stage"], name="goals_stageforecastcategory_unique_stage"),
        ]


class DealForecastCategory(models.Model):
    """A per-deal override of the category its stage implies, set by the owner or a manager above."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    # No foreign key constraint: pipelines_deal is partitioned (pipelines.partitions), and
    # pipelines.reference_checks checks the reference instead.
    deal = models.ForeignKey(
        "pipelines.Deal", on_delete=models.CASCADE, db_constraint=False, related_name="+", verbose_name=_("deal")
    )
    category = models.CharField(_("forecast category"), max_length=16, choices=ForecastCategory.choices)
    set_by = models.ForeignKey(
        "spm.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("set by")
    )
    set_at = models.DateTimeField(_("set at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("deal forecast category")
        verbose_name_plural = _("deal forecast categories")
        constraints = [
            models.UniqueConstraint(fields=["organization", "deal"], name="goals_dealforecastcategory_unique_deal"),
        ]


class ForecastSubmissionImmutableError(Exception):
    """Raised when code tries to change or delete a forecast submission, which is history."""


class ForecastSubmission(models.Model):
    """One forecast call for a person's period. A new call adds a row instead of editing one.

    `save()` on a stored row and `delete()` raise, so the model API keeps the history;
    deleting the member or the organization still removes their rows.

    `subject` is whose forecast it is. A rep's covers their own deals; a manager's covers
    everyone who rolls up to them. `submitted_by` is the subject (their own call) or a
    manager above (an adjustment). Amounts are totals expected to be won in the period,
    in the base currency, including what is already won.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    subject = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="forecast_submissions", verbose_name=_("forecast of")
    )
    submitted_by = models.ForeignKey(
        "spm.Membership", null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("submitted by")
    )
    period_kind = models.CharField(_("period kind"), max_length=8, choices=ForecastPeriodKind.choices)
    period_start = models.DateField(_("period start"))
    commit_amount = models.DecimalField(
        _("commit"), max_digits=18, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    best_case_amount = models.DecimalField(
        _("best case"), max_digits=18, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    submitted_at = models.DateTimeField(_("submitted at"))

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("forecast submission")
        verbose_name_plural = _("forecast submissions")
        ordering = ["submitted_at", "id"]
        indexes = [
            # The roll-up and the accuracy table read one period's calls per person in time order.
            models.Index(
                fields=["organization", "period_kind", "period_start", "subject", "submitted_at"],
                name="goals_forecastsub_period",
            ),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ForecastSubmissionImmutableError("Forecast submissions cannot be changed; submit a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ForecastSubmissionImmutableError("Forecast submissions cannot be deleted.")


class ForecastHorizon(models.TextChoices):
    START = "start", _("At period start")
    WEEKS_8 = "8w", _("8 weeks before end")
    WEEKS_4 = "4w", _("4 weeks before end")
    WEEKS_1 = "1w", _("1 week before end")


class ForecastSnapshot(models.Model):
    """The system forecast of one member for a period as of one horizon: weighted pipeline + won so far.

    `as_of` is the horizon's instant (local midnight). `is_reconstructed` marks rows
    computed well after that instant from the stage history (a late run or a backfill):
    their stages and closes are historical, but expected close dates, amounts and
    probability overrides are the values at computation time.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    membership = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    period_kind = models.CharField(_("period kind"), max_length=8, choices=ForecastPeriodKind.choices)
    period_start = models.DateField(_("period start"))
    horizon = models.CharField(_("horizon"), max_length=8, choices=ForecastHorizon.choices)
    as_of = models.DateTimeField(_("as of"))
    weighted_pipeline_amount = models.DecimalField(_("weighted pipeline"), max_digits=18, decimal_places=2)
    won_amount = models.DecimalField(_("won so far"), max_digits=18, decimal_places=2)
    forecast_amount = models.DecimalField(_("system forecast"), max_digits=18, decimal_places=2)
    is_reconstructed = models.BooleanField(_("reconstructed"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("forecast snapshot")
        verbose_name_plural = _("forecast snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_kind", "period_start", "horizon", "membership"],
                name="goals_forecastsnapshot_unique_key",
            ),
        ]
