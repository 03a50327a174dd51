"""JSON shapes of /api/v1/: stored rows as read, and the batches of records that upserts send.

Money is a string with two decimal places and times are ISO 8601 in UTC, as in the
`kpi_report` command's JSON. The record serializers document the fields that
`pipelines.services_records.records_import` reads; that service checks the values.
"""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from dashboards.models import KpiSnapshot
from goals.models import Quota
from pipelines.models import Account, Activity, Deal, DealStageChange, Pipeline, Stage
from spm.models import Membership

MONEY = {"max_digits": 20, "decimal_places": 2, "read_only": True}


class StageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Stage
        fields = ["id", "name", "order", "kind", "probability"]


class PipelineSerializer(serializers.ModelSerializer):
    stages = StageSerializer(many=True, read_only=True)

    class Meta:
        model = Pipeline
        fields = ["id", "name", "is_default", "stages"]


class PersonSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    team = serializers.CharField(source="team.name", read_only=True, default=None)
    territory = serializers.CharField(source="territory.name", read_only=True, default=None)
    manager_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Membership
        fields = ["id", "external_id", "email", "name", "role", "team", "territory", "manager_id", "active_from", "active_to"]


class AccountSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.external_id", read_only=True, default=None)
    annual_revenue_amount = serializers.DecimalField(allow_null=True, **MONEY)

    class Meta:
        model = Account
        fields = ["id", "external_id", "name", "sector", "country", "year_established", "annual_revenue_amount", "employees", "parent"]


class DealSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.external_id", read_only=True)
    owner_email = serializers.EmailField(source="owner.user.email", read_only=True)
    pipeline = serializers.CharField(source="pipeline.name", read_only=True)
    stage = serializers.CharField(source="stage.name", read_only=True)
    account = serializers.CharField(source="account.external_id", read_only=True, default=None)
    product = serializers.CharField(source="product.name", read_only=True, default=None)
    amount = serializers.DecimalField(allow_null=True, **MONEY)
    base_amount = serializers.DecimalField(allow_null=True, **MONEY)
    custom_fields = serializers.JSONField(read_only=True)

    class Meta:
        model = Deal
        fields = [
            "id",
            "source",
            "external_id",
            "name",
            "owner_id",
            "owner",
            "owner_email",
            "pipeline",
            "stage",
            "status",
            "amount",
            "currency",
            "base_amount",
            "probability",
            "created_at",
            "expected_close_on",
            "closed_at",
            "lost_reason",
            "deal_source",
            "account",
            "product",
            "custom_fields",
            "updated_at",
            "deleted_at",
        ]


class StageChangeSerializer(serializers.ModelSerializer):
    deal = serializers.CharField(source="deal.external_id", read_only=True)
    source = serializers.CharField(source="deal.source", read_only=True)
    from_stage = serializers.CharField(source="from_stage.name", read_only=True, default=None)
    to_stage = serializers.CharField(source="to_stage.name", read_only=True)

    class Meta:
        model = DealStageChange
        fields = ["id", "deal_id", "deal", "source", "from_stage", "to_stage", "changed_at", "is_implied"]


class ActivitySerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.external_id", read_only=True)
    deal = serializers.CharField(source="deal.external_id", read_only=True, default=None)
    account = serializers.CharField(source="account.external_id", read_only=True, default=None)
    duration_minutes = serializers.SerializerMethodField()

    class Meta:
        model = Activity
        fields = [
            "id",
            "source",
            "external_id",
            "kind",
            "type_name",
            "subject",
            "is_done",
            "owner_id",
            "owner",
            "deal_id",
            "deal",
            "account",
            "occurred_at",
            "duration_minutes",
            "outcome",
            "is_captured",
        ]

    def get_duration_minutes(self, activity) -> float | None:
        return None if activity.duration is None else activity.duration.total_seconds() / 60


class QuotaSerializer(serializers.ModelSerializer):
    target = serializers.DecimalField(**MONEY)
    team = serializers.CharField(source="team.name", read_only=True, default=None)
    territory = serializers.CharField(source="territory.name", read_only=True, default=None)

    class Meta:
        model = Quota
        fields = [
            "id",
            "level",
            "membership_id",
            "team",
            "territory",
            "period_kind",
            "period_start",
            "metric",
            "target",
            "is_prorated",
            "updated_at",
        ]


class KpiSnapshotSerializer(serializers.ModelSerializer):
    won_amount = serializers.DecimalField(**MONEY)
    lost_amount = serializers.DecimalField(**MONEY)
    open_amount = serializers.DecimalField(**MONEY)

    class Meta:
        model = KpiSnapshot
        fields = [
            "id",
            "period_kind",
            "period_start",
            "period_end",
            "grain",
            "subject_id",
            "subject_name",
            "won_count",
            "lost_count",
            "won_amount",
            "lost_amount",
            "cycle_days_sum",
            "cycle_days_median",
            "open_count",
            "open_amount",
            "computed_at",
        ]


# Batches of records sent to POST and PUT


# The fields that `records_import` reads from a record of each endpoint. Any other field
# rejects the batch, so a misspelt field ("ammount") is not dropped without notice.
# custom_fields is free-form JSON and is not checked.
RECORD_FIELDS = {
    "pipelines": ("name", "stages"),
    "people": ("external_id", "email", "name", "role", "manager", "team", "territory", "active_from", "active_to"),
    "accounts": (
        "external_id",
        "name",
        "sector",
        "country",
        "year_established",
        "employees",
        "annual_revenue_amount",
        "parent",
    ),
    "deals": (
        "external_id",
        "name",
        "owner",
        "owner_email",
        "pipeline",
        "stage",
        "status",
        "entry_stage",
        "amount",
        "currency",
        "probability",
        "created_at",
        "closed_at",
        "expected_close_on",
        "lost_reason",
        "deal_source",
        "account",
        "product",
        "custom_fields",
        "deleted",
        "deleted_at",
    ),
    "stage_changes": ("deal", "stage", "changed_at"),
    "activities": (
        "external_id",
        "kind",
        "owner",
        "owner_email",
        "occurred_at",
        "deal",
        "account",
        "type_name",
        "subject",
        "outcome",
        "is_done",
        "is_captured",
        "duration_minutes",
    ),
}
# The fields of one stage in a pipeline record's `stages`.
STAGE_FIELDS = ("name", "kind", "probability")


class RecordBatchSerializer(serializers.Serializer):
    """A batch for an upsert: the source system of the external ids and up to API_BATCH_MAX_RECORDS records.

    The context's `entity` (a key of RECORD_FIELDS) selects the record fields that are
    accepted. A field outside them, in the batch or in a record, is a 400 that names it
    and lists the accepted ones, as an unknown query parameter of a list is.
    """

    source = serializers.RegexField(
        r"^[a-z0-9_.-]{1,32}$",
        default="api",
        help_text=_("Source system of the external ids, e.g. hubspot; lower-case letters, digits, _ . - (default api)."),
        error_messages={
            "invalid": _("Invalid source; use 1 to 32 lower-case letters, digits, “_”, “.” or “-”, such as hubspot.")
        },
    )
    currency = serializers.RegexField(
        r"^[A-Z]{3}$",
        required=False,
        help_text=_("ISO code of the amounts (default: the organization's base currency)."),
        error_messages={"invalid": _("Invalid currency; give a three-letter ISO 4217 code in capital letters, such as EUR.")},
    )
    records = serializers.ListField(
        child=serializers.DictField(),
        max_length=settings.API_BATCH_MAX_RECORDS,
        allow_empty=True,
        help_text=_("The records; see the fields of each endpoint."),
    )

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, dict):
            unknown = {
                name: [
                    _("Unknown field %(name)r; a batch accepts: %(allowed)s.")
                    % {"name": name, "allowed": ", ".join(sorted(self.fields))}
                ]
                for name in sorted(set(data) - set(self.fields))
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, dict):
                raise serializers.ValidationError({**error.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def validate_records(self, records: list) -> list:
        errors = unknown_record_fields(records, self.context["entity"])
        if errors:
            raise serializers.ValidationError(errors)
        return records


def unknown_record_fields(records: list, entity: str) -> dict:
    """Return the errors of fields outside RECORD_FIELDS[entity], by record index; each unknown name once, at its first record."""
    allowed = RECORD_FIELDS[entity]
    record_message = _("Unknown field %(name)r; records of this endpoint accept: %(allowed)s.")
    stage_message = _("Unknown field %(name)r; a stage accepts: %(allowed)s.")
    seen = set()
    errors: dict = {}
    for index, record in enumerate(records):
        for name in sorted(set(record) - set(allowed)):
            if name not in seen:
                seen.add(name)
                record_errors = errors.setdefault(index, {})
                record_errors[name] = [record_message % {"name": name, "allowed": ", ".join(sorted(allowed))}]
        stages = record.get("stages") if entity == "pipelines" else None
        if not isinstance(stages, list):
            continue
        for position, stage in enumerate(stages):
            if not isinstance(stage, dict):
                continue
            for name in sorted(set(stage) - set(STAGE_FIELDS)):
                if ("stages", name) not in seen:
                    seen.add(("stages", name))
                    stage_errors = errors.setdefault(index, {}).setdefault("stages", {}).setdefault(position, {})
                    stage_errors[name] = [stage_message % {"name": name, "allowed": ", ".join(sorted(STAGE_FIELDS))}]
    return errors


class RecordErrorSerializer(serializers.Serializer):
    entity = serializers.CharField()
    index = serializers.IntegerField(help_text=_("Position of the record in the batch, from 0."))
    external_id = serializers.CharField()
    field = serializers.CharField()
    value = serializers.CharField()
    reason = serializers.CharField()


class CountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    deleted = serializers.IntegerField()
    rejected = serializers.IntegerField()


class ImportResultSerializer(serializers.Serializer):
    source = serializers.CharField()
    counts = serializers.DictField(child=CountsSerializer())
    rejected = RecordErrorSerializer(many=True)
    warnings = RecordErrorSerializer(
        many=True, help_text=_("Values of written records that were not applied, with the reason; same fields as rejected.")
    )
