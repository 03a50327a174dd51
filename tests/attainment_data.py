"""Builders shared by the attainment, leaderboard, contest, privacy and scorecard tests.

Call them inside `scopes_disabled()`. Every time is 12:00 UTC unless given.
"""

import datetime as dt
from decimal import Decimal

from goals.models import Quota, QuotaLevel, QuotaMetric
from pipelines.models import DealStatus, StageKind
from spm.fiscal import fiscal_quarter
from spm.models import Role
from tests.factories import DealFactory, MembershipFactory, PipelineFactory, StageFactory, TeamFactory, UserFactory

Q2 = fiscal_quarter(2017, 2, 1)


def utc(month, day, year=2017, hour=12):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


def stages_create(org) -> dict:
    pipeline = PipelineFactory(organization=org)
    return {
        DealStatus.OPEN: StageFactory(pipeline=pipeline, name="Qualify", order=1, kind=StageKind.OPEN),
        DealStatus.WON: StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON),
        DealStatus.LOST: StageFactory(pipeline=pipeline, name="Lost", order=3, kind=StageKind.LOST),
    }


def deal_create(owner, stages, status, amount, *, closed_at=None, created_at=None, expected_close_on=None):
    return DealFactory(
        owner=owner,
        stage=stages[status],
        status=status,
        amount=Decimal(amount),
        created_at=created_at or utc(1, 10),
        closed_at=closed_at,
        expected_close_on=expected_close_on,
    )


def rep_create(org, name, *, team=None, manager=None, role=Role.REP):
    email = name.lower().replace(" ", ".") + "@acme.example"
    return MembershipFactory(organization=org, role=role, team=team, manager=manager, user=UserFactory(email=email, name=name))


def north_and_south_reps_create(org, north, manager) -> dict:
    """Create the reps Anna and Bert in `north` under `manager`, and Cora and Dirk in a new team South.

    Returns the memberships under "anna", "bert", "cora" and "dirk", and the team under "south".
    South has no manager.
    """
    south = TeamFactory(organization=org, name="South")
    return {
        "anna": rep_create(org, "Anna", team=north, manager=manager),
        "bert": rep_create(org, "Bert", team=north, manager=manager),
        "cora": rep_create(org, "Cora", team=south),
        "dirk": rep_create(org, "Dirk", team=south),
        "south": south,
    }


def quota_create(member=None, target="0", *, team=None, period=Q2, metric=QuotaMetric.WON_REVENUE):
    return Quota.objects.create(
        organization=(member or team).organization,
        level=QuotaLevel.REP if member is not None else QuotaLevel.TEAM,
        membership=member,
        team=team,
        period_kind=period.kind,
        period_start=period.start,
        metric=metric,
        target=Decimal(target),
    )
