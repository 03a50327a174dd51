"""Ranges of entered dates in the coaching and skills forms: 1:1s, action items, assessments, plans.

Every test runs at NOW, 2026-12-05 10:00 in Acme's zone Europe/Berlin. Dates of
things that happened (assessments, baseline periods) run from 01/01/2000 to
today, 12/05/2026. Planned dates (1:1s, due dates, target periods) run from
01/01/2000 to five years ahead, 12/05/2031.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django_scopes import scope, scopes_disabled

from coaching import services
from coaching.models import ActionItem, OneOnOne
from coaching.skills.models import (
    Assessment,
    Competency,
    DevelopmentGoal,
    DevelopmentPlan,
    Indicator,
    TrainingItem,
)
from coaching.skills.services import plan_create, rubric_load_default
from spm.date_limits import DateRange, past_range, planning_range, years_after
from spm.fiscal import parse_period

NOW = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 12, 5)


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


def _client(membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def _url(name, org, **kwargs):
    return reverse(name, kwargs={"org_slug": org.slug, **kwargs})


# --- the shared ranges --------------------------------------------------------------------------


def test_planning_range_ends_five_years_ahead():
    assert planning_range(TODAY) == DateRange(earliest=dt.date(2000, 1, 1), latest=dt.date(2031, 12, 5))


def test_years_after_moves_leap_day_to_28_february():
    assert years_after(dt.date(2028, 2, 29), 5) == dt.date(2033, 2, 28)
    assert years_after(dt.date(2028, 2, 29), 4) == dt.date(2032, 2, 29)


@pytest.mark.parametrize(
    ("day", "language", "message"),
    [
        (dt.date(1, 1, 1), "en", "01/01/0001 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2026."),
        (dt.date(2099, 1, 1), "en", "01/01/2099 is in the future; enter a date from 01/01/2000 to today, 12/05/2026."),
        (dt.date(2099, 1, 1), "de", "01.01.2099"),
    ],
)
def test_past_range_names_value_and_range(day, language, message):
    with translation.override(language), pytest.raises(ValidationError) as raised:
        past_range(TODAY).check(day)

    assert message in raised.value.messages[0]


def test_range_limits_are_accepted():
    allowed = past_range(TODAY)

    assert allowed.check(dt.date(2000, 1, 1)) == dt.date(2000, 1, 1)
    assert allowed.check(TODAY) == TODAY


# --- skill assessments --------------------------------------------------------------------------


@pytest.fixture
def closing(org, admin_member):
    with scope(organization=org):
        rubric_load_default(organization=org, actor=admin_member)
        return Competency.objects.get(name_en="Closing")


def _assess(org, assessor, member, closing, **fields):
    data = {"assessed_on": "2026-12-01", f"competency_{closing.pk}": "3", "note": ""}
    data.update(fields)
    return _client(assessor).post(_url("skills_assess", org, member_id=member.pk), data)


@pytest.mark.parametrize(
    ("assessed_on", "message"),
    [
        ("2099-01-01", "01/01/2099 is in the future; enter a date from 01/01/2000 to today, 12/05/2026."),
        ("2026-12-06", "12/06/2026 is in the future; enter a date from 01/01/2000 to today, 12/05/2026."),
        ("1999-12-31", "12/31/1999 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2026."),
    ],
)
def test_assessment_date_out_of_range_rejected(org, closing, member, manager_member, assessed_on, message):
    response = _assess(org, manager_member, member, closing, assessed_on=assessed_on)

    assert response.status_code == 400
    assert response.context["form"].errors["assessed_on"] == [message]
    with scopes_disabled():
        assert Assessment.objects.count() == 0


def test_assessment_today_accepted(org, closing, member, manager_member):
    response = _assess(org, manager_member, member, closing, assessed_on="2026-12-05")

    assert response.status_code == 302
    with scopes_disabled():
        assert list(Assessment.objects.values_list("assessed_on", flat=True)) == [TODAY]


def test_assessment_today_is_organization_local(org, closing, member, monkeypatch):
    # 23:30 UTC on 5 December is already 6 December in Berlin.
    monkeypatch.setattr("django.utils.timezone.now", lambda: dt.datetime(2026, 12, 5, 23, 30, tzinfo=dt.UTC))

    response = _assess(org, member, member, closing, assessed_on="2026-12-06")

    assert response.status_code == 302
    with scopes_disabled():
        assert list(Assessment.objects.values_list("assessed_on", flat=True)) == [dt.date(2026, 12, 6)]


def test_assessment_form_offers_only_past_dates(org, closing, member):
    body = _client(member).get(_url("skills_assess", org, member_id=member.pk)).content.decode()

    assert 'min="2000-01-01"' in body
    assert 'max="2026-12-05"' in body


def test_assessment_note_capped_at_10000_characters(org, closing, member, manager_member):
    too_long = _assess(org, manager_member, member, closing, note="x" * 10001)
    at_limit = _assess(org, manager_member, member, closing, note="x" * 10000)

    assert too_long.status_code == 400
    assert too_long.context["form"].errors["note"] == [
        "The note has 10,001 characters; shorten it to at most 10,000 characters."
    ]
    assert at_limit.status_code == 302
    with scopes_disabled():
        assert [len(note) for note in Assessment.objects.values_list("note", flat=True)] == [10000]


# --- development plans ----------------------------------------------------------------------------


def _goal_data(baseline, period):
    return {
        "goal-indicator": Indicator.WIN_RATE,
        "goal-baseline_period_label": baseline,
        "goal-period_label": period,
        "goal-target_value": "40",
    }


def _new_plan(org, manager, member, baseline, period):
    data = {"plan-title": "Win more", **_goal_data(baseline, period)}
    return _client(manager).post(_url("plan_new", org, member_id=member.pk), data)


@pytest.mark.parametrize(
    ("baseline", "period", "field", "message"),
    [
        (
            "2017-Q1",
            "2016-Q1",
            "period_label",
            ("The target period 2016-Q1 starts on 01/01/2016, before the baseline period 2017-Q1, "
             "which starts on 01/01/2017; choose a target period after the baseline."),
        ),
        (
            "2017-Q1",
            "2017-Q1",
            "period_label",
            ("The target period 2017-Q1 ends on 03/31/2017, not after the baseline period 2017-Q1, "
             "which ends on 03/31/2017; choose a target period that ends later."),
        ),
        (
            "2017",
            "2017-Q4",
            "period_label",
            ("The target period 2017-Q4 ends on 12/31/2017, not after the baseline period 2017, "
             "which ends on 12/31/2017; choose a target period that ends later."),
        ),
        (
            "0001",
            "2017-Q1",
            "baseline_period_label",
            ("The period 0001 starts on 01/01/0001, outside the allowed range; "
             "enter a period that starts from 01/01/2000 to 12/05/2026."),
        ),
        (
            "2027-Q1",
            "2027-Q2",
            "baseline_period_label",
            ("The period 2027-Q1 starts on 01/01/2027, outside the allowed range; "
             "enter a period that starts from 01/01/2000 to 12/05/2026."),
        ),
        (
            "2026-Q4",
            "2032",
            "period_label",
            ("The period 2032 starts on 01/01/2032, outside the allowed range; "
             "enter a period that starts from 01/01/2000 to 12/05/2031."),
        ),
    ],
)
def test_plan_goal_periods_checked(org, member, manager_member, baseline, period, field, message):
    response = _new_plan(org, manager_member, member, baseline, period)

    assert response.status_code == 400
    assert response.context["goal_form"].errors[field] == [message]
    with scopes_disabled():
        assert DevelopmentPlan.objects.count() == 0


def test_plan_goal_after_baseline_accepted(org, member, manager_member):
    response = _new_plan(org, manager_member, member, "2026-Q4", "2027-Q1")

    assert response.status_code == 302
    with scopes_disabled():
        assert list(DevelopmentGoal.objects.values_list("baseline_period_label", "period_label", "target_value")) == [
            ("2026-Q4", "2027-Q1", Decimal("0.4000"))
        ]


@pytest.fixture
def plan(org, member, manager_member):
    with scope(organization=org):
        return plan_create(organization=org, creator=manager_member, member=member, title="Win more")


def test_goal_added_to_plan_checks_order(org, plan, manager_member):
    response = _client(manager_member).post(_url("plan_goal_add", org, plan_id=plan.pk), _goal_data("2017-Q1", "2016-Q1"))

    assert response.status_code == 400
    assert response.context["goal_form"].errors["period_label"][0].startswith("The target period 2016-Q1 starts on")
    with scopes_disabled():
        assert DevelopmentGoal.objects.count() == 0


@pytest.mark.parametrize(
    ("due_on", "status", "errors"),
    [
        ("1900-01-01", 400, ["01/01/1900 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."]),
        ("2031-12-06", 400, ["12/06/2031 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."]),
        ("2031-12-05", 302, None),
    ],
)
def test_training_item_due_date_checked(org, plan, manager_member, due_on, status, errors):
    response = _client(manager_member).post(
        _url("plan_item_add", org, plan_id=plan.pk), {"item-title": "Negotiation course", "item-due_on": due_on}
    )

    assert response.status_code == status
    with scopes_disabled():
        saved = list(TrainingItem.objects.values_list("due_on", flat=True))
    if errors is None:
        assert saved == [dt.date(2031, 12, 5)]
    else:
        assert response.context["item_form"].errors["due_on"] == errors
        assert saved == []


# --- 1:1s and action items ------------------------------------------------------------------------


def _one_on_one_data(member, scheduled_on, **extra):
    return {"rep": member.pk, "scheduled_on": scheduled_on, "scheduled_time": "10:30", "period": "2026-Q4", **extra}


@pytest.mark.parametrize(
    ("scheduled_on", "message"),
    [
        ("9999-12-31", "12/31/9999 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."),
        ("1900-01-01", "01/01/1900 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."),
    ],
)
def test_one_on_one_date_out_of_range_rejected(org, member, manager_member, scheduled_on, message):
    response = _client(manager_member).post(_url("coaching_one_on_one_new", org), _one_on_one_data(member, scheduled_on))

    assert response.status_code == 400
    assert response.context["form"].errors["scheduled_on"] == [message]
    with scopes_disabled():
        assert OneOnOne.objects.count() == 0


def test_one_on_one_in_range_scheduled(org, member, manager_member):
    response = _client(manager_member).post(_url("coaching_one_on_one_new", org), _one_on_one_data(member, "2026-12-10"))

    assert response.status_code == 302
    with scopes_disabled():
        assert [value.isoformat() for value in OneOnOne.objects.values_list("scheduled_at", flat=True)] == [
            "2026-12-10T09:30:00+00:00"
        ]


@pytest.fixture
def one_on_one(org, member, manager_member):
    with scope(organization=org):
        return services.one_on_one_create(
            organization=org,
            manager=manager_member,
            rep=member,
            scheduled_at=dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC),
            period=parse_period("2026-Q4", 1),
        )


def test_one_on_one_edit_checks_date(org, one_on_one, member, manager_member):
    response = _client(manager_member).post(
        _url("coaching_one_on_one_edit", org, one_on_one_id=one_on_one.pk),
        _one_on_one_data(member, "9999-12-31", status="planned"),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["scheduled_on"] == [
        "12/31/9999 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."
    ]
    with scopes_disabled():
        assert OneOnOne.objects.get().scheduled_at == dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("due_on", "errors"),
    [
        ("1900-01-01", ["01/01/1900 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."]),
        ("9999-12-31", ["12/31/9999 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."]),
    ],
)
def test_action_item_due_date_out_of_range_rejected(org, one_on_one, member, manager_member, due_on, errors):
    response = _client(manager_member).post(
        _url("coaching_action_item_add", org, one_on_one_id=one_on_one.pk),
        {"title": "Call back", "owner": member.pk, "due_on": due_on},
    )

    assert response.status_code == 400
    assert response.context["action_item_form"].errors["due_on"] == errors
    with scopes_disabled():
        assert ActionItem.objects.count() == 0


@pytest.mark.parametrize(("due_on", "expected"), [("2026-11-30", dt.date(2026, 11, 30)), ("", None)])
def test_action_item_due_date_accepted(org, one_on_one, member, manager_member, due_on, expected):
    response = _client(manager_member).post(
        _url("coaching_action_item_add", org, one_on_one_id=one_on_one.pk),
        {"title": "Call back", "owner": member.pk, "due_on": due_on},
    )

    assert response.status_code == 302
    with scopes_disabled():
        assert list(ActionItem.objects.values_list("due_on", flat=True)) == [expected]


def test_stored_goal_with_bad_period_not_measured(client, org, plan, manager_member, caplog):
    # Saved before the form checked periods; measuring year 1 would overflow the UTC conversion.
    with scopes_disabled():
        goal = DevelopmentGoal.objects.create(
            organization=org,
            plan=plan,
            indicator=Indicator.WIN_RATE,
            baseline_period_label="0001",
            period_label="2017",
            target_value=Decimal("0.4"),
        )

    with caplog.at_level("WARNING", logger="coaching.skills.selectors"):
        response = _client(manager_member).get(_url("plan_detail", org, plan_id=plan.pk))

    assert response.status_code == 200
    assert "The period 0001 lies outside the supported range from 01/01/2000 to 12/31/2100." in response.content.decode()
    assert [record.getMessage() for record in caplog.records if record.name == "coaching.skills.selectors"] == [
        (
            "Development goal not measured, period out of range: "
            f"organization_id={org.pk} plan_id={plan.pk} goal_id={goal.pk} period=0001"
        )
    ]
