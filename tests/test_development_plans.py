"""Development plans: goal values measured from a small hand-made data set, and who may see and edit a plan.

Pipeline Sales: Lead(1) → Qualified(2) → Proposal(3) → Negotiation(4), then Won and
Lost. Acme's time zone is Europe/Berlin; all times are 12:00 UTC in 2017.

The rep's deals, baseline cohort 2017-Q2 (created April to June):
- B1: Lead 04-03 → Qualified 04-10 → Proposal 04-20 → Qualified 05-02 (backwards, still reached Proposal)
- B2: Qualified 04-05 → Lost 05-10
- B3: Qualified 04-06
- B4: Lead 04-07 → Qualified 04-12
Qualified → Proposal: reached(Qualified) 4, reached(Proposal) 1, so 1/4 = 0.25.
Win rate Q2: 0 won, 1 lost (B2) = 0. Won amount Q2: nothing, so the average deal size is undefined.
Completed stays in Qualified that ended in Q2: B1 04-10 → 04-20 = 10 days, B2 04-05 → 05-10 = 35 days,
mean 22.5 days (B1's second stay and B4's have not ended).

Target cohort 2017-Q3 (created July to September):
- C1: Qualified 07-03 → Proposal 07-13 → Won 08-01, amount 3,000
- C2: Qualified 07-04 → Proposal 07-24
- C3: Qualified 07-05
- C4: Lead 07-06 → Qualified 07-10 → Lost 07-25
- C5: Lead 07-07 → Negotiation 07-20 (skips Qualified and Proposal; both count as reached)
- C6: Qualified 07-08
reached(Qualified) 6, reached(Proposal) 3 (C1, C2, C5): conversion 3/6 = 0.5.
Win rate Q3: 1 won (C1), 1 lost (C4) = 0.5. Average deal size Q3: 3,000.
Stays in Qualified ended in Q3: C1 10 days, C2 20 days, C4 15 days: mean 15 days.
Activities: 3 done and 1 planned in Q3, 1 done in Q2.

The other rep's deal D1 (Qualified 07-03 → Proposal 07-10 → Won 07-20) and two activities must not count.

Progress = (current − baseline) ÷ (target − baseline):
- conversion, target 0.75: (0.5 − 0.25) ÷ (0.75 − 0.25) = 0.5
- win rate, target 1: (0.5 − 0) ÷ (1 − 0) = 0.5
- time in Qualified, target 10 days: (15 − 22.5) ÷ (10 − 22.5) = 0.6
- activities, target 5: (3 − 1) ÷ (5 − 1) = 0.5
- average deal size: undefined, because the baseline is undefined.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from coaching.skills.indicators import goal_progress, indicator_value
from coaching.skills.models import (
    DevelopmentGoal,
    DevelopmentPlan,
    Indicator,
    TrainingItem,
)
from coaching.skills.selectors import goal_progress_list
from coaching.skills.services import (
    plan_create,
    plan_create_with_goal,
    plan_delete,
    plan_goal_add,
    plan_goal_delete,
    plan_update,
    training_item_add,
    training_item_update,
)
from spm.fiscal import parse_period
from tests.analytics_data import add_activity, deal_with_history, sales_stages, utc


@pytest.fixture
def stages(org):
    return sales_stages(org)


@pytest.fixture
def deals(org, member, other_rep, stages):
    def deal(owner, path, **fields):
        return deal_with_history(owner, stages, path, **fields)

    deal(member, [("Lead", utc(4, 3)), ("Qualified", utc(4, 10)), ("Proposal", utc(4, 20)), ("Qualified", utc(5, 2))])
    deal(member, [("Qualified", utc(4, 5)), ("Lost", utc(5, 10))])
    deal(member, [("Qualified", utc(4, 6))])
    deal(member, [("Lead", utc(4, 7)), ("Qualified", utc(4, 12))])

    deal(member, [("Qualified", utc(7, 3)), ("Proposal", utc(7, 13)), ("Won", utc(8, 1))], amount="3000.00")
    deal(member, [("Qualified", utc(7, 4)), ("Proposal", utc(7, 24))])
    deal(member, [("Qualified", utc(7, 5))])
    deal(member, [("Lead", utc(7, 6)), ("Qualified", utc(7, 10)), ("Lost", utc(7, 25))])
    deal(member, [("Lead", utc(7, 7)), ("Negotiation", utc(7, 20))])
    deal(member, [("Qualified", utc(7, 8))])

    deal(other_rep, [("Qualified", utc(7, 3)), ("Proposal", utc(7, 10)), ("Won", utc(7, 20))], amount="9000.00")

    for day in (3, 10, 17):
        add_activity(member, utc(7, day))
    add_activity(member, utc(7, 24), is_done=False)
    add_activity(member, utc(5, 2))
    add_activity(other_rep, utc(7, 3))
    add_activity(other_rep, utc(7, 4))


def measure(org, member, indicator, label, stage=None):
    with scope(organization=org):
        return indicator_value(
            organization=org, member=member, indicator=indicator, period=parse_period(label, 1), stage=stage
        )


@pytest.mark.parametrize(
    ("indicator", "stage_name", "baseline", "current"),
    [
        (Indicator.STAGE_CONVERSION, "Qualified", Decimal("0.25"), Decimal("0.5")),
        (Indicator.WIN_RATE, None, Decimal("0"), Decimal("0.5")),
        (Indicator.TIME_IN_STAGE, "Qualified", Decimal("22.5"), Decimal("15")),
        (Indicator.ACTIVITY_COUNT, None, Decimal("1"), Decimal("3")),
        (Indicator.AVERAGE_DEAL_SIZE, None, None, Decimal("3000")),
        (Indicator.ACTIVITIES_PER_WON_DEAL, None, None, Decimal("3")),
    ],
)
def test_indicator_values_from_data(org, member, stages, deals, indicator, stage_name, baseline, current):
    stage = stages[stage_name] if stage_name else None

    baseline_value = measure(org, member, indicator, "2017-Q2", stage)
    current_value = measure(org, member, indicator, "2017-Q3", stage)

    assert baseline_value.value == baseline
    assert current_value.value == current
    assert current_value.reason == ""


def test_undefined_indicator_names_reason(org, member, stages, deals):
    result = measure(org, member, Indicator.AVERAGE_DEAL_SIZE, "2017-Q2")

    assert result.value is None
    assert result.reason == "No deal was won in 2017-Q2."


def test_conversion_without_cohort_names_reason(org, member, stages, deals):
    result = measure(org, member, Indicator.STAGE_CONVERSION, "2017-Q1", stages["Qualified"])

    assert result.value is None
    assert result.reason == "No deal created in 2017-Q1 reached Qualified."


@pytest.mark.parametrize(
    ("indicator", "baseline", "target", "current", "expected"),
    [
        (Indicator.STAGE_CONVERSION, Decimal("0.25"), Decimal("0.75"), Decimal("0.5"), Decimal("0.5")),
        (Indicator.TIME_IN_STAGE, Decimal("22.5"), Decimal("10"), Decimal("15"), Decimal("0.6")),
        (Indicator.WIN_RATE, Decimal("0.3"), Decimal("0.4"), Decimal("0.2"), Decimal("-1")),
        (Indicator.ACTIVITIES_PER_WON_DEAL, Decimal("8"), Decimal("6"), Decimal("9"), Decimal("-0.5")),
        (Indicator.WIN_RATE, None, Decimal("1"), Decimal("0.5"), None),
        (Indicator.WIN_RATE, Decimal("0.5"), Decimal("0.5"), Decimal("0.5"), None),
        # A target on the worse side of the baseline: (0.55 − 0.714) ÷ (0.7 − 0.714) would be 11.7.
        (Indicator.WIN_RATE, Decimal("0.714"), Decimal("0.7"), Decimal("0.55"), None),
        (Indicator.TIME_IN_STAGE, Decimal("10"), Decimal("12"), Decimal("11"), None),
        (Indicator.ACTIVITIES_PER_WON_DEAL, Decimal("6"), Decimal("8"), Decimal("7"), None),
    ],
)
def test_goal_progress_share(indicator, baseline, target, current, expected):
    progress = goal_progress(indicator=indicator, baseline=baseline, target=target, current=current, currency="EUR")

    assert progress.value == expected


@pytest.mark.parametrize(
    ("language", "indicator", "baseline", "target", "expected"),
    [
        (
            "en",
            Indicator.WIN_RATE,
            Decimal("0.714"),
            Decimal("0.7"),
            "The target 70.0% is not above the baseline 71.4%, but this indicator should rise. Progress is not defined.",
        ),
        (
            "de",
            Indicator.WIN_RATE,
            Decimal("0.714"),
            Decimal("0.7"),
            "Der Zielwert 70,0\xa0% liegt nicht über dem Ausgangswert 71,4\xa0%, dieser Wert soll aber steigen. "
            "Der Fortschritt ist nicht definiert.",
        ),
        (
            "en",
            Indicator.TIME_IN_STAGE,
            Decimal("10"),
            Decimal("12"),
            "The target 12.0\xa0days is not below the baseline 10.0\xa0days, but this indicator should fall. "
            "Progress is not defined.",
        ),
        (
            "de",
            Indicator.TIME_IN_STAGE,
            Decimal("10"),
            Decimal("12"),
            "Der Zielwert 12,0\xa0Tage liegt nicht unter dem Ausgangswert 10,0\xa0Tage, dieser Wert soll aber sinken. "
            "Der Fortschritt ist nicht definiert.",
        ),
    ],
)
def test_goal_progress_target_on_worse_side(language, indicator, baseline, target, expected):
    from django.utils import translation

    with translation.override(language):
        progress = goal_progress(
            indicator=indicator, baseline=baseline, target=target, current=Decimal("0.55"), currency="EUR"
        )

    assert progress.value is None
    assert progress.reason == expected


@pytest.fixture
def plan(org, manager_member, member, stages):
    with scope(organization=org):
        plan = plan_create(organization=org, creator=manager_member, member=member, title="Move deals to proposal")
        for indicator, stage, target in (
            (Indicator.STAGE_CONVERSION, stages["Qualified"], Decimal("0.75")),
            (Indicator.WIN_RATE, None, Decimal("1")),
            (Indicator.TIME_IN_STAGE, stages["Qualified"], Decimal("10")),
            (Indicator.ACTIVITY_COUNT, None, Decimal("5")),
            (Indicator.AVERAGE_DEAL_SIZE, None, Decimal("4000")),
        ):
            plan_goal_add(
                plan=plan,
                editor=manager_member,
                indicator=indicator,
                stage=stage,
                baseline_period_label="2017-Q2",
                period_label="2017-Q3",
                target_value=target,
            )
        training_item_add(plan=plan, editor=manager_member, title="Proposal workshop", due_on=utc(9, 15).date())
        return plan


def test_plan_progress_measured_from_data(org, plan, deals):
    with scope(organization=org):
        rows = goal_progress_list(organization=org, plan=plan)

    progress = {row.goal.indicator: row.progress.value for row in rows}
    assert progress[Indicator.STAGE_CONVERSION] == Decimal("0.5")
    assert progress[Indicator.WIN_RATE] == Decimal("0.5")
    assert progress[Indicator.TIME_IN_STAGE] == Decimal("0.6")
    assert progress[Indicator.ACTIVITY_COUNT] == Decimal("0.5")
    assert progress[Indicator.AVERAGE_DEAL_SIZE] is None
    assert rows[0].label == "Conversion Qualified → Proposal"
    assert rows[0].due_on.isoformat() == "2017-09-30"


def test_plan_page_shows_values_and_reason(client, org, plan, deals, manager_member):
    client.force_login(manager_member.user)

    response = client.get(reverse("plan_detail", kwargs={"org_slug": org.slug, "plan_id": plan.pk}))

    assert response.status_code == 200
    text = response.content.decode()
    assert "25.0%" in text
    assert "75.0%" in text
    assert "50.0%" in text
    assert "60.0%" in text
    assert "The baseline is not defined." in text
    assert "Proposal workshop" in text


def test_plan_page_german_formats(client, org, plan, deals, manager_member):
    with scopes_disabled():
        manager_member.user.language = "de"
        manager_member.user.save(update_fields=["language"])
    client.force_login(manager_member.user)

    response = client.get(reverse("plan_detail", kwargs={"org_slug": org.slug, "plan_id": plan.pk}))

    text = response.content.decode()
    assert "25,0\xa0%" in text
    assert "3.000,00\xa0€" in text


def test_manager_creates_plan_with_percent_target(client, org, member, manager_member, stages):
    client.force_login(manager_member.user)
    url = reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk})

    response = client.post(
        url,
        {
            "plan-title": "Qualified to proposal",
            "goal-indicator": Indicator.STAGE_CONVERSION,
            "goal-stage": stages["Qualified"].pk,
            "goal-baseline_period_label": "2017-Q2",
            "goal-period_label": "2017-Q3",
            "goal-target_value": "40",
        },
    )

    assert response.status_code == 302
    with scope(organization=org):
        goal = DevelopmentGoal.objects.get()
        assert goal.plan.member == member
        assert goal.target_value == Decimal("0.4")
        assert goal.stage == stages["Qualified"]


def test_plan_form_rejects_bad_period(client, org, member, manager_member, stages):
    client.force_login(manager_member.user)
    url = reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk})

    response = client.post(
        url,
        {
            "plan-title": "Win more",
            "goal-indicator": Indicator.STAGE_CONVERSION,
            "goal-baseline_period_label": "Q2",
            "goal-period_label": "2017-Q3",
            "goal-target_value": "40",
        },
    )

    assert response.status_code == 400
    text = response.content.decode()
    assert "Invalid period &#x27;Q2&#x27;" in text
    assert "This indicator needs a stage; choose one." in text
    with scope(organization=org):
        assert DevelopmentPlan.objects.count() == 0


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "The target 40.0% is not above the baseline 50.0%, but this indicator should rise. "
            "Enter a target above the baseline of 2017-Q3.",
        ),
        (
            "de",
            "Der Zielwert 40,0\xa0% liegt nicht über dem Ausgangswert 50,0\xa0%, dieser Wert soll aber steigen. "
            "Geben Sie einen Zielwert über dem Ausgangswert von 2017-Q3 ein.",
        ),
    ],
)
def test_plan_form_rejects_target_below_baseline(client, org, member, manager_member, deals, language, expected):
    from django.utils import translation

    client.force_login(manager_member.user)
    url = reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk})
    data = {
        "plan-title": "Win more",
        "goal-indicator": Indicator.WIN_RATE,
        "goal-baseline_period_label": "2017-Q3",
        "goal-period_label": "2017-Q4",
        "goal-target_value": "40",
    }

    with translation.override(language):
        response = client.post(url, data, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 400
    assert response.context["goal_form"].errors["target_value"] == [expected]
    with scope(organization=org):
        assert DevelopmentPlan.objects.count() == 0


@pytest.mark.parametrize(
    ("indicator", "target", "expected"),
    [
        (Indicator.TIME_IN_STAGE, "-5", "The target -5 is negative; enter 0 or more."),
        (Indicator.ACTIVITIES_PER_WON_DEAL, "-3", "The target -3 is negative; enter 0 or more."),
        (Indicator.AVERAGE_DEAL_SIZE, "-2500.5", "The target -2,500.5 is negative; enter 0 or more."),
        (Indicator.ACTIVITY_COUNT, "-1", "The target -1 is negative; enter 0 or more."),
        (Indicator.WIN_RATE, "-5", "-5 is not a percentage; enter 0 to 100."),
        (Indicator.STAGE_CONVERSION, "101", "101 is not a percentage; enter 0 to 100."),
    ],
)
def test_plan_form_rejects_negative_target(client, org, member, manager_member, stages, indicator, target, expected):
    """Without deals no baseline is measured, so only the range check stops these targets."""
    client.force_login(manager_member.user)
    url = reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk})
    data = {
        "plan-title": "Faster deals",
        "goal-indicator": indicator,
        "goal-stage": stages["Qualified"].pk,
        "goal-baseline_period_label": "2017-Q2",
        "goal-period_label": "2017-Q3",
        "goal-target_value": target,
    }

    response = client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.context["goal_form"].errors["target_value"] == [expected]
    with scope(organization=org):
        assert DevelopmentPlan.objects.count() == 0


def test_plan_form_accepts_zero_days_target(client, org, member, manager_member, stages):
    client.force_login(manager_member.user)
    url = reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk})
    data = {
        "plan-title": "Faster deals",
        "goal-indicator": Indicator.TIME_IN_STAGE,
        "goal-stage": stages["Qualified"].pk,
        "goal-baseline_period_label": "2017-Q2",
        "goal-period_label": "2017-Q3",
        "goal-target_value": "0",
    }

    response = client.post(url, data)

    assert response.status_code == 302
    with scope(organization=org):
        assert DevelopmentGoal.objects.get().target_value == Decimal("0")


def test_goal_edit_rejects_negative_days_in_german(client, org, plan, manager_member, stages):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.TIME_IN_STAGE)

    response = client.post(
        plan_url("plan_goal_edit", org, goal_id=goal.pk),
        {
            "goal-indicator": Indicator.TIME_IN_STAGE,
            "goal-stage": stages["Qualified"].pk,
            "goal-baseline_period_label": "2017-Q2",
            "goal-period_label": "2017-Q3",
            "goal-target_value": "-5.5",
        },
        HTTP_ACCEPT_LANGUAGE="de",
    )

    assert response.status_code == 400
    assert "-5,5" in response.context["goal_form"].errors["target_value"][0]
    with scope(organization=org):
        goal.refresh_from_db()
    assert goal.target_value == Decimal("10")


def test_goal_edit_rejects_longer_time_in_stage(client, org, plan, manager_member, deals, stages):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.TIME_IN_STAGE)

    response = client.post(
        plan_url("plan_goal_edit", org, goal_id=goal.pk),
        {
            "goal-indicator": Indicator.TIME_IN_STAGE,
            "goal-stage": stages["Qualified"].pk,
            "goal-baseline_period_label": "2017-Q2",
            "goal-period_label": "2017-Q3",
            "goal-target_value": "30",
        },
    )

    assert response.status_code == 400
    assert response.context["goal_form"].errors["target_value"] == [
        "The target 30.0\xa0days is not below the baseline 22.5\xa0days, but this indicator should fall. "
        "Enter a target below the baseline of 2017-Q2."
    ]
    with scope(organization=org):
        goal.refresh_from_db()
    assert goal.target_value == Decimal("10")


def test_goal_add_service_rejects_target_below_baseline(org, member, manager_member, deals):
    from django.core.exceptions import ValidationError

    with scope(organization=org):
        plan = plan_create(organization=org, creator=manager_member, member=member, title="Win more")
        with pytest.raises(ValidationError) as raised:
            plan_goal_add(
                plan=plan,
                editor=manager_member,
                indicator=Indicator.WIN_RATE,
                stage=None,
                baseline_period_label="2017-Q3",
                period_label="2017-Q4",
                target_value=Decimal("0.5"),
            )
        assert DevelopmentGoal.objects.count() == 0

    assert raised.value.messages == [
        "The target 50.0% is not above the baseline 50.0%, but this indicator should rise. "
        "Enter a target above the baseline of 2017-Q3."
    ]


def test_plan_page_explains_target_below_baseline(client, org, plan, deals, manager_member):
    client.force_login(manager_member.user)
    # Saved before the deals defined the baseline: win rate 2017-Q2 is 0, 2017-Q3 is 0.5.
    with scope(organization=org):
        DevelopmentGoal.objects.filter(plan=plan, indicator=Indicator.WIN_RATE).update(
            baseline_period_label="2017-Q3", period_label="2017-Q4", target_value=Decimal("0.4")
        )
        rows = goal_progress_list(organization=org, plan=plan)

    win_rate_row = next(row for row in rows if row.goal.indicator == Indicator.WIN_RATE)
    assert win_rate_row.progress.value is None
    assert win_rate_row.progress.reason == (
        "The target 40.0% is not above the baseline 50.0%, but this indicator should rise. Progress is not defined."
    )


def test_rep_cannot_create_plan(client, org, member):
    client.force_login(member.user)

    response = client.get(reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk}))

    assert response.status_code == 404


def test_rep_marks_training_item_done(client, org, plan, member):
    client.force_login(member.user)
    with scope(organization=org):
        item = TrainingItem.objects.get()

    response = client.post(
        reverse("plan_item_done", kwargs={"org_slug": org.slug, "item_id": item.pk}), {"done": "1"}
    )

    assert response.status_code == 302
    with scope(organization=org):
        item.refresh_from_db()
    assert item.done_at is not None
    assert item.done_by == member


def test_rep_cannot_add_goal_to_own_plan(client, org, plan, member):
    client.force_login(member.user)

    response = client.post(
        reverse("plan_goal_add", kwargs={"org_slug": org.slug, "plan_id": plan.pk}),
        {"goal-indicator": Indicator.WIN_RATE, "goal-baseline_period_label": "2017", "goal-period_label": "2017", "goal-target_value": "90"},
    )

    assert response.status_code == 404
    with scope(organization=org):
        assert plan.goals.count() == 5


def test_other_rep_cannot_see_plan(client, org, plan, other_rep):
    client.force_login(other_rep.user)

    response = client.get(reverse("plan_detail", kwargs={"org_slug": org.slug, "plan_id": plan.pk}))

    assert response.status_code == 404


def test_plan_list_counts_items(client, org, plan, member):
    client.force_login(member.user)

    response = client.get(reverse("plan_list", kwargs={"org_slug": org.slug}))

    assert response.status_code == 200
    assert "Move deals to proposal" in response.content.decode()
    assert "0 of 1" in response.content.decode()


def test_unchanged_value_shows_zero_progress():
    from django.utils import translation

    from coaching.skills.templatetags.skills_format import progress_value

    progress = goal_progress(
        indicator=Indicator.TIME_IN_STAGE, baseline=Decimal("1"), target=Decimal("0.7"), current=Decimal("1"), currency="EUR"
    )

    with translation.override("en"):
        assert progress_value(progress) == "0.0%"


def test_plan_list_takes_fixed_queries(org, plan, manager_member, django_assert_num_queries):
    from coaching.skills.selectors import plan_list_visible

    with scope(organization=org):
        # Visible members: teams and people (2 queries); plans with their counts: 1 query.
        with django_assert_num_queries(3):
            plans = list(plan_list_visible(viewer=manager_member))

    assert [(item.goal_count, item.item_count, item.done_count) for item in plans] == [(5, 1, 0)]


# --- editing and deleting plans, goals and training items ------------------------------------------


def plan_url(name, org, **kwargs):
    return reverse(name, kwargs={"org_slug": org.slug, **kwargs})


def goal_of(org, plan, indicator):
    with scope(organization=org):
        return plan.goals.get(indicator=indicator)


def item_of(org, plan):
    with scope(organization=org):
        return plan.training_items.get()


def edit_and_delete_urls(org, plan) -> list[tuple[str, str]]:
    """Return (method, path) of every edit and delete URL of `plan`, its first goal and its training item."""
    with scope(organization=org):
        goal = plan.goals.order_by("id").first()
        item = plan.training_items.get()
    return [
        ("get", plan_url("plan_edit", org, plan_id=plan.pk)),
        ("post", plan_url("plan_edit", org, plan_id=plan.pk)),
        ("post", plan_url("plan_delete", org, plan_id=plan.pk)),
        ("get", plan_url("plan_goal_edit", org, goal_id=goal.pk)),
        ("post", plan_url("plan_goal_edit", org, goal_id=goal.pk)),
        ("post", plan_url("plan_goal_delete", org, goal_id=goal.pk)),
        ("get", plan_url("plan_item_edit", org, item_id=item.pk)),
        ("post", plan_url("plan_item_edit", org, item_id=item.pk)),
        ("post", plan_url("plan_item_delete", org, item_id=item.pk)),
    ]


def assert_plan_unchanged(org, plan):
    with scope(organization=org):
        plan.refresh_from_db()
        assert plan.title == "Move deals to proposal"
        assert plan.goals.count() == 5
        assert plan.training_items.get().title == "Proposal workshop"


def test_plan_page_links_edit_pages_for_manager(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)
    item = item_of(org, plan)

    text = client.get(plan_url("plan_detail", org, plan_id=plan.pk)).content.decode()

    assert f'href="/o/acme/skills/plans/{plan.pk}/edit/"' in text
    assert f'href="/o/acme/skills/goals/{goal.pk}/edit/"' in text
    assert f'href="/o/acme/skills/items/{item.pk}/edit/"' in text


def test_plan_page_has_no_edit_links_for_member(client, org, plan, member):
    client.force_login(member.user)

    text = client.get(plan_url("plan_detail", org, plan_id=plan.pk)).content.decode()

    assert "/edit/" not in text


def test_manager_renames_plan(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    url = plan_url("plan_edit", org, plan_id=plan.pk)

    form_page = client.get(url)
    response = client.post(url, {"plan-title": "Win more proposals"}, follow=True)

    assert form_page.status_code == 200
    assert 'value="Move deals to proposal"' in form_page.content.decode()
    assert response.redirect_chain == [(f"/o/acme/skills/plans/{plan.pk}/", 302)]
    assert [str(message) for message in response.context["messages"]] == ["Development plan saved."]
    with scope(organization=org):
        plan.refresh_from_db()
    assert plan.title == "Win more proposals"


def test_plan_edit_rejects_blank_title(client, org, plan, manager_member):
    client.force_login(manager_member.user)

    response = client.post(plan_url("plan_edit", org, plan_id=plan.pk), {"plan-title": "  "})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert_plan_unchanged(org, plan)


def test_plan_delete_needs_ticked_box(client, org, plan, manager_member):
    client.force_login(manager_member.user)

    response = client.post(plan_url("plan_delete", org, plan_id=plan.pk), {})

    assert response.status_code == 400
    text = response.content.decode()
    assert "Tick the box to confirm the deletion." in text
    assert "I understand that the plan with its goals and training items is deleted for good." in text
    assert_plan_unchanged(org, plan)


def test_plan_delete_needs_ticked_box_in_german(client, org, plan, manager_member):
    with scopes_disabled():
        manager_member.user.language = "de"
        manager_member.user.save(update_fields=["language"])
    client.force_login(manager_member.user)

    response = client.post(plan_url("plan_delete", org, plan_id=plan.pk), {})

    text = response.content.decode()
    assert response.status_code == 400
    assert "Setzen Sie das Häkchen, um das Löschen zu bestätigen." in text
    assert "Mir ist bewusst, dass der Plan mit seinen Zielen und Trainingsmaßnahmen endgültig gelöscht wird." in text


def test_plan_delete_removes_goals_and_items(client, org, plan, manager_member):
    client.force_login(manager_member.user)

    response = client.post(plan_url("plan_delete", org, plan_id=plan.pk), {"confirm": "on"}, follow=True)

    assert response.redirect_chain == [("/o/acme/skills/plans/", 302)]
    assert [str(message) for message in response.context["messages"]] == [
        "Development plan Move deals to proposal deleted."
    ]
    with scopes_disabled():
        assert DevelopmentPlan.objects.count() == 0
        assert DevelopmentGoal.objects.count() == 0
        assert TrainingItem.objects.count() == 0


def test_admin_deletes_plan_in_german(client, org, plan, admin_member):
    with scopes_disabled():
        admin_member.user.language = "de"
        admin_member.user.save(update_fields=["language"])
    client.force_login(admin_member.user)

    response = client.post(plan_url("plan_delete", org, plan_id=plan.pk), {"confirm": "on"}, follow=True)

    assert [str(message) for message in response.context["messages"]] == [
        "Entwicklungsplan Move deals to proposal gelöscht."
    ]
    with scopes_disabled():
        assert DevelopmentPlan.objects.count() == 0


def test_goal_edit_shows_ratio_target_in_percent(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    conversion = goal_of(org, plan, Indicator.STAGE_CONVERSION)
    deal_size = goal_of(org, plan, Indicator.AVERAGE_DEAL_SIZE)

    conversion_page = client.get(plan_url("plan_goal_edit", org, goal_id=conversion.pk)).content.decode()
    deal_size_page = client.get(plan_url("plan_goal_edit", org, goal_id=deal_size.pk)).content.decode()

    assert 'name="goal-target_value" value="75"' in conversion_page
    assert 'name="goal-baseline_period_label" value="2017-Q2"' in conversion_page
    assert f'<option value="{conversion.stage_id}" selected>' in conversion_page
    assert 'name="goal-target_value" value="4000"' in deal_size_page


def test_goal_edit_saves_every_field(client, org, plan, manager_member, stages):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.STAGE_CONVERSION)

    response = client.post(
        plan_url("plan_goal_edit", org, goal_id=goal.pk),
        {
            "goal-indicator": Indicator.WIN_RATE,
            "goal-stage": stages["Qualified"].pk,
            "goal-baseline_period_label": "2017-Q1",
            "goal-period_label": " 2017-Q4 ",
            "goal-target_value": "60",
        },
        follow=True,
    )

    assert response.redirect_chain == [(f"/o/acme/skills/plans/{plan.pk}/", 302)]
    assert [str(message) for message in response.context["messages"]] == ["Goal saved."]
    with scope(organization=org):
        goal.refresh_from_db()
    assert goal.indicator == Indicator.WIN_RATE
    # A win-rate goal has no stage, whatever the form sent.
    assert goal.stage is None
    assert goal.baseline_period_label == "2017-Q1"
    assert goal.period_label == "2017-Q4"
    assert goal.target_value == Decimal("0.6")


def test_goal_edit_rejects_invalid_values(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)

    response = client.post(
        plan_url("plan_goal_edit", org, goal_id=goal.pk),
        {
            "goal-indicator": Indicator.TIME_IN_STAGE,
            "goal-baseline_period_label": "2017-Q3",
            "goal-period_label": "2017-Q2",
            "goal-target_value": "12",
        },
    )

    text = response.content.decode()
    assert response.status_code == 400
    assert "This indicator needs a stage; choose one." in text
    assert "The target period 2017-Q2 starts on" in text
    with scope(organization=org):
        goal.refresh_from_db()
    assert goal.indicator == Indicator.WIN_RATE
    assert goal.period_label == "2017-Q3"
    assert goal.target_value == Decimal("1")


def test_goal_edit_rejects_percentage_above_100(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)

    response = client.post(
        plan_url("plan_goal_edit", org, goal_id=goal.pk),
        {
            "goal-indicator": Indicator.WIN_RATE,
            "goal-baseline_period_label": "2017-Q2",
            "goal-period_label": "2017-Q3",
            "goal-target_value": "140",
        },
    )

    assert response.status_code == 400
    assert "140 is not a percentage; enter 0 to 100." in response.content.decode()
    with scope(organization=org):
        goal.refresh_from_db()
    assert goal.target_value == Decimal("1")


def test_goal_delete_needs_ticked_box(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)

    response = client.post(plan_url("plan_goal_delete", org, goal_id=goal.pk), {})

    assert response.status_code == 400
    assert "Tick the box to confirm the deletion." in response.content.decode()
    assert_plan_unchanged(org, plan)


def test_goal_delete_keeps_other_goals(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)

    response = client.post(plan_url("plan_goal_delete", org, goal_id=goal.pk), {"confirm": "on"}, follow=True)

    assert response.redirect_chain == [(f"/o/acme/skills/plans/{plan.pk}/", 302)]
    assert [str(message) for message in response.context["messages"]] == ["Goal deleted."]
    with scope(organization=org):
        assert sorted(plan.goals.values_list("indicator", flat=True)) == sorted(
            [Indicator.STAGE_CONVERSION, Indicator.TIME_IN_STAGE, Indicator.ACTIVITY_COUNT, Indicator.AVERAGE_DEAL_SIZE]
        )


def test_item_edit_keeps_done_state(client, org, plan, manager_member, member):
    item = item_of(org, plan)
    client.force_login(member.user)
    client.post(plan_url("plan_item_done", org, item_id=item.pk), {"done": "1"})
    with scope(organization=org):
        item.refresh_from_db()
    done_at = item.done_at
    client.force_login(manager_member.user)
    url = plan_url("plan_item_edit", org, item_id=item.pk)

    form_page = client.get(url).content.decode()
    response = client.post(url, {"item-title": "Negotiation workshop", "item-due_on": "2017-10-20"}, follow=True)

    assert 'value="Proposal workshop"' in form_page
    assert 'value="2017-09-15"' in form_page
    assert [str(message) for message in response.context["messages"]] == ["Training item saved."]
    with scope(organization=org):
        item.refresh_from_db()
    assert item.title == "Negotiation workshop"
    assert item.due_on.isoformat() == "2017-10-20"
    assert item.done_at == done_at
    assert item.done_by == member


def test_item_edit_rejects_missing_values(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    item = item_of(org, plan)

    response = client.post(plan_url("plan_item_edit", org, item_id=item.pk), {"item-title": "", "item-due_on": "2017-13-01"})

    text = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in text
    assert "Enter a valid date." in text
    assert_plan_unchanged(org, plan)


def test_item_delete_needs_ticked_box(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    item = item_of(org, plan)

    response = client.post(plan_url("plan_item_delete", org, item_id=item.pk), {"confirm": ""})

    assert response.status_code == 400
    text = response.content.decode()
    assert "Tick the box to confirm the deletion." in text
    assert "I understand that the training item is deleted for good." in text
    assert_plan_unchanged(org, plan)


def test_item_delete_with_ticked_box(client, org, plan, manager_member):
    client.force_login(manager_member.user)
    item = item_of(org, plan)

    response = client.post(plan_url("plan_item_delete", org, item_id=item.pk), {"confirm": "on"}, follow=True)

    assert response.redirect_chain == [(f"/o/acme/skills/plans/{plan.pk}/", 302)]
    assert [str(message) for message in response.context["messages"]] == ["Training item deleted."]
    with scope(organization=org):
        assert plan.training_items.count() == 0
        assert plan.goals.count() == 5


def test_delete_urls_reject_get(client, org, plan, manager_member):
    client.force_login(manager_member.user)

    statuses = [client.get(path).status_code for method, path in edit_and_delete_urls(org, plan) if "delete" in path]

    assert statuses == [405, 405, 405]
    assert_plan_unchanged(org, plan)


@pytest.mark.parametrize("who", ["member", "other_rep", "other_org_admin"])
def test_edit_and_delete_hidden_from_others(client, org, plan, who, request):
    """The plan's own rep, another rep and a member of another organization get 404 on every URL."""
    client.force_login(request.getfixturevalue(who).user)

    statuses = [
        getattr(client, method)(path, {"confirm": "on", "plan-title": "Hijacked"}).status_code
        for method, path in edit_and_delete_urls(org, plan)
    ]

    assert statuses == [404] * 9
    assert_plan_unchanged(org, plan)


def test_manager_of_other_team_gets_404(client, org, plan, manager_member, admin_member, south_rep):
    with scope(organization=org):
        south_plan = plan_create(organization=org, creator=admin_member, member=south_rep, title="Move deals to proposal")
        plan_goal_add(
            plan=south_plan,
            editor=admin_member,
            indicator=Indicator.WIN_RATE,
            stage=None,
            baseline_period_label="2017-Q2",
            period_label="2017-Q3",
            target_value=Decimal("1"),
        )
        training_item_add(plan=south_plan, editor=admin_member, title="Proposal workshop", due_on=utc(9, 15).date())
    client.force_login(manager_member.user)

    statuses = [
        getattr(client, method)(path, {"confirm": "on"}).status_code for method, path in edit_and_delete_urls(org, south_plan)
    ]

    assert statuses == [404] * 9
    with scope(organization=org):
        assert DevelopmentPlan.objects.filter(pk=south_plan.pk).exists()


def test_manager_cannot_edit_own_plan(client, org, manager_member, admin_member):
    with scope(organization=org):
        own_plan = plan_create(organization=org, creator=admin_member, member=manager_member, title="Coach better")
        plan_goal_add(
            plan=own_plan,
            editor=admin_member,
            indicator=Indicator.ACTIVITY_COUNT,
            stage=None,
            baseline_period_label="2017-Q2",
            period_label="2017-Q3",
            target_value=Decimal("50"),
        )
        training_item_add(plan=own_plan, editor=admin_member, title="Coaching course", due_on=utc(9, 15).date())
    client.force_login(manager_member.user)

    statuses = [
        getattr(client, method)(path, {"confirm": "on"}).status_code for method, path in edit_and_delete_urls(org, own_plan)
    ]

    assert statuses == [404] * 9
    with scope(organization=org):
        assert DevelopmentPlan.objects.filter(pk=own_plan.pk).exists()


def test_services_reject_member_as_editor(org, plan, member):
    goal = goal_of(org, plan, Indicator.WIN_RATE)
    item = item_of(org, plan)

    with scope(organization=org):
        with pytest.raises(PermissionDenied):
            plan_update(plan=plan, editor=member, title="Mine now")
        with pytest.raises(PermissionDenied):
            plan_goal_delete(goal=goal, editor=member)
        with pytest.raises(PermissionDenied):
            training_item_update(item=item, editor=member, title="Skip it", due_on=utc(9, 30).date())
        with pytest.raises(PermissionDenied):
            plan_delete(plan=plan, editor=member)

    assert_plan_unchanged(org, plan)


# --- the baseline check of the service, which runs after the form's ------------------------------------
# Deals entered between the form's checks and the service's can move the baseline, so the service
# rejects a target the form let through. `baseline_moved` makes the service's check fail as it would then.

MOVED_BASELINE_ERROR = "The target 60.0% is not above the baseline 70.0%, but this indicator should rise."


@pytest.fixture
def baseline_moved(monkeypatch):
    monkeypatch.setattr("coaching.skills.services.target_direction_error", lambda **kwargs: MOVED_BASELINE_ERROR)


WIN_RATE_GOAL = {
    "goal-indicator": Indicator.WIN_RATE,
    "goal-baseline_period_label": "2017-Q2",
    "goal-period_label": "2017-Q3",
    "goal-target_value": "60",
}


def test_plan_new_service_rejection_is_400(client, org, member, manager_member, baseline_moved):
    client.force_login(manager_member.user)

    response = client.post(
        reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk}),
        {"plan-title": "Win more", **WIN_RATE_GOAL},
    )

    assert response.status_code == 400
    assert response.context["goal_form"].errors["target_value"] == [MOVED_BASELINE_ERROR]
    with scope(organization=org):
        assert DevelopmentPlan.objects.count() == 0
        assert DevelopmentGoal.objects.count() == 0


def test_goal_add_service_rejection_is_400(client, org, plan, manager_member, baseline_moved):
    client.force_login(manager_member.user)

    response = client.post(plan_url("plan_goal_add", org, plan_id=plan.pk), WIN_RATE_GOAL)

    assert response.status_code == 400
    assert response.context["goal_form"].errors["target_value"] == [MOVED_BASELINE_ERROR]
    assert_plan_unchanged(org, plan)


def test_goal_edit_service_rejection_is_400(client, org, plan, manager_member, baseline_moved):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)

    response = client.post(plan_url("plan_goal_edit", org, goal_id=goal.pk), WIN_RATE_GOAL)

    assert response.status_code == 400
    assert response.context["goal_form"].errors["target_value"] == [MOVED_BASELINE_ERROR]
    with scope(organization=org):
        goal.refresh_from_db()
    assert goal.target_value == Decimal("1")


def test_plan_create_with_goal_saves_nothing_on_error(org, member, manager_member, deals):
    from django.core.exceptions import ValidationError

    with scope(organization=org):
        with pytest.raises(ValidationError) as raised:
            plan_create_with_goal(
                organization=org,
                creator=manager_member,
                member=member,
                title="Win more",
                goal={
                    "indicator": Indicator.WIN_RATE,
                    "stage": None,
                    "baseline_period_label": "2017-Q3",
                    "period_label": "2017-Q4",
                    "target_value": Decimal("0.4"),
                },
            )
        assert DevelopmentPlan.objects.count() == 0

    assert raised.value.message_dict == {
        "target_value": [
            "The target 40.0% is not above the baseline 50.0%, but this indicator should rise. "
            "Enter a target above the baseline of 2017-Q3."
        ]
    }


@pytest.fixture
def measurements(monkeypatch):
    """Count the indicator measurements; each baseline check measures once."""
    from coaching.skills import indicators

    calls = []
    measure_indicator = indicators.indicator_value

    def counted(**kwargs):
        calls.append(kwargs["indicator"])
        return measure_indicator(**kwargs)

    monkeypatch.setattr(indicators, "indicator_value", counted)
    return calls


def test_plan_new_measures_baseline_once(client, org, member, manager_member, deals, measurements):
    client.force_login(manager_member.user)

    response = client.post(
        reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk}),
        {"plan-title": "Win more", **WIN_RATE_GOAL},
    )

    assert response.status_code == 302
    assert measurements == [Indicator.WIN_RATE]


def test_goal_add_measures_baseline_once(client, org, plan, manager_member, deals, measurements):
    client.force_login(manager_member.user)

    response = client.post(plan_url("plan_goal_add", org, plan_id=plan.pk), WIN_RATE_GOAL)

    assert response.status_code == 302
    assert measurements == [Indicator.WIN_RATE]


def test_goal_edit_measures_baseline_once(client, org, plan, manager_member, deals, measurements):
    client.force_login(manager_member.user)
    goal = goal_of(org, plan, Indicator.WIN_RATE)

    response = client.post(plan_url("plan_goal_edit", org, goal_id=goal.pk), WIN_RATE_GOAL)

    assert response.status_code == 302
    assert measurements == [Indicator.WIN_RATE]


def test_plan_new_shows_title_and_target_errors(client, org, member, manager_member, deals):
    client.force_login(manager_member.user)
    goal = {**WIN_RATE_GOAL, "goal-baseline_period_label": "2017-Q3", "goal-period_label": "2017-Q4", "goal-target_value": "40"}

    response = client.post(
        reverse("plan_new", kwargs={"org_slug": org.slug, "member_id": member.pk}), {"plan-title": "", **goal}
    )

    assert response.status_code == 400
    assert response.context["plan_form"].errors["title"] == ["This field is required."]
    assert response.context["goal_form"].errors["target_value"] == [
        "The target 40.0% is not above the baseline 50.0%, but this indicator should rise. "
        "Enter a target above the baseline of 2017-Q3."
    ]
