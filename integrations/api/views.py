"""The REST API under /api/v1/: token-authenticated reads and batch upserts of one organization's data.

Each request runs inside the token's organization scope (django-scopes), so every
query returns only that organization's rows and an id of another organization is 404.
Lists are cursor-paginated in id order. Writes go through
`pipelines.services_records.records_import`, which validates, writes the audit entry
and schedules the KPI recompute.
"""

import datetime as dt
import logging
from contextlib import ExitStack

from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django_scopes import scope
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.models import Grain, KpiSnapshot, PeriodKind
from goals.models import Quota
from integrations.api import serializers as api_serializers
from integrations.api.authentication import (
    ApiTokenAuthentication,
    ApiTokenRateThrottle,
    HasApiToken,
)
from integrations.api.negotiation import UnsupportedFormat
from integrations.api.selectors import KpiReportError, kpi_report_build
from pipelines.models import Account, Activity, Deal, DealStageChange, Pipeline
from pipelines.services_records import RecordsSourceError, records_import
from spm.models import Membership

logger = logging.getLogger(__name__)

UPDATED_SINCE = OpenApiParameter(
    "updated_since",
    OpenApiTypes.DATETIME,
    description="Only rows changed at or after this ISO 8601 time, e.g. 2017-03-01T00:00:00Z.",
)


class IdCursorPagination(CursorPagination):
    """Pages in id order: a cursor stays valid while rows are added or changed.

    An invalid `page_size` or `cursor` is a 400 naming the parameter. DRF would return
    the default page size for the first and a 404 for the second.
    """

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        size = int(text) if text.isascii() and text.isdigit() else 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        _("Invalid value %(value)r; give a whole number from 1 to %(max)d.")
                        % {"value": text, "max": self.max_page_size}
                    ]
                }
            )
        return size

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: [_("Invalid cursor; use the next or previous link of an earlier page.")]}
            ) from None


class TokenScopedMixin:
    """Authenticates by API token, opens the token's organization scope and picks the response language.

    The language is the request's Accept-Language when it sends one, else the
    organization's language.
    """

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [HasApiToken]
    throttle_classes = [ApiTokenRateThrottle]
    # The error for an unknown ?format=, kept from content negotiation until initial() raises it.
    unsupported_format: UnsupportedFormat | None = None

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self.exit_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        # DRF negotiates before it authenticates. The format error waits for initial(), so a request
        # without a token still gets 401 and the message is in the response language chosen there.
        try:
            return super().perform_content_negotiation(request, force)
        except UnsupportedFormat as error:
            self.unsupported_format = error
            return super().perform_content_negotiation(request, force=True)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        organization = request.auth.organization
        self.organization = organization
        self.exit_stack.enter_context(scope(organization=organization))
        # Times go out in UTC ("…Z"), whatever the server's TIME_ZONE.
        self.exit_stack.enter_context(timezone.override(dt.timezone.utc))
        if "HTTP_ACCEPT_LANGUAGE" not in request.META:
            self.exit_stack.enter_context(translation.override(organization.language))
        if self.unsupported_format is not None:
            # Built again, so the message is in the language that is active now.
            raise UnsupportedFormat(self.unsupported_format.value, self.unsupported_format.formats)
        self.query_parameters_check(request)

    def query_parameters_check(self, request) -> None:
        """Reject query parameters that contain a NUL character, which PostgreSQL text cannot store or compare."""
        invalid = sorted(
            name for name, values in request.query_params.lists() if any("\x00" in text for text in (name, *values))
        )
        if invalid:
            raise ValidationError(
                {
                    name: [_("Invalid value: it contains a NUL character (0x00); remove it and send the request again.")]
                    for name in invalid
                }
            )

    def updated_since(self) -> dt.datetime | None:
        text = self.request.query_params.get("updated_since")
        if not text:
            return None
        invalid = ValidationError(
            {"updated_since": [_("Invalid value %(value)r; give an ISO 8601 time such as 2017-03-01T00:00:00Z.") % {"value": text}]}
        )
        # parse_datetime and parse_date return None for a malformed value and raise ValueError
        # for a well-formed impossible one (2017-02-30, 25:00).
        try:
            # An unescaped "+" of an offset arrives as a space in a query string.
            moment = parse_datetime(text.replace(" ", "+"))
            day = parse_date(text) if moment is None else None
        except ValueError:
            raise invalid from None
        if day is not None:
            moment = dt.datetime(day.year, day.month, day.day)
        if moment is None:
            raise invalid
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=self.organization.tzinfo)
        # PostgreSQL accepts UTC offsets up to 15:59 only, while ISO 8601 allows up to 23:59.
        try:
            return moment.astimezone(dt.timezone.utc)
        except OverflowError:
            raise invalid from None


PAGING_PARAMETERS = ("cursor", "page_size", "format")


def query_parameters_allow(request, allowed: set[str]) -> None:
    """Reject query parameters outside `allowed`: a silently ignored filter (?limit=2, ?status=open) returns the wrong rows."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ValidationError(
            {
                name: [
                    _("Unknown query parameter %(name)r; this endpoint accepts: %(allowed)s.")
                    % {"name": name, "allowed": ", ".join(sorted(allowed))}
                ]
                for name in unknown
            }
        )


class ListBatchView(TokenScopedMixin, generics.ListAPIView):
    """GET lists the rows; POST and PUT upsert a batch of records by external id (write scope)."""

    pagination_class = IdCursorPagination
    # The records_import argument that this endpoint's records go to.
    entity = ""
    # The field that `updated_since` compares, or "" when the rows carry no change time.
    updated_field = ""
    # Query parameters of this endpoint besides paging and updated_since.
    filter_parameters: tuple[str, ...] = ()

    def list(self, request, *args, **kwargs):
        allowed = {*PAGING_PARAMETERS, *self.filter_parameters}
        if self.updated_field:
            allowed.add("updated_since")
        query_parameters_allow(request, allowed)
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = self.base_queryset()
        since = self.updated_since()
        if since is not None and self.updated_field:
            queryset = queryset.filter(**{f"{self.updated_field}__gte": since})
        return queryset

    def base_queryset(self):
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        return self.batch_upsert(request)

    def put(self, request, *args, **kwargs):
        return self.batch_upsert(request)

    def batch_upsert(self, request):
        batch = api_serializers.RecordBatchSerializer(data=request.data, context={"entity": self.entity})
        batch.is_valid(raise_exception=True)
        token = request.auth
        try:
            result = records_import(
                organization=self.organization,
                source=batch.validated_data["source"],
                currency=batch.validated_data.get("currency"),
                actor=token.created_by,
                label=f"api token {token.pk}",
                **{self.entity: batch.validated_data["records"]},
            )
        except RecordsSourceError as error:
            raise ValidationError({"source": [str(error)]}) from None
        logger.info(
            "API batch imported organization_id=%s api_token_id=%s entity=%s records=%s rejected=%s",
            self.organization.pk,
            token.pk,
            self.entity,
            len(batch.validated_data["records"]),
            len(result.record_errors),
        )
        body = {
            "source": result.source,
            "counts": {name: counts.as_dict() for name, counts in result.counts.items()},
            "rejected": [error.as_dict() for error in result.record_errors],
            "warnings": [warning.as_dict() for warning in result.record_warnings],
        }
        return Response(body, status=status.HTTP_200_OK)


def _batch_schema(entity_doc: str):
    return extend_schema(
        request=api_serializers.RecordBatchSerializer,
        responses={200: api_serializers.ImportResultSerializer},
        description=entity_doc,
    )


LIST_WITH_SINCE = extend_schema(parameters=[UPDATED_SINCE])


class PipelineListView(ListBatchView):
    serializer_class = api_serializers.PipelineSerializer
    entity = "pipelines"

    def base_queryset(self):
        return Pipeline.objects.prefetch_related("stages").order_by("id")

    @_batch_schema("Records: name, stages (list of name, kind open/won/lost, probability 0–100). Missing stages are added.")
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    @_batch_schema("Same as POST.")
    def put(self, request, *args, **kwargs):
        return super().put(request, *args, **kwargs)


class PersonListView(ListBatchView):
    serializer_class = api_serializers.PersonSerializer
    entity = "people"

    def base_queryset(self):
        return Membership.objects.select_related("user", "team", "territory").order_by("id")

    @_batch_schema(
        "Records: external_id (required), email, name, role (rep or manager), manager (external id), team, "
        "territory, active_from, active_to."
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    @_batch_schema("Same as POST.")
    def put(self, request, *args, **kwargs):
        return super().put(request, *args, **kwargs)


class AccountListView(ListBatchView):
    serializer_class = api_serializers.AccountSerializer
    entity = "accounts"

    def base_queryset(self):
        return Account.objects.select_related("parent").order_by("id")

    @_batch_schema(
        "Records: external_id (required), name, sector, country, year_established, employees, "
        "annual_revenue_amount, parent (external id)."
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    @_batch_schema("Same as POST.")
    def put(self, request, *args, **kwargs):
        return super().put(request, *args, **kwargs)


class DealListView(ListBatchView):
    serializer_class = api_serializers.DealSerializer
    entity = "deals"
    updated_field = "updated_at"
    filter_parameters = ("source",)

    def base_queryset(self):
        # Deals deleted in the CRM stay listed with their deleted_at, so API clients learn of the deletion.
        deals = Deal.all_objects.select_related("owner__user", "pipeline", "stage", "account", "product").order_by("id")
        source = self.request.query_params.get("source")
        return deals.filter(source=source) if source else deals

    @extend_schema(
        parameters=[UPDATED_SINCE, OpenApiParameter("source", OpenApiTypes.STR, description="Only deals of this source system.")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @_batch_schema(
        "Records: external_id, owner or owner_email, created_at (required); name, pipeline, stage, status "
        "(open/won/lost), entry_stage, amount, currency, probability, closed_at (required when won or lost), "
        "expected_close_on, lost_reason, deal_source, account, product, custom_fields, deleted, deleted_at."
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    @_batch_schema("Same as POST.")
    def put(self, request, *args, **kwargs):
        return super().put(request, *args, **kwargs)


class DealDetailView(TokenScopedMixin, generics.RetrieveAPIView):
    serializer_class = api_serializers.DealSerializer
    lookup_url_kwarg = "deal_id"

    def get_queryset(self):
        return Deal.all_objects.select_related("owner__user", "pipeline", "stage", "account", "product")


class StageChangeListView(ListBatchView):
    serializer_class = api_serializers.StageChangeSerializer
    entity = "stage_changes"
    # NOTE: stage changes have no insert time, so updated_since compares the time of the
    # move. A move dated in the past and sent later is not found this way.
    updated_field = "changed_at"

    def base_queryset(self):
        return DealStageChange.all_objects.select_related("deal", "from_stage", "to_stage").order_by("id")

    @LIST_WITH_SINCE
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @_batch_schema("Records: deal (external id), stage (name), changed_at. Moves are appended; the latest decides the stage.")
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    @_batch_schema("Same as POST.")
    def put(self, request, *args, **kwargs):
        return super().put(request, *args, **kwargs)


class ActivityListView(ListBatchView):
    serializer_class = api_serializers.ActivitySerializer
    entity = "activities"
    # NOTE: activities have no change time, so updated_since compares when they occurred.
    updated_field = "occurred_at"

    def base_queryset(self):
        return Activity.objects.select_related("owner", "deal", "account").order_by("id")

    @LIST_WITH_SINCE
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @_batch_schema(
        "Records: external_id, kind (call/email/meeting/task/note), owner or owner_email, occurred_at (required); "
        "deal, account, type_name, subject, outcome, is_done, is_captured, duration_minutes."
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    @_batch_schema("Same as POST.")
    def put(self, request, *args, **kwargs):
        return super().put(request, *args, **kwargs)


class QuotaListView(TokenScopedMixin, generics.ListAPIView):
    serializer_class = api_serializers.QuotaSerializer
    pagination_class = IdCursorPagination

    def list(self, request, *args, **kwargs):
        query_parameters_allow(request, {*PAGING_PARAMETERS, "updated_since"})
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        quotas = Quota.objects.select_related("team", "territory").order_by("id")
        since = self.updated_since()
        return quotas.filter(updated_at__gte=since) if since else quotas

    @LIST_WITH_SINCE
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class KpiSnapshotListView(TokenScopedMixin, generics.ListAPIView):
    serializer_class = api_serializers.KpiSnapshotSerializer
    pagination_class = IdCursorPagination
    # Filters on a field with fixed values, and those values.
    FILTERS = {"period_kind": PeriodKind.values, "grain": Grain.values}

    def list(self, request, *args, **kwargs):
        query_parameters_allow(request, {*PAGING_PARAMETERS, "updated_since", "period_start", *self.FILTERS})
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        snapshots = KpiSnapshot.objects.order_by("id")
        for name, choices in self.FILTERS.items():
            value = self.request.query_params.get(name)
            if not value:
                continue
            if value not in choices:
                raise ValidationError(
                    {
                        name: [
                            _("Invalid value %(value)r; use one of: %(choices)s.")
                            % {"value": value, "choices": ", ".join(choices)}
                        ]
                    }
                )
            snapshots = snapshots.filter(**{name: value})
        start = self.request.query_params.get("period_start")
        if start:
            try:
                day = parse_date(start) if len(start) == 10 else None
            except ValueError:
                day = None
            if day is None:
                raise ValidationError(
                    {"period_start": [_("Invalid value %(value)r; give a date such as 2017-01-01.") % {"value": start}]}
                )
            snapshots = snapshots.filter(period_start=day)
        since = self.updated_since()
        return snapshots.filter(computed_at__gte=since) if since else snapshots

    @extend_schema(
        parameters=[
            UPDATED_SINCE,
            OpenApiParameter("period_kind", OpenApiTypes.STR, enum=["year", "quarter", "month"]),
            OpenApiParameter("grain", OpenApiTypes.STR, enum=["organization", "territory", "team", "rep"]),
            OpenApiParameter("period_start", OpenApiTypes.DATE),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class KpiReportView(TokenScopedMixin, APIView):
    """The metrics of the `kpi_report` management command, with the same JSON."""

    @extend_schema(
        parameters=[
            OpenApiParameter("period", OpenApiTypes.STR, required=True, description="2017, 2017-Q2, 2017-03, or with metric a range 2017-01-01..2017-03-31."),
            OpenApiParameter("by", OpenApiTypes.STR, enum=["rep", "team", "territory", "organization"]),
            OpenApiParameter("metric", OpenApiTypes.STR, enum=["funnel", "time_in_stage", "velocity", "waterfall", "attainment"]),
            OpenApiParameter("pipeline", OpenApiTypes.STR, description="Name or id of the pipeline (funnel, time_in_stage, velocity)."),
            OpenApiParameter("quota_metric", OpenApiTypes.STR, description="With metric=attainment."),
            OpenApiParameter("as_of", OpenApiTypes.DATE, description="With metric=attainment."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, *args, **kwargs):
        params = request.query_params
        try:
            report = kpi_report_build(
                organization=self.organization,
                period_text=params.get("period", ""),
                by=params.get("by") or None,
                metric=params.get("metric") or None,
                pipeline=params.get("pipeline") or None,
                quota_metric=params.get("quota_metric") or None,
                as_of=params.get("as_of") or None,
            )
        except KpiReportError as error:
            raise ValidationError({error.field: [str(error)]}) from None
        return Response(report)
