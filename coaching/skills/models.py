"""Competency rubric, skill assessments, development plans and the record of sent weekly digests."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Membership, Organization

LEVELS = (1, 2, 3, 4, 5)


def _in_language(german: str, english: str) -> str:
    """Pick the German or English text for the active language, falling back to the other one when empty."""
    if (get_language() or "de").startswith("de"):
        return german or english
    return english or german


class Competency(models.Model):
    """One skill of the organization's rubric, named and described in German and English."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name_de = models.CharField(_("name (German)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_de = models.TextField(_("description (German)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("competency")
        verbose_name_plural = _("competencies")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name_en"], name="coaching_skills_competency_unique_en"),
            models.UniqueConstraint(fields=["organization", "name_de"], name="coaching_skills_competency_unique_de"),
        ]

    def __str__(self):
        return self.name

    @property
    def name(self) -> str:
        return _in_language(self.name_de, self.name_en)

    @property
    def description(self) -> str:
        return _in_language(self.description_de, self.description_en)


class CompetencyLevel(models.Model):
    """The description of one level (1 to 5) of one competency."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    competency = models.ForeignKey(
        Competency, on_delete=models.CASCADE, related_name="levels", verbose_name=_("competency")
    )
    level = models.PositiveSmallIntegerField(_("level"), validators=[MinValueValidator(1), MaxValueValidator(5)])
    description_de = models.TextField(_("description (German)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("competency level")
        verbose_name_plural = _("competency levels")
        ordering = ["competency", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "competency", "level"], name="coaching_skills_level_unique"
            ),
        ]

    def __str__(self):
        return f"{self.competency} {self.level}"

    @property
    def description(self) -> str:
        return _in_language(self.description_de, self.description_en)


class AssessmentKind(models.TextChoices):
    MANAGER = "manager", _("Manager assessment")
    SELF = "self", _("Self-assessment")


class Assessment(models.Model):
    """One rating of a member on the rubric, by their manager (or an admin) or by themselves."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="skill_assessments", verbose_name=_("assessed member")
    )
    assessor = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("assessed by")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=AssessmentKind.choices)
    assessed_on = models.DateField(_("date"))
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("skill assessment")
        verbose_name_plural = _("skill assessments")
        indexes = [
            # A member's assessment history, oldest first, for the chart and the gap.
            models.Index(fields=["organization", "member", "assessed_on"], name="coaching_skills_assess_member"),
        ]

    def __str__(self):
        return f"{self.member} {self.kind} {self.assessed_on}"


class Rating(models.Model):
    """The level given to one competency in one assessment."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    assessment = models.ForeignKey(
        Assessment, on_delete=models.CASCADE, related_name="ratings", verbose_name=_("assessment")
    )
    competency = models.ForeignKey(
        Competency, on_delete=models.CASCADE, related_name="ratings", verbose_name=_("competency")
    )
    level = models.PositiveSmallIntegerField(_("level"), validators=[MinValueValidator(1), MaxValueValidator(5)])

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "assessment", "competency"], name="coaching_skills_rating_unique"
            ),
        ]

    def __str__(self):
        return f"{self.competency}: {self.level}"


class Indicator(models.TextChoices):
    STAGE_CONVERSION = "stage_conversion", _("Stage conversion")
    WIN_RATE = "win_rate", _("Win rate")
    AVERAGE_DEAL_SIZE = "average_deal_size", _("Average deal size")
    ACTIVITY_COUNT = "activity_count", _("Activities")
    ACTIVITIES_PER_WON_DEAL = "activities_per_won_deal", _("Activities per won deal")
    TIME_IN_STAGE = "time_in_stage", _("Time in stage")


class DevelopmentPlan(models.Model):
    """A member's development plan: goals on leading indicators and training items."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="development_plans", verbose_name=_("member")
    )
    created_by = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("created by")
    )
    title = models.CharField(_("title"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("development plan")
        verbose_name_plural = _("development plans")
        indexes = [
            # The plan list of the members a viewer may see.
            models.Index(fields=["organization", "member"], name="coaching_skills_plan_member"),
        ]

    def __str__(self):
        return self.title


class DevelopmentGoal(models.Model):
    """A target on one indicator, measured over `period_label` against `baseline_period_label`.

    Both values are computed from the member's deals and activities; nobody enters
    the current value. Ratios (conversion, win rate) are stored as fractions, so
    40 % is 0.4.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    plan = models.ForeignKey(DevelopmentPlan, on_delete=models.CASCADE, related_name="goals", verbose_name=_("plan"))
    indicator = models.CharField(_("indicator"), max_length=32, choices=Indicator.choices)
    stage = models.ForeignKey(
        "pipelines.Stage",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("stage"),
        help_text=_("Only for stage conversion (from this stage to the next) and time in stage."),
    )
    baseline_period_label = models.CharField(_("baseline period"), max_length=32)
    period_label = models.CharField(_("measured in"), max_length=32)
    target_value = models.DecimalField(_("target"), max_digits=18, decimal_places=6)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("development goal")
        verbose_name_plural = _("development goals")
        ordering = ["plan", "id"]

    def __str__(self):
        return f"{self.get_indicator_display()} {self.period_label}"


class TrainingItem(models.Model):
    """A training step of a plan with a due date; it is ticked off by hand, unlike the goals."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    plan = models.ForeignKey(
        DevelopmentPlan, on_delete=models.CASCADE, related_name="training_items", verbose_name=_("plan")
    )
    title = models.CharField(_("title"), max_length=200)
    due_on = models.DateField(_("due date"))
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("done by")
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("training item")
        verbose_name_plural = _("training items")
        ordering = ["due_on", "id"]

    def __str__(self):
        return self.title

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class DigestSend(models.Model):
    """One weekly digest e-mail sent to one member; the unique key stops a second send in the same week."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("recipient")
    )
    week_start_on = models.DateField(_("week starting"))
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("digest e-mail sent")
        verbose_name_plural = _("digest e-mails sent")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "membership", "week_start_on"], name="coaching_skills_digest_unique_week"
            ),
        ]

    def __str__(self):
        return f"{self.membership} {self.week_start_on}"
