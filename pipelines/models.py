"""CRM data: pipelines, stages, accounts, products, deals, stage history, activities."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from spm.models import Membership, Organization

MONEY = {"max_digits": 18, "decimal_places": 2}
# The largest amount that forms and imports accept: 13 digits before the point, 2 after.
# PostgreSQL's numeric(18, 2) would hold 16 digits before the point, but on SQLite Django 5.2
# reads a decimal column back through a float rounded to 15 significant digits
# (get_decimalfield_converter). A larger amount would come back changed, and one that rounds
# up to 17 digits before the point fails to load at all (decimal.InvalidOperation).
MAX_MONEY_AMOUNT = Decimal("9999999999999.99")


def checked_reference(to, **options) -> models.ForeignKey:
    """Return a ForeignKey without a database constraint or index of its own.

    On PostgreSQL the statement-level triggers of pipelines.reference_checks check
    the reference instead. Indexes that start with organization_id serve the lookups.
    """
    return models.ForeignKey(to, db_constraint=False, db_index=False, **options)


class Pipeline(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    is_default = models.BooleanField(_("default pipeline"), default=False)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="pipelines_pipeline_unique_name"),
        ]

    def __str__(self):
        return self.name


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Stage(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages", verbose_name=_("pipeline"))
    name = models.CharField(_("name"), max_length=200)
    order = models.PositiveSmallIntegerField(_("order"))
    probability = models.PositiveSmallIntegerField(
        _("default win probability (%)"), default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    kind = models.CharField(_("kind"), max_length=8, choices=StageKind.choices, default=StageKind.OPEN)
    stalled_after_days = models.PositiveSmallIntegerField(
        _("stalled after (days)"),
        null=True,
        blank=True,
        help_text=_("An open deal with no stage move or activity for longer than this counts as stalled."),
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline_id", "order"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "pipeline", "name"], name="pipelines_stage_unique_name"),
        ]

    def __str__(self):
        return self.name


class Account(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    external_id = models.CharField(_("external id"), max_length=200)
    sector = models.CharField(_("sector"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True)
    year_established = models.PositiveSmallIntegerField(_("year established"), null=True, blank=True)
    annual_revenue_amount = models.DecimalField(
        _("annual revenue (millions)"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    employees = models.PositiveIntegerField(_("employees"), null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="subsidiaries", verbose_name=_("parent")
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="pipelines_account_unique_external"),
        ]

    def __str__(self):
        return self.name


class Product(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    name = models.CharField(_("name"), max_length=200)
    series = models.CharField(_("series"), max_length=100, blank=True)
    list_price_amount = models.DecimalField(_("list price"), null=True, blank=True, **MONEY)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="pipelines_product_unique_name"),
        ]

    def __str__(self):
        return self.name


class ExchangeRate(models.Model):
    """Units of the organization's base currency per one unit of `currency`, valid from a date."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    currency = models.CharField(_("currency"), max_length=3)
    valid_from = models.DateField(_("valid from"))
    rate = models.DecimalField(_("rate"), max_digits=18, decimal_places=8)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "currency", "valid_from"], name="pipelines_exchangerate_unique_day"
            ),
        ]


class DealStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class LiveDealManager(models.Manager):
    """Deals that still exist in their source CRM.

    A deal deleted in the CRM keeps its row with `deleted_at` set, but leaves every KPI, list,
    drill-down and analysis, because they all read through `Deal.objects`. Importers and the
    sync read `Deal.all_objects`, so a deleted deal is found again by its external id.
    """

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class LiveStageChangeManager(models.Manager):
    """Stage changes of deals that still exist in their source CRM; see LiveDealManager."""

    def get_queryset(self):
        return super().get_queryset().filter(deal__deleted_at__isnull=True)


class Deal(models.Model):
    """An opportunity. `closed_at` is derived from the stage history: the latest move into won or lost.

    The references to other rows carry no per-row foreign key constraint on PostgreSQL.
    Statement-level triggers check them instead, once per statement and within the
    deal's organization (pipelines.reference_checks): per-row checks of the seven
    references cost more than the rows' own insert in a bulk import. Django still
    applies `on_delete`. NOTE: on SQLite these references are not checked at all.

    On PostgreSQL the table is partitioned by organization (pipelines.partitions). The
    indexes and the unique constraint below exist on each partition, created by that
    module rather than by Django's migrations.
    """

    organization = checked_reference(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    source = models.CharField(_("source system"), max_length=32)
    external_id = models.CharField(_("external id"), max_length=200)
    name = models.CharField(_("name"), max_length=300, blank=True)
    owner = checked_reference(
        Membership,
        on_delete=models.PROTECT,
        related_name="deals",
        verbose_name=_("owner"),
    )
    account = checked_reference(
        Account,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deals",
        verbose_name=_("account"),
    )
    pipeline = checked_reference(
        Pipeline,
        on_delete=models.PROTECT,
        related_name="deals",
        verbose_name=_("pipeline"),
    )
    stage = checked_reference(Stage, on_delete=models.PROTECT, related_name="deals", verbose_name=_("stage"))
    product = checked_reference(
        Product,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deals",
        verbose_name=_("product"),
    )
    territory = checked_reference(
        "goals.Territory",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deals",
        verbose_name=_("territory"),
    )
    amount = models.DecimalField(_("amount"), null=True, blank=True, **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    # The amount in the organization's base currency, converted at the rate valid on the
    # close date (open deals: the import date); every KPI sums this column.
    base_amount = models.DecimalField(_("amount in base currency"), null=True, blank=True, **MONEY)
    probability = models.PositiveSmallIntegerField(
        _("win probability override (%)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    status = models.CharField(_("status"), max_length=8, choices=DealStatus.choices, default=DealStatus.OPEN)
    created_at = models.DateTimeField(_("created at"))
    expected_close_on = models.DateField(_("expected close date"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    lost_reason = models.CharField(_("lost reason"), max_length=300, blank=True)
    deal_source = models.CharField(_("lead source"), max_length=100, blank=True)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Set when the deal was deleted in the source CRM (sync); the row stays for the audit trail.
    deleted_at = models.DateTimeField(_("deleted in the CRM at"), null=True, blank=True)

    objects = ScopedManager(LiveDealManager, organization="organization")
    all_objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "external_id"], name="pipelines_deal_unique_external"
            ),
        ]
        # The KPI queries on status, close and creation time use the cover indexes of
        # pipelines.partitions.DEAL_INDEXES (dashboards migrations 0004 and 0005 before).
        # organization_id comes last where it is the same in every row of a partition.
        indexes = [
            # A rep's own deal list.
            models.Index(fields=["owner", "organization"], name="pipelines_deal_owner"),
            # integrations.capture.matching: an account's open deals for a captured e-mail or meeting.
            models.Index(fields=["account", "organization"], name="pipelines_deal_account"),
        ]

    def __str__(self):
        return self.name or self.external_id

    @property
    def is_won(self) -> bool:
        return self.status == DealStatus.WON

    @property
    def is_lost(self) -> bool:
        return self.status == DealStatus.LOST

    @property
    def effective_probability(self) -> Decimal:
        percent = self.probability if self.probability is not None else self.stage.probability
        return Decimal(percent) / 100


class DealStageChange(models.Model):
    """One move of a deal into a stage; `from_stage` is empty for the deal's first stage."""

    # The references are checked per statement like the deal's (see Deal). The deal's index
    # serves Django's cascading delete of a deal's stage changes.
    organization = checked_reference(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, db_constraint=False, related_name="stage_changes", verbose_name=_("deal")
    )
    from_stage = checked_reference(
        Stage,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("from stage"),
    )
    to_stage = checked_reference(Stage, on_delete=models.PROTECT, related_name="+", verbose_name=_("to stage"))
    changed_at = models.DateTimeField(_("changed at"))
    is_implied = models.BooleanField(
        _("implied"), default=False, help_text=_("Derived from creation and close dates; the source had no history.")
    )

    objects = ScopedManager(LiveStageChangeManager, organization="organization")
    all_objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["changed_at", "id"]
        constraints = [
            # Re-imports append only new history: one move per deal, target stage and instant.
            # On PostgreSQL it also serves every lookup of a deal's moves, see MOVE_INDEXES.
            models.UniqueConstraint(
                fields=["deal", "to_stage", "changed_at", "organization"], name="pipelines_stagechange_unique_move"
            ),
        ]
        indexes = [
            # Time-in-stage and conversion read a cohort's moves ordered in time.
            models.Index(fields=["changed_at", "organization"], name="pipelines_stagechange_changed"),
        ]


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    EMAIL = "email", _("E-mail")
    MEETING = "meeting", _("Meeting")
    TASK = "task", _("Task")
    NOTE = "note", _("Note")


class Activity(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    source = models.CharField(_("source system"), max_length=32)
    external_id = models.CharField(_("external id"), max_length=200)
    kind = models.CharField(_("type"), max_length=16, choices=ActivityKind.choices)
    type_name = models.CharField(
        _("type in the source"), max_length=100, blank=True, help_text=_("The CRM's own activity type, e.g. Sales Call 2.")
    )
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    is_done = models.BooleanField(
        _("done"), default=True, help_text=_("Not ticked for a planned activity that is still due.")
    )
    owner = models.ForeignKey(
        Membership, on_delete=models.PROTECT, related_name="activities", verbose_name=_("owner")
    )
    # No foreign key constraint on the partitioned deal table; pipelines.reference_checks checks it.
    deal = models.ForeignKey(
        Deal,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="activities",
        verbose_name=_("deal"),
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities", verbose_name=_("account")
    )
    occurred_at = models.DateTimeField(_("occurred at"))
    duration = models.DurationField(_("duration"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=200, blank=True)
    is_captured = models.BooleanField(
        _("captured automatically"), default=False, help_text=_("Not ticked when a person logged it by hand.")
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "external_id"], name="pipelines_activity_unique_external"
            ),
        ]
        indexes = [
            # Activity counts per owner and period.
            models.Index(fields=["organization", "occurred_at"], name="pipelines_activity_occurred"),
        ]


class ImportSource(models.TextChoices):
    PIPEDRIVE = "pipedrive", _("Pipedrive")
    HUBSPOT = "hubspot", _("HubSpot")
    SALESFORCE = "salesforce", _("Salesforce")
    GENERIC = "generic", _("Other CSV or Excel file")
    MAVEN = "maven", _("Maven CRM sample")


class ImportRunStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    PREVIEWING = "previewing", _("Checking")
    PREVIEWED = "previewed", _("Checked")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Importing")
    SUCCEEDED = "succeeded", _("Imported")
    FAILED = "failed", _("Failed")


class ImportRun(models.Model):
    """One upload of CRM export files and its dry run and import, with progress and outcome.

    Progress (`progress_done` of `progress_total` rows) is written from a second database
    connection while the import's own transaction is still open, so a reloaded page sees it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    source = models.CharField(_("source"), max_length=16, choices=ImportSource.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=ImportRunStatus.choices, default=ImportRunStatus.UPLOADED
    )
    created_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("started by")
    )
    language = models.CharField(
        _("language"), max_length=8, help_text=_("Language of the messages and of the rejected-rows report.")
    )
    directory = models.CharField(_("folder"), max_length=300, help_text=_("Folder of the uploaded files below MEDIA_ROOT."))
    file_names = models.JSONField(_("files"), default=list)
    currency = models.CharField(_("currency of the amounts"), max_length=3, blank=True)
    date_order = models.CharField(
        _("date order"),
        max_length=3,
        blank=True,
        choices=[("dmy", _("DD/MM/YYYY")), ("mdy", _("MM/DD/YYYY"))],
    )
    options = models.JSONField(_("options"), default=dict, blank=True)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    progress_done = models.PositiveIntegerField(_("rows processed"), default=0)
    progress_total = models.PositiveIntegerField(_("rows in total"), default=0)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    preview = models.JSONField(_("preview rows"), default=list, blank=True)
    rejected_rows = models.JSONField(_("rejected rows"), default=list, blank=True)
    message = models.TextField(_("message"), blank=True)
    message_data = models.JSONField(
        _("message data"),
        default=dict,
        blank=True,
        help_text=_(
            "The message as a message id and parameters, so each reader sees it in their language. "
            "Empty for runs stored before it existed, which show the message text."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The imports page lists an organization's runs newest first.
            models.Index(fields=["organization", "-created_at"], name="pipelines_importrun_recent"),
        ]

    def __str__(self):
        return f"{self.get_source_display()} {self.created_at:%Y-%m-%d %H:%M}" if self.created_at else self.source

    @property
    def progress_percent(self) -> int:
        if self.status == ImportRunStatus.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, self.progress_done * 100 // self.progress_total)

    @property
    def is_busy(self) -> bool:
        return self.status in (ImportRunStatus.PREVIEWING, ImportRunStatus.QUEUED, ImportRunStatus.RUNNING)

    @property
    def rejected_count(self) -> int:
        return len(self.rejected_rows)


class ImportMapping(models.Model):
    """The column mapping an organization chose for generic files, reused by its next upload."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    source = models.CharField(_("source"), max_length=16, choices=ImportSource.choices)
    columns = models.JSONField(_("columns"), default=dict, help_text=_("Deal field → column name in the file."))
    updated_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("updated by")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("import mapping")
        verbose_name_plural = _("import mappings")
        constraints = [
            models.UniqueConstraint(fields=["organization", "source"], name="pipelines_importmapping_unique_source"),
        ]


class WinModelStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Training")
    SUCCEEDED = "succeeded", _("Trained")
    INSUFFICIENT = "insufficient", _("Too little history")
    FAILED = "failed", _("Failed")


class WinModel(models.Model):
    """One training run of an organization's win-probability model, its held-out metrics and coefficients.

    The latest run that finished as trained or as "too little history" decides what the
    product shows: its coefficients score open deals, or no deal gets a score. A failed
    run keeps the previous model. `parameters` holds everything scoring needs (feature
    columns with their means, scales and coefficients), so no pickled object is stored.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(_("status"), max_length=16, choices=WinModelStatus.choices, default=WinModelStatus.QUEUED)
    requested_by = models.ForeignKey(
        "spm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("started by")
    )
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    progress_done = models.PositiveSmallIntegerField(_("steps done"), default=0)
    progress_total = models.PositiveSmallIntegerField(_("steps in total"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    trained_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    closed_won_count = models.PositiveIntegerField(_("won deals in the history"), default=0)
    closed_lost_count = models.PositiveIntegerField(_("lost deals in the history"), default=0)
    cut_on = models.DateField(
        _("split date"), null=True, blank=True, help_text=_("Deals closed before this date train, the rest test.")
    )
    n_train = models.PositiveIntegerField(_("training deals"), default=0)
    n_test = models.PositiveIntegerField(_("test deals"), default=0)
    n_train_rows = models.PositiveIntegerField(_("training snapshots"), default=0)
    n_test_rows = models.PositiveIntegerField(_("test snapshots"), default=0)
    brier_score = models.FloatField(_("Brier score"), null=True, blank=True)
    auc = models.FloatField(_("AUC"), null=True, blank=True)
    calibration = models.JSONField(_("calibration bands"), default=list, blank=True)
    parameters = models.JSONField(_("model parameters"), default=dict, blank=True)
    scored_count = models.PositiveIntegerField(_("open deals scored"), default=0)
    message = models.TextField(_("message"), blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("win-probability model")
        verbose_name_plural = _("win-probability models")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "version"], name="pipelines_winmodel_unique_version"),
        ]
        indexes = [
            # The admin page and the scoring read an organization's latest runs.
            models.Index(fields=["organization", "-created_at"], name="pipelines_winmodel_recent"),
        ]

    def __str__(self):
        return f"v{self.version} {self.get_status_display()}"

    @property
    def is_busy(self) -> bool:
        return self.status in (WinModelStatus.QUEUED, WinModelStatus.RUNNING)

    @property
    def progress_percent(self) -> int:
        if self.status in (WinModelStatus.SUCCEEDED, WinModelStatus.INSUFFICIENT):
            return 100
        if not self.progress_total:
            return 0
        return min(100, self.progress_done * 100 // self.progress_total)


class DealScore(models.Model):
    """The current win probability of one open deal and the factors that moved it most.

    `factors` lists up to three dicts `{"factor", "value", "effect"}`: the feature, the
    deal's value of it (JSON-ready) and its contribution in log-odds against the average
    training snapshot. Pages turn them into words in the reader's language.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, verbose_name=_("organization"))
    # A ForeignKey with the unique constraint below rather than a OneToOneField, whose
    # unique index on deal_id alone would not start with the organization.
    # No foreign key constraint on the partitioned deal table; pipelines.reference_checks checks it.
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, db_constraint=False, related_name="win_scores", verbose_name=_("deal")
    )
    model = models.ForeignKey(WinModel, on_delete=models.CASCADE, related_name="scores", verbose_name=_("model"))
    probability = models.DecimalField(
        _("win probability"), max_digits=5, decimal_places=4, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    factors = models.JSONField(_("top factors"), default=list, blank=True)
    scored_at = models.DateTimeField(_("scored at"))

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name = _("deal score")
        verbose_name_plural = _("deal scores")
        constraints = [
            models.UniqueConstraint(fields=["organization", "deal"], name="pipelines_dealscore_unique_deal"),
        ]
