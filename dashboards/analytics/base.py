"""Shared inputs of the pipeline analytics: the visible deals, the pipeline and its stages, period bounds."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet

from pipelines.models import Deal, Pipeline, Stage, StageKind
from spm.fiscal import Period
from spm.models import Organization


@dataclass(frozen=True)
class Window:
    """A period with its UTC bounds `[start_utc, end_utc)` in the organization's time zone."""

    period: Period
    start_utc: dt.datetime
    end_utc: dt.datetime

    @classmethod
    def of(cls, period: Period, organization: Organization) -> "Window":
        start_utc, end_utc = period.utc_bounds(organization.tzinfo)
        return cls(period=period, start_utc=start_utc, end_utc=end_utc)


def deal_universe(*, organization: Organization, visible_member_ids: set[int] | None) -> QuerySet[Deal]:
    """Return the deals owned by `visible_member_ids` (None: every deal of the organization), unordered.

    Pass `spm.tenancy.membership_ids_visible(membership)`. Every analytics
    function narrows this queryset further, so a manager's numbers count only
    the deals of the members they may see.
    """
    deals = Deal.objects.filter(organization=organization)
    if visible_member_ids is not None:
        deals = deals.filter(owner_id__in=visible_member_ids)
    return deals.order_by()


def pipeline_list() -> list[Pipeline]:
    """Return the organization's pipelines, the default one first, then by name."""
    return list(Pipeline.objects.order_by("-is_default", "name"))


def open_stages(pipeline: Pipeline) -> list[Stage]:
    """Return the open stages of `pipeline` in stage order (ties by id)."""
    return list(Stage.objects.filter(pipeline=pipeline, kind=StageKind.OPEN).order_by("order", "id"))
