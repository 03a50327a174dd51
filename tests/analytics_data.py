"""Builders shared by the pipeline analytics tests: a pipeline with stages, and deals with a stage history."""

import datetime as dt
from decimal import Decimal

from django_scopes import scopes_disabled

from pipelines.models import Activity, ActivityKind, DealStageChange, DealStatus, StageKind
from tests.factories import DealFactory, PipelineFactory, StageFactory


def utc(month, day, year=2017, hour=12):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


def sales_stages(org, *, thresholds=None):
    """Lead(1), Qualified(2), Proposal(3), Negotiation(4) open, then Won(10) and Lost(11)."""
    thresholds = thresholds or {}
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org, name="Sales")
        stages = {}
        for name, order, kind in (
            ("Lead", 1, StageKind.OPEN),
            ("Qualified", 2, StageKind.OPEN),
            ("Proposal", 3, StageKind.OPEN),
            ("Negotiation", 4, StageKind.OPEN),
            ("Won", 10, StageKind.WON),
            ("Lost", 11, StageKind.LOST),
        ):
            stages[name] = StageFactory(
                pipeline=pipeline, name=name, order=order, kind=kind, stalled_after_days=thresholds.get(name)
            )
        return stages


def deal_with_history(owner, stages, path, *, amount="1000.00", **fields):
    """Create a deal that moved through `path`, a list of (stage name, time); the first entry is its creation.

    Status, current stage and `closed_at` follow the last move, as
    pipelines.services.deal_close_state_refresh would derive them.
    """
    with scopes_disabled():
        last_stage = stages[path[-1][0]]
        status = {StageKind.OPEN: DealStatus.OPEN, StageKind.WON: DealStatus.WON, StageKind.LOST: DealStatus.LOST}[
            last_stage.kind
        ]
        deal = DealFactory(
            owner=owner,
            stage=last_stage,
            status=status,
            amount=Decimal(amount),
            created_at=path[0][1],
            closed_at=path[-1][1] if status != DealStatus.OPEN else None,
            **fields,
        )
        previous = None
        for name, changed_at in path:
            DealStageChange.objects.create(
                organization=deal.organization,
                deal=deal,
                from_stage=previous,
                to_stage=stages[name],
                changed_at=changed_at,
            )
            previous = stages[name]
        return deal


_activity_counter = iter(range(1, 10**9))


def add_activity(owner, occurred_at, *, deal=None, kind=ActivityKind.CALL, is_done=True, subject=""):
    with scopes_disabled():
        return Activity.objects.create(
            organization=owner.organization,
            source="test",
            external_id=f"A{next(_activity_counter)}",
            kind=kind,
            owner=owner,
            deal=deal,
            occurred_at=occurred_at,
            is_done=is_done,
            subject=subject,
        )
