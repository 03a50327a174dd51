"""Precomputed KPI rows that dashboards and reports read."""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_scopes import ScopedManager

from spm.models import Organization


class PeriodKind(models.TextChoices):
    YEAR = "year", _("Fiscal year")
    QUARTER = "quarter", _("Quarter")
    MONTH = "month", _("Month")


class Grain(models.TextChoices):
    ORGANIZATION = "organization", _("Organization")
    TERRITORY = "territory", _("Territory")
    TEAM = "team", _("Team")
    REP = "rep", _("Rep")


class KpiSnapshot(models.Model):
    """Additive KPI components for one organization × period × grain × subject.

    Only sums, counts and the median are stored; rates, averages and velocity are
    derived from them on read (see dashboards.kpis), so they never drift apart.
    `subject_id` is 0 for the organization grain, else the territory, team or
    membership id.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    period_kind = models.CharField(_("period kind"), max_length=8, choices=PeriodKind.choices)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end (exclusive)"))
    grain = models.CharField(_("grain"), max_length=16, choices=Grain.choices)
    subject_id = models.BigIntegerField(_("subject id"))
    # The context separates this "subject" (a rep, team or territory) from an activity's subject line.
    subject_name = models.CharField(pgettext_lazy("KPI snapshot", "subject"), max_length=200)
    won_count = models.PositiveIntegerField(_("won deals"), default=0)
    lost_count = models.PositiveIntegerField(_("lost deals"), default=0)
    won_amount = models.DecimalField(_("won amount"), max_digits=20, decimal_places=2, default=Decimal("0"))
    lost_amount = models.DecimalField(_("lost amount"), max_digits=20, decimal_places=2, default=Decimal("0"))
    cycle_days_sum = models.DecimalField(
        _("sum of sales cycle days"), max_digits=20, decimal_places=6, default=Decimal("0")
    )
    cycle_days_median = models.DecimalField(
        _("median sales cycle (days)"), max_digits=14, decimal_places=6, null=True, blank=True
    )
    open_count = models.PositiveIntegerField(_("open deals at period end"), default=0)
    open_amount = models.DecimalField(
        _("open amount at period end"), max_digits=20, decimal_places=2, default=Decimal("0")
    )
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("KPI snapshot")
        verbose_name_plural = _("KPI snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_kind", "period_start", "grain", "subject_id"],
                name="dashboards_kpisnapshot_unique_key",
            ),
        ]
        indexes = [
            # The dashboard reads one period's rows of one grain.
            models.Index(
                fields=["organization", "grain", "period_kind", "period_start"], name="dashboards_kpisnapshot_read"
            ),
        ]

    def __str__(self):
        return f"{self.grain}:{self.subject_name} {self.period_kind} {self.period_start}"


class PipelineSnapshot(models.Model):
    """One open deal as it stood at the start of a local day: the daily pipeline snapshot.

    The `dashboards.snapshot_take` task inserts one row per deal open at local
    midnight starting `snapshot_on` (created before it, not closed before it),
    copying stage, owner, amount and expected close date at the time of the
    run. Rows are never updated, so a later change of the deal leaves the
    snapshot as it was.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    snapshot_on = models.DateField(_("snapshot date"))
    # No foreign key constraint: pipelines_deal is partitioned (pipelines.partitions), and
    # pipelines.reference_checks checks the reference instead.
    deal = models.ForeignKey(
        "pipelines.Deal",
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="pipeline_snapshots",
        verbose_name=_("deal"),
    )
    pipeline = models.ForeignKey(
        "pipelines.Pipeline", on_delete=models.CASCADE, related_name="+", verbose_name=_("pipeline")
    )
    # Empty for a deal open on the day whose first recorded stage came later.
    stage = models.ForeignKey(
        "pipelines.Stage", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("stage")
    )
    owner = models.ForeignKey(
        "spm.Membership", on_delete=models.CASCADE, related_name="+", verbose_name=_("owner")
    )
    base_amount = models.DecimalField(
        _("amount in base currency"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    expected_close_on = models.DateField(_("expected close date"), null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("pipeline snapshot row")
        verbose_name_plural = _("pipeline snapshot rows")
        constraints = [
            # The daily insert skips deals already present, so a second run of a day adds nothing.
            models.UniqueConstraint(
                fields=["organization", "snapshot_on", "deal"], name="dashboards_pipelinesnapshot_unique_day"
            ),
        ]
        indexes = [
            # Slipped deals look up one deal's earlier snapshots.
            models.Index(fields=["organization", "deal", "snapshot_on"], name="dashboards_pipelinesnap_deal"),
        ]

    def __str__(self):
        return f"{self.snapshot_on} deal {self.deal_id}"
