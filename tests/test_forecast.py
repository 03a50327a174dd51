"""Forecast maths: weighted pipeline, categories and overrides, roll-up, submissions, accuracy and bias.

Scenario (organization Acme, EUR, Europe/Berlin, fiscal year = calendar year),
Q2 2017 = 2017-04-01 … 2017-06-30. Stages: Prospecting 10 % (default category
pipeline), Proposal 60 % (best case), Negotiation 90 % (commit), Won, Lost.

Deals of `member` for Q2:
- D1 open Proposal 10,000.00, expected 2017-05-10: 0.6 → 6,000.00
- D2 open Negotiation 5,000.00, expected 2017-06-30, own probability 20 %: → 1,000.00
- D3 open Prospecting 2,000.00, expected 2017-07-01: Q3, not in Q2
- D4 open Proposal 3,000.00 without an expected close date: in no period
- D5 open Negotiation 4,000.00, expected 2017-04-01, deleted in the CRM: left out
- D6 won 7,000.00, closed 2017-05-02: closed, not weighted
Weighted pipeline = 7,000.00; categories: closed 7,000, commit 5,000, best case 10,000.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scope, scopes_disabled

from goals import services
from goals.forecasts import accuracy, categories, pipeline, rollup
from goals.models import (
    ForecastCategory,
    ForecastHorizon,
    ForecastSnapshot,
    ForecastSubmission,
    ForecastSubmissionImmutableError,
)
from pipelines.models import DealScore, DealStatus, StageKind, WinModel, WinModelStatus
from spm.models import AuditLog, Role
from tests.factories import DealFactory, MembershipFactory, PipelineFactory, StageFactory, TeamFactory, UserFactory
from tests.forecast_helpers import Q2, submit_forecast


def utc(month, day, year=2017, hour=12):
    return dt.datetime(year, month, day, hour, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def stages(org):
    with scopes_disabled():
        pipeline_row = PipelineFactory(organization=org)
        return {
            "prospecting": StageFactory(pipeline=pipeline_row, name="Prospecting", order=1, probability=10),
            "proposal": StageFactory(pipeline=pipeline_row, name="Proposal", order=2, probability=60),
            "negotiation": StageFactory(pipeline=pipeline_row, name="Negotiation", order=3, probability=90),
            "won": StageFactory(pipeline=pipeline_row, name="Won", order=4, probability=100, kind=StageKind.WON),
            "lost": StageFactory(pipeline=pipeline_row, name="Lost", order=5, probability=0, kind=StageKind.LOST),
        }


def deal(owner, stage, amount, *, expected=None, status=DealStatus.OPEN, closed_at=None, **extra):
    return DealFactory(
        owner=owner,
        stage=stage,
        amount=Decimal(amount),
        expected_close_on=expected,
        status=status,
        closed_at=closed_at,
        **extra,
    )


@pytest.fixture
def member_deals(member, stages):
    with scopes_disabled():
        return {
            "d1": deal(member, stages["proposal"], "10000.00", expected=dt.date(2017, 5, 10)),
            "d2": deal(member, stages["negotiation"], "5000.00", expected=dt.date(2017, 6, 30), probability=20),
            "d3": deal(member, stages["prospecting"], "2000.00", expected=dt.date(2017, 7, 1)),
            "d4": deal(member, stages["proposal"], "3000.00"),
            "d5": deal(member, stages["negotiation"], "4000.00", expected=dt.date(2017, 4, 1), deleted_at=utc(4, 3)),
            "d6": deal(
                member,
                stages["won"],
                "7000.00",
                expected=dt.date(2017, 5, 1),
                status=DealStatus.WON,
                closed_at=utc(5, 2),
            ),
        }


# --- weighted pipeline ------------------------------------------------------------------------------


def test_weighted_pipeline_uses_override_else_stage_default(org, member_deals):
    with scope(organization=org):
        deals = pipeline.period_open_deals(period=Q2)

    assert sorted(line.deal.pk for line in deals) == sorted([member_deals["d1"].pk, member_deals["d2"].pk])
    assert pipeline.weighted_pipeline(deals) == Decimal("7000.00")


def test_category_totals_suggest_commit_and_best_case(org, member, member_deals):
    with scope(organization=org):
        totals = pipeline.category_totals_by_owner(organization=org, period=Q2)[member.pk]

    assert totals.closed == Decimal("7000.00")
    assert totals.commit == Decimal("5000.00")
    assert totals.best_case == Decimal("10000.00")
    assert totals.pipeline == Decimal("0")
    assert totals.weighted == Decimal("7000.00")
    assert totals.suggested_commit == Decimal("12000.00")
    assert totals.suggested_best_case == Decimal("22000.00")
    assert totals.system_forecast == Decimal("14000.00")


def test_model_weighted_pipeline_takes_score_but_keeps_override(org, member_deals):
    with scopes_disabled():
        model = WinModel.objects.create(organization=org, version=1, status=WinModelStatus.SUCCEEDED)
        for key in ("d1", "d2"):
            DealScore.objects.create(
                organization=org, deal=member_deals[key], model=model, probability=Decimal("0.25"), scored_at=utc(4, 1)
            )
    with scope(organization=org):
        deals = pipeline.period_open_deals(period=Q2)
        scores = pipeline.model_probabilities(organization=org, deal_ids=[line.deal.pk for line in deals])
        total, scored = pipeline.weighted_pipeline_model(deals, scores)

    # D1: 10,000 × 0.25 = 2,500; D2 keeps its own 20 %: 1,000.
    assert total == Decimal("3500.00")
    assert scored == 2


# --- categories ---------------------------------------------------------------------------------------


def test_default_categories_follow_stage_probability(org, stages):
    with scope(organization=org):
        mapping = categories.stage_categories()

    assert mapping[stages["prospecting"].pk] == ForecastCategory.PIPELINE
    assert mapping[stages["proposal"].pk] == ForecastCategory.BEST_CASE
    assert mapping[stages["negotiation"].pk] == ForecastCategory.COMMIT
    assert mapping[stages["won"].pk] == ForecastCategory.CLOSED
    assert mapping[stages["lost"].pk] == ForecastCategory.OMITTED


def test_stage_mapping_change_moves_deals_and_is_audited(org, admin_member, member, stages, member_deals):
    with scope(organization=org):
        changed = categories.forecast_settings_update(
            organization=org,
            actor=admin_member.user,
            period_kind="quarter",
            categories={stages["proposal"].pk: ForecastCategory.COMMIT},
        )
        totals = pipeline.category_totals_by_owner(organization=org, period=Q2)[member.pk]
        audit = AuditLog.objects.get(action=categories.STAGE_CATEGORY_CHANGED)

    assert changed == [f"stage:{stages['proposal'].pk}"]
    assert totals.commit == Decimal("15000.00")
    assert totals.best_case == Decimal("0")
    assert audit.object_id == str(stages["proposal"].pk)
    assert audit.before == {"forecast_category": "best_case"}
    assert audit.after == {"forecast_category": "commit"}
    assert audit.actor == admin_member.user


def test_stage_mapping_rejects_won_stage(org, admin_member, stages):
    with scope(organization=org), pytest.raises(ValidationError):
        categories.forecast_settings_update(
            organization=org,
            actor=admin_member.user,
            period_kind="quarter",
            categories={stages["won"].pk: ForecastCategory.COMMIT},
        )


def test_deal_override_wins_over_stage_and_is_audited(org, member, member_deals):
    with scope(organization=org):
        changed = categories.deal_category_set(
            organization=org, deal=member_deals["d1"], actor=member, category=ForecastCategory.OMITTED
        )
        totals = pipeline.category_totals_by_owner(organization=org, period=Q2)[member.pk]
        audit = AuditLog.objects.get(action=categories.DEAL_CATEGORY_CHANGED)
        cleared = categories.deal_category_set(organization=org, deal=member_deals["d1"], actor=member, category="")
        after_clear = pipeline.category_totals_by_owner(organization=org, period=Q2)[member.pk]

    assert changed is True
    assert totals.best_case == Decimal("0")
    assert totals.omitted == Decimal("10000.00")
    # The weighted pipeline does not depend on the category.
    assert totals.weighted == Decimal("7000.00")
    assert audit.before == {"forecast_category_override": None}
    assert audit.after == {"forecast_category_override": "omitted"}
    assert cleared is True
    assert after_clear.best_case == Decimal("10000.00")


def test_deal_override_rejects_closed_deal(org, member, member_deals):
    with scope(organization=org), pytest.raises(ValidationError):
        categories.deal_category_set(
            organization=org, deal=member_deals["d6"], actor=member, category=ForecastCategory.COMMIT
        )


# --- roll-up through a two-level team tree ------------------------------------------------------------


@pytest.fixture
def tree_people(org, stages):
    """Team Sales (director) with sub-team East (lead); reps r1, r2 in East, r3 directly in Sales."""
    with scopes_disabled():
        director = MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(name="Dana Director"))
        lead = MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(name="Leo Lead"))
        sales = TeamFactory(organization=org, name="Sales", manager=director)
        east = TeamFactory(organization=org, name="East", manager=lead, parent=sales)
        director.team, lead.team = sales, east
        director.save(update_fields=["team"])
        lead.save(update_fields=["team"])
        r1 = MembershipFactory(organization=org, team=east, user=UserFactory(name="Rita One"))
        r2 = MembershipFactory(organization=org, team=east, user=UserFactory(name="Rob Two"))
        r3 = MembershipFactory(organization=org, team=sales, user=UserFactory(name="Ria Three"))
        deal(r1, stages["won"], "1000.00", status=DealStatus.WON, closed_at=utc(4, 20), expected=dt.date(2017, 4, 20))
        deal(r1, stages["negotiation"], "2000.00", expected=dt.date(2017, 6, 1))
        deal(r3, stages["proposal"], "4000.00", expected=dt.date(2017, 5, 1))
        return {"director": director, "lead": lead, "r1": r1, "r2": r2, "r3": r3}


def _rollup(org, root_id):
    tree = rollup.forecast_tree()
    totals = pipeline.category_totals_by_owner(organization=org, period=Q2)
    return rollup.forecast_rollup(
        tree=tree, root_id=root_id, totals_by_owner=totals, latest=rollup.submissions_in_force(period=Q2)
    )


def test_tree_follows_team_managers(org, tree_people):
    people = tree_people
    with scope(organization=org):
        tree = rollup.forecast_tree()

    assert tree.parent[people["r1"].pk] == people["lead"].pk
    assert tree.parent[people["lead"].pk] == people["director"].pk
    assert tree.parent[people["r3"].pk] == people["director"].pk
    assert tree.parent[people["director"].pk] is None
    assert tree.subtree(people["lead"].pk) == {people["lead"].pk, people["r1"].pk, people["r2"].pk}


def test_rollup_sums_submissions_and_system_figures(org, tree_people):
    people = tree_people
    with scope(organization=org):
        submit_forecast(org, people["r1"], "2500.00", "3000.00", submitted_at=utc(4, 3))
        lead_line = _rollup(org, people["lead"].pk)
        director_line = _rollup(org, people["director"].pk)

    # Lead: r1's call 2,500 / 3,000 plus r2's categories 0 / 0.
    assert (lead_line.commit, lead_line.best_case) == (Decimal("2500.00"), Decimal("3000.00"))
    assert lead_line.source == rollup.SOURCE_ROLLUP
    # r3 has not submitted: commit 0 (nothing won, no commit deal), best case 4,000.
    r3_line = next(line for line in director_line.children if line.member_id == people["r3"].pk)
    assert (r3_line.commit, r3_line.best_case) == (Decimal("0"), Decimal("4000.00"))
    assert r3_line.source == rollup.SOURCE_SYSTEM
    assert (director_line.commit, director_line.best_case) == (Decimal("2500.00"), Decimal("7000.00"))
    assert director_line.totals.closed == Decimal("1000.00")
    assert director_line.totals.weighted == Decimal("4200.00")


def test_adjustment_and_manager_call_roll_up(org, tree_people):
    people = tree_people
    with scope(organization=org):
        submit_forecast(org, people["r1"], "2500.00", "3000.00", submitted_at=utc(4, 3))
        submit_forecast(org, people["r2"], "1000.00", "1500.00", submitted_by=people["lead"], submitted_at=utc(4, 4))
        after_adjustment = _rollup(org, people["director"].pk)
        submit_forecast(org, people["lead"], "3200.00", "4000.00", submitted_at=utc(4, 5))
        after_call = _rollup(org, people["director"].pk)
        organization_line = _rollup(org, None)

    assert (after_adjustment.commit, after_adjustment.best_case) == (Decimal("3500.00"), Decimal("8500.00"))
    r2_line = next(
        line for line in after_adjustment.children[0].children if line.member_id == people["r2"].pk
    )
    assert r2_line.source == rollup.SOURCE_ADJUSTED
    assert (after_call.commit, after_call.best_case) == (Decimal("3200.00"), Decimal("8000.00"))
    assert [line.member_id for line in organization_line.children] == [people["director"].pk]
    assert (organization_line.commit, organization_line.best_case) == (Decimal("3200.00"), Decimal("8000.00"))


def _demote_to_rep(org, membership):
    """Give `membership` the rep role through the service that the people page's member form calls."""
    with scope(organization=org):
        services.membership_update(
            membership=membership,
            actor=None,
            role=Role.REP,
            active_from=membership.active_from,
            active_to=membership.active_to,
            ramp_schedule=membership.ramp_schedule,
            manager=membership.manager,
        )


def test_tree_skips_links_to_demoted_manager(org, team, manager_member, member):
    """manager_member leads North and is `member`'s manager; as a rep they lead nobody in the tree."""
    _demote_to_rep(org, manager_member)

    with scope(organization=org):
        tree = rollup.forecast_tree()

    assert team.manager_id == manager_member.pk
    assert tree.parent[member.pk] is None
    assert tree.parent[manager_member.pk] is None
    assert tree.subtree(manager_member.pk) == {manager_member.pk}
    assert tree.children[None] == [manager_member.pk, member.pk]


def test_tree_skips_rep_led_team(org, tree_people):
    """East's lead becomes a rep: East's reps go to the manager of the parent team Sales."""
    people = tree_people
    _demote_to_rep(org, people["lead"])

    with scope(organization=org):
        tree = rollup.forecast_tree()

    assert tree.parent[people["r1"].pk] == people["director"].pk
    assert tree.parent[people["r2"].pk] == people["director"].pk
    assert tree.parent[people["lead"].pk] == people["director"].pk
    assert tree.subtree(people["lead"].pk) == {people["lead"].pk}


def test_tree_loop_keeps_member_below(org):
    """Managers by name: Dora → Abe, Abe → Bert, Bert → Abe. Dora is walked first and is not in the loop."""
    with scopes_disabled():
        abe, bert, dora = (
            MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(name=name))
            for name in ("B Abe", "C Bert", "A Dora")
        )
        dora.manager, abe.manager, bert.manager = abe, bert, abe
        for person in (dora, abe, bert):
            person.save(update_fields=["manager"])

    with scope(organization=org):
        tree = rollup.forecast_tree()

    assert list(tree.members) == [dora.pk, abe.pk, bert.pk]
    assert tree.parent == {dora.pk: abe.pk, abe.pk: None, bert.pk: abe.pk}
    assert tree.children == {abe.pk: [dora.pk, bert.pk], None: [abe.pk]}
    assert tree.subtree(abe.pk) == {abe.pk, bert.pk, dora.pk}


def test_tree_cuts_each_loop_once(org):
    """Loops Abe ↔ Bert and Cleo → Dora → Eve → Cleo, with Finn reporting to Eve."""
    with scopes_disabled():
        abe, bert, cleo, dora, eve, finn = (
            MembershipFactory(organization=org, role=Role.MANAGER, user=UserFactory(name=name))
            for name in ("Abe", "Bert", "Cleo", "Dora", "Eve", "Finn")
        )
        for person, manager in ((abe, bert), (bert, abe), (cleo, dora), (dora, eve), (eve, cleo), (finn, eve)):
            person.manager = manager
            person.save(update_fields=["manager"])

    with scope(organization=org):
        tree = rollup.forecast_tree()

    assert tree.parent == {
        abe.pk: None,
        bert.pk: abe.pk,
        cleo.pk: None,
        dora.pk: eve.pk,
        eve.pk: cleo.pk,
        finn.pk: eve.pk,
    }


def test_restricted_tree_moves_orphans_to_top(org, tree_people):
    people = tree_people
    with scope(organization=org):
        tree = rollup.forecast_tree()

    restricted = tree.restricted_to({people["lead"].pk, people["r1"].pk, people["r3"].pk})

    assert restricted.parent == {people["lead"].pk: None, people["r1"].pk: people["lead"].pk, people["r3"].pk: None}
    assert restricted.children == {None: [people["lead"].pk, people["r3"].pk], people["lead"].pk: [people["r1"].pk]}
    assert set(restricted.members) == {people["lead"].pk, people["r1"].pk, people["r3"].pk}
    assert restricted.subtree(None) == {people["lead"].pk, people["r1"].pk, people["r3"].pk}


# --- submissions --------------------------------------------------------------------------------------


def test_submissions_are_history_and_latest_wins(org, member):
    with scope(organization=org):
        first = submit_forecast(org, member, "100.00", "200.00", submitted_at=utc(4, 3))
        submit_forecast(org, member, "150.00", "250.00", submitted_at=utc(4, 10))
        history = rollup.submission_history(period=Q2, subject_ids={member.pk})
        in_force = rollup.submissions_in_force(period=Q2)[member.pk]
        earlier = rollup.submissions_in_force(period=Q2, as_of=utc(4, 5))[member.pk]
        first.commit_amount = Decimal("999.00")
        with pytest.raises(ForecastSubmissionImmutableError):
            first.save()
        with pytest.raises(ForecastSubmissionImmutableError):
            first.delete()
        stored = ForecastSubmission.objects.get(pk=first.pk)

    assert [row.commit_amount for row in history] == [Decimal("150.00"), Decimal("100.00")]
    assert in_force.commit_amount == Decimal("150.00")
    assert earlier.commit_amount == Decimal("100.00")
    assert stored.commit_amount == Decimal("100.00")


def test_submission_rejects_invalid_input(org, member):
    with scope(organization=org):
        with pytest.raises(ValidationError, match="not for Q2 FY 2017"):
            submit_forecast(org, member, "1", "2", today=dt.date(2017, 7, 2))
        with pytest.raises(ValidationError, match="below commit"):
            submit_forecast(org, member, "500.00", "400.00", submitted_at=utc(4, 3))
        assert ForecastSubmission.objects.count() == 0


def test_next_period_is_open_for_submissions():
    periods = rollup.submittable_periods(today=dt.date(2017, 3, 31), kind="quarter", start_month=1)

    assert [period.label for period in periods] == ["2017-Q1", "2017-Q2"]


# --- accuracy and bias --------------------------------------------------------------------------------


def test_accuracy_and_bias_on_exact_numbers():
    assert accuracy.forecast_accuracy(Decimal("900"), Decimal("1000")) == Decimal("0.9")
    assert accuracy.forecast_accuracy(Decimal("1200"), Decimal("1000")) == Decimal("0.8")
    assert accuracy.forecast_bias(Decimal("1200"), Decimal("1000")) == Decimal("0.2")
    assert accuracy.forecast_bias(Decimal("800"), Decimal("1000")) == Decimal("-0.2")


def test_accuracy_with_actual_zero_is_undefined():
    assert accuracy.forecast_accuracy(Decimal("500"), Decimal("0")) is None
    assert accuracy.forecast_accuracy(Decimal("0"), Decimal("0")) is None
    assert accuracy.forecast_bias(Decimal("500"), Decimal("0")) is None


def test_accuracy_uses_submission_in_force(org, manager_member, member, other_rep, member_deals):
    """member won 7,000 in Q2. Calls: 8,400 (03-20), adjusted to 5,600 (05-01), then 7,700 (06-20).

    Horizons: start 04-01, 8 weeks 05-06, 4 weeks 06-03, 1 week 06-24 (local midnights).
    """
    with scope(organization=org):
        for commit, by, submitted_at in (
            ("8400.00", member, utc(3, 20)),
            ("5600.00", manager_member, utc(5, 1)),
            ("7700.00", member, utc(6, 20)),
        ):
            ForecastSubmission.objects.create(
                organization=org,
                subject=member,
                submitted_by=by,
                period_kind="quarter",
                period_start=Q2.start,
                commit_amount=Decimal(commit),
                best_case_amount=Decimal(commit),
                submitted_at=submitted_at,
            )
        tree = rollup.forecast_tree()
        member_line, other_line = accuracy.forecast_accuracy_lines(
            organization=org, tree=tree, period=Q2, subject_ids=[member.pk, other_rep.pk]
        )

    assert member_line.actual == Decimal("7000.00")
    assert member_line.at_start.amount == Decimal("8400.00")
    assert member_line.at_start.source == rollup.SOURCE_SUBMITTED
    assert member_line.accuracy == Decimal("0.8")
    assert member_line.biases == [
        (ForecastHorizon.WEEKS_8, Decimal("-0.2")),
        (ForecastHorizon.WEEKS_4, Decimal("-0.2")),
        (ForecastHorizon.WEEKS_1, Decimal("0.1")),
    ]
    assert member_line.forecasts[ForecastHorizon.WEEKS_8].source == rollup.SOURCE_ADJUSTED
    # other_rep won nothing: accuracy and bias are undefined, with the reason.
    assert other_line.actual == Decimal("0")
    assert other_line.accuracy is None
    assert [bias for _horizon, bias in other_line.biases] == [None, None, None]
    assert other_line.undefined_reason == "Nothing was won in this period, so accuracy and bias are undefined."


def test_accuracy_falls_back_to_system_snapshot(org, manager_member, member, other_rep, member_deals):
    """No submissions: the start snapshot records 5,250 for member and 1,000 for other_rep; the team won 7,000."""
    with scope(organization=org):
        for membership, amount in ((member, "5250.00"), (other_rep, "1000.00"), (manager_member, "0.00")):
            ForecastSnapshot.objects.create(
                organization=org,
                membership=membership,
                period_kind="quarter",
                period_start=Q2.start,
                horizon=ForecastHorizon.START,
                as_of=utc(3, 31, hour=22),
                weighted_pipeline_amount=Decimal(amount),
                won_amount=Decimal("0"),
                forecast_amount=Decimal(amount),
            )
        tree = rollup.forecast_tree()
        member_line, team_line = accuracy.forecast_accuracy_lines(
            organization=org, tree=tree, period=Q2, subject_ids=[member.pk, manager_member.pk]
        )

    assert member_line.at_start.amount == Decimal("5250.00")
    assert member_line.at_start.source == rollup.SOURCE_SYSTEM
    assert member_line.accuracy == Decimal("0.75")
    # Team: 5,250 + 1,000 + 0 = 6,250 against 7,000: 1 − 750 / 7,000.
    assert team_line.at_start.amount == Decimal("6250.00")
    assert team_line.accuracy == 1 - Decimal("750") / Decimal("7000")
    # No snapshot was recorded 8 weeks before the end.
    assert member_line.forecasts[ForecastHorizon.WEEKS_8].amount is None
    assert member_line.biases[0] == (ForecastHorizon.WEEKS_8, None)


def test_accuracy_lines_query_count(org, manager_member, member, other_rep, member_deals, django_assert_num_queries):
    with scope(organization=org):
        tree = rollup.forecast_tree()
        # Won amounts, snapshots and submissions: one query each, whatever the number of people.
        with django_assert_num_queries(3):
            lines = accuracy.forecast_accuracy_lines(
                organization=org, tree=tree, period=Q2, subject_ids=[manager_member.pk, member.pk, other_rep.pk, None]
            )

    assert [line.actual for line in lines] == [Decimal("7000.00"), Decimal("7000.00"), Decimal("0"), Decimal("7000.00")]
