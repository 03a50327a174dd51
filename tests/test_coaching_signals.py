"""Coaching signals against the team median, with values computed by hand.

Team North of Acme: reps A (`member`), B (`other_rep`) and C, all reporting to
`manager_member`; a fourth rep D joins in the tests that name it. One pipeline with
open stages Qualified (order 1) and Proposal (order 2), then Won and Lost.
Period: 2017-Q2 (fiscal year = calendar year, Europe/Berlin).
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from coaching.signals import (
    ATTAINMENT_PACING,
    STAGE_CONVERSION,
    WIN_RATE,
    deviation_severity,
    rep_signals,
    signals_for_members,
)
from goals.models import Quota
from pipelines.models import DealStatus, StageKind
from spm.fiscal import parse_period
from spm.models import Role
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    UserFactory,
)

Q2 = parse_period("2017-Q2", 1)
# After the quarter, so pacing compares the whole quarter and nothing is still running.
AFTER_Q2 = dt.datetime(2017, 7, 15, 12, 0, tzinfo=dt.UTC)


def utc(year, month, day, hour=12):
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def stages(org):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        return {
            "qualified": StageFactory(pipeline=pipeline, name="Qualified", order=1),
            "proposal": StageFactory(pipeline=pipeline, name="Proposal", order=2),
            "won": StageFactory(pipeline=pipeline, name="Won", order=3, kind=StageKind.WON, probability=100),
            "lost": StageFactory(pipeline=pipeline, name="Lost", order=4, kind=StageKind.LOST, probability=0),
        }


def _rep(org, team, manager, email):
    with scopes_disabled():
        return MembershipFactory(organization=org, role=Role.REP, team=team, manager=manager, user=UserFactory(email=email))


@pytest.fixture
def rep_c(org, team, manager_member):
    return _rep(org, team, manager_member, "rep-c@acme.example")


def _open_deals(owner, stage, count, created_at=None):
    return [
        DealFactory(owner=owner, stage=stage, created_at=created_at or utc(2017, 4, 10)) for _index in range(count)
    ]


def _closed_deals(owner, stage, status, count, closed_at=None):
    return [
        DealFactory(owner=owner, stage=stage, status=status, created_at=utc(2017, 1, 10), closed_at=closed_at or utc(2017, 5, 15))
        for _index in range(count)
    ]


def test_deviation_severity_examples():
    assert deviation_severity(Decimal("0.4"), Decimal("0.5")) == Decimal("0.2")
    assert deviation_severity(Decimal("10"), Decimal("5")) == Decimal("0.5")
    assert deviation_severity(Decimal("0"), Decimal("0")) == Decimal("0")
    assert deviation_severity(Decimal("3"), Decimal("0")) == Decimal("1")


def test_conversion_below_team_median(org, member, other_rep, rep_c, stages):
    """Cohort created in Q2: A reached Qualified 5 times and Proposal once (0.2), B 4 and 2 (0.5), C 4 and 3 (0.75)."""
    with scopes_disabled():
        a_deals = _open_deals(member, stages["qualified"], 4) + _open_deals(member, stages["proposal"], 1)
        _open_deals(other_rep, stages["qualified"], 2) + _open_deals(other_rep, stages["proposal"], 2)
        _open_deals(rep_c, stages["qualified"], 1) + _open_deals(rep_c, stages["proposal"], 3)

    with scope(organization=org):
        signals = rep_signals(organization=org, membership=member, period=Q2, now=AFTER_Q2)

    assert len(signals) == 1
    signal = signals[0]
    assert signal.metric == STAGE_CONVERSION
    assert signal.key == str(stages["qualified"].pk)
    assert signal.code == f"stage_conversion:{stages['qualified'].pk}"
    assert signal.label == "Stage conversion Qualified → Proposal"
    assert signal.rep_value == Decimal("0.2")
    assert signal.team_median == Decimal("0.5")
    # |0.2 − 0.5| ÷ 0.5
    assert signal.severity == Decimal("0.6")
    assert signal.team_size == 3
    assert signal.sample_size == 5
    assert signal.direction == "below"
    assert signal.is_concern
    assert signal.deal_ids == tuple(sorted(deal.pk for deal in a_deals))
    assert dict(signal.deal_list_params) == {
        "analysis": "funnel",
        "key": str(stages["qualified"].pk),
        "period": "2017-Q2",
        "owner": str(member.pk),
    }


def test_conversion_strength_and_median_rep(org, member, other_rep, rep_c, stages):
    with scopes_disabled():
        _open_deals(member, stages["qualified"], 4) + _open_deals(member, stages["proposal"], 1)
        _open_deals(other_rep, stages["qualified"], 2) + _open_deals(other_rep, stages["proposal"], 2)
        _open_deals(rep_c, stages["qualified"], 1) + _open_deals(rep_c, stages["proposal"], 3)

    with scope(organization=org):
        by_member = signals_for_members(organization=org, memberships=[member, other_rep, rep_c], period=Q2, now=AFTER_Q2)

    # B is the median itself.
    assert by_member[other_rep.pk] == []
    # C converted 0.75 against 0.5: a strength of |0.75 − 0.5| ÷ 0.75 = 1/3.
    (strength,) = by_member[rep_c.pk]
    assert strength.rep_value == Decimal("0.75")
    assert not strength.is_concern
    assert strength.direction == "above"
    assert strength.severity == Decimal("0.25") / Decimal("0.75")


def test_conversion_ignores_small_sample(org, member, other_rep, rep_c, stages):
    """A reached Qualified only twice: below the minimum sample of 3, so no signal however low."""
    with scopes_disabled():
        _open_deals(member, stages["qualified"], 2)
        _open_deals(other_rep, stages["qualified"], 2) + _open_deals(other_rep, stages["proposal"], 2)
        _open_deals(rep_c, stages["qualified"], 1) + _open_deals(rep_c, stages["proposal"], 3)

    with scope(organization=org):
        signals = rep_signals(organization=org, membership=member, period=Q2, now=AFTER_Q2)

    assert signals == []


@pytest.fixture
def closed_and_quotas(org, team, manager_member, member, other_rep, rep_c, stages):
    """Closed in Q2: A 1 won and 3 lost, B 3 won and 1 lost, C 2 and 2, D nothing. Won deals are 1,000.00 each.

    Quotas for Q2 (won revenue): A 10,000, B 4,000, C 4,000, D none.
    """
    rep_d = _rep(org, team, manager_member, "rep-d@acme.example")
    with scopes_disabled():
        for rep, won, lost in ((member, 1, 3), (other_rep, 3, 1), (rep_c, 2, 2)):
            _closed_deals(rep, stages["won"], DealStatus.WON, won)
            _closed_deals(rep, stages["lost"], DealStatus.LOST, lost)
        for rep, target in ((member, "10000"), (other_rep, "4000"), (rep_c, "4000")):
            Quota.objects.create(
                organization=org,
                level="rep",
                membership=rep,
                period_kind="quarter",
                period_start=dt.date(2017, 4, 1),
                metric="won_revenue",
                target=Decimal(target),
            )
    return rep_d


def test_undefined_values_stay_out_of_median(org, member, closed_and_quotas):
    """D closed nothing and has no quota: undefined, so the medians are over A, B and C only.

    Win rate: A 0.25, B 0.75, C 0.5; median 0.5 (with D as 0 it would be 0.375).
    Pacing after the quarter = attainment: A 1,000/10,000 = 0.1, B 0.75, C 0.5; median 0.5.
    """
    with scope(organization=org):
        signals = rep_signals(organization=org, membership=member, period=Q2, now=AFTER_Q2)

    assert [signal.metric for signal in signals] == [ATTAINMENT_PACING, WIN_RATE]
    pacing, rate = signals
    assert pacing.rep_value == Decimal("0.1")
    assert pacing.team_median == Decimal("0.5")
    assert pacing.team_size == 3
    assert pacing.severity == Decimal("0.8")
    assert pacing.sample_size is None
    assert len(pacing.deal_ids) == 1
    assert rate.rep_value == Decimal("0.25")
    assert rate.team_median == Decimal("0.5")
    assert rate.team_size == 3
    assert rate.sample_size == 4
    assert rate.severity == Decimal("0.5")
    assert len(rate.deal_ids) == 4


def test_rep_without_values_gets_no_signal(org, closed_and_quotas):
    rep_d = closed_and_quotas
    with scope(organization=org):
        signals = rep_signals(organization=org, membership=rep_d, period=Q2, now=AFTER_Q2)

    assert signals == []


def test_two_defined_values_are_too_few(org, member, other_rep, rep_c, stages):
    """Only A and B closed deals: two values are below the minimum of three, so no win-rate signal."""
    with scopes_disabled():
        _closed_deals(member, stages["won"], DealStatus.WON, 1)
        _closed_deals(member, stages["lost"], DealStatus.LOST, 3)
        _closed_deals(other_rep, stages["won"], DealStatus.WON, 3)
        _closed_deals(other_rep, stages["lost"], DealStatus.LOST, 1)

    with scope(organization=org):
        signals = rep_signals(organization=org, membership=member, period=Q2, now=AFTER_Q2)

    assert signals == []


def test_rep_without_team_or_manager(org, stages):
    with scopes_disabled():
        loner = MembershipFactory(organization=org, role=Role.REP, user=UserFactory(email="loner@acme.example"))
        _closed_deals(loner, stages["won"], DealStatus.WON, 3)

    with scope(organization=org):
        signals = rep_signals(organization=org, membership=loner, period=Q2, now=AFTER_Q2)

    assert signals == []


def test_time_in_stage_above_median(org, member, other_rep, rep_c, stages):
    """Three completed Qualified stays each, ended in Q2: A 10 days, B 4 days, C 5 days; median 5."""
    from tests.factories import DealStageChangeFactory

    with scopes_disabled():
        for rep, days in ((member, 10), (other_rep, 4), (rep_c, 5)):
            for _index in range(3):
                deal = DealFactory(owner=rep, stage=stages["proposal"], created_at=utc(2017, 3, 1))
                DealStageChangeFactory(deal=deal, to_stage=stages["qualified"], changed_at=utc(2017, 4, 3))
                DealStageChangeFactory(
                    deal=deal,
                    from_stage=stages["qualified"],
                    to_stage=stages["proposal"],
                    changed_at=utc(2017, 4, 3) + dt.timedelta(days=days),
                )

    with scope(organization=org):
        signals = rep_signals(organization=org, membership=member, period=Q2, now=AFTER_Q2)

    (signal,) = [signal for signal in signals if signal.metric == "time_in_stage"]
    assert signal.key == str(stages["qualified"].pk)
    assert signal.rep_value == Decimal("10")
    assert signal.team_median == Decimal("5")
    assert signal.severity == Decimal("0.5")
    assert signal.is_concern
    assert signal.sample_size == 3


def test_query_count_independent_of_team_size(org, team, manager_member, member, other_rep, rep_c, stages):
    """Metrics are grouped by owner: three more reps with deals add no query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def team_with_deals(reps):
        with scopes_disabled():
            for rep in reps:
                _open_deals(rep, stages["qualified"], 3)
                _closed_deals(rep, stages["won"], DealStatus.WON, 2)
                _closed_deals(rep, stages["lost"], DealStatus.LOST, 1)

    def query_count():
        with scope(organization=org), CaptureQueriesContext(connection) as queries:
            rep_signals(organization=org, membership=member, period=Q2, now=AFTER_Q2)
        return len(queries)

    team_with_deals([member, other_rep, rep_c])
    small_team = query_count()
    team_with_deals([_rep(org, team, manager_member, f"extra{index}@acme.example") for index in range(3)])

    assert query_count() == small_team


def test_comparisons_keep_undefined_values(org, member, closed_and_quotas):
    """D has no closed deal and no quota: its win rate and pacing stay None beside the team median of A, B and C."""
    from coaching.signals import rep_signals_and_comparisons

    rep_d = closed_and_quotas
    with scope(organization=org):
        signals, comparisons = rep_signals_and_comparisons(organization=org, membership=rep_d, period=Q2, now=AFTER_Q2)

    by_code = {(row.metric, row.key): row for row in comparisons}
    assert signals == []
    assert by_code[(WIN_RATE, "")].rep_value is None
    assert by_code[(WIN_RATE, "")].team_median == Decimal("0.5")
    assert by_code[(WIN_RATE, "")].team_size == 3
    assert by_code[(ATTAINMENT_PACING, "")].rep_value is None
    assert by_code[(ATTAINMENT_PACING, "")].team_median == Decimal("0.5")
    conversions = [row for row in comparisons if row.metric == STAGE_CONVERSION]
    # Nobody in the team has a deal created in Q2, so conversion is undefined for everyone.
    assert [(row.rep_value, row.team_median, row.team_size) for row in conversions] == [(None, None, 0), (None, None, 0)]


def test_comparison_median_hidden_below_three_values(org, member, other_rep, rep_c, stages):
    from coaching.signals import rep_signals_and_comparisons

    with scopes_disabled():
        _closed_deals(member, stages["won"], DealStatus.WON, 1)
        _closed_deals(other_rep, stages["won"], DealStatus.WON, 3)

    with scope(organization=org):
        _signals, comparisons = rep_signals_and_comparisons(organization=org, membership=member, period=Q2, now=AFTER_Q2)

    (win_rate_row,) = [row for row in comparisons if row.metric == WIN_RATE]
    assert win_rate_row.rep_value == Decimal("1")
    assert win_rate_row.team_median is None
    assert win_rate_row.team_size == 2
