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


class RecordBatchSerializer(serializers.Serializer):
    """A batch for an upsert: the source system of the external ids and up to API_BATCH_MAX_RECORDS records."""

    source = serializers.RegexField(
        r"^[a-z0-9_.-]{1,32}$",
        default="api",
        help_text=_("Source system of the external ids, e.g. hubspot; lower-case letters, digits, _ . - (default api)."),
    )
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, help_text=_("ISO code of the amounts (default: the organization's base currency).")
    )
    records = serializers.ListField(
        child=serializers.DictField(),
        max_length=settings.API_BATCH_MAX_RECORDS,
        allow_empty=True,
        help_text=_("The records; see the fields of each endpoint."),
    )


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
