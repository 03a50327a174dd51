"""Attainment scorecard: gap to goal, indicators, the /me/ panel and /reps/<id>/ for managers.

Scenario (Acme, Q2 2017): team North (fixture team, led by manager_member) has
Anna and Bert; Cora is in team South. Anna's Q2 won-revenue quota is 10,100.
- Anna won 3,000 and 1,000 in Q2 (created 04-02) and 1,000 twice in Q1; she
  lost four deals in Q1; she has one open deal created 04-03.
  Over the trend window Q3 2016 … Q2 2017: won 4 for 6,000 (average 1,500),
  lost 4: win rate 0.5.
- Anna did 10 activities in the window, 6 of them in Q2 (one a meeting); Bert
  did 2 in Q2 and has one open deal created in Q2.

Remaining 10,100 − 4,000 = 6,100. Deals needed: ceil(6,100 ÷ (0.5 × 1,500)) =
ceil(8.13) = 9. Activities per won deal 10 ÷ 4 = 2.5, so activities needed:
ceil(6,100 ÷ 1,500 × 2.5) = ceil(10.17) = 11.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from goals.models import ScorecardView
from goals.scorecards import rep_scorecard_build
from pipelines.models import Activity, ActivityKind, DealStatus
from tests.attainment_data import (
    Q2,
    deal_create,
    quota_create,
    rep_create,
    stages_create,
    utc,
)

WON, LOST, OPEN = DealStatus.WON, DealStatus.LOST, DealStatus.OPEN
TODAY = dt.date(2017, 5, 15)


def activity_create(owner, number, occurred_at, kind=ActivityKind.CALL):
    return Activity.objects.create(
        organization=owner.organization,
        source="test",
        external_id=f"{owner.pk}-{number}",
        kind=kind,
        owner=owner,
        occurred_at=occurred_at,
    )


@pytest.fixture
def people(org, team, manager_member):
    with scopes_disabled():
        stages = stages_create(org)
        anna = rep_create(org, "Anna", team=team, manager=manager_member)
        bert = rep_create(org, "Bert", team=team, manager=manager_member)
        cora = rep_create(org, "Cora")
        quota_create(anna, "10100.00")
        deal_create(anna, stages, WON, "3000.00", closed_at=utc(5, 2), created_at=utc(4, 2))
        deal_create(anna, stages, WON, "1000.00", closed_at=utc(5, 3), created_at=utc(4, 2))
        deal_create(anna, stages, WON, "1000.00", closed_at=utc(2, 2))
        deal_create(anna, stages, WON, "1000.00", closed_at=utc(3, 2))
        for day in (3, 4, 5, 6):
            deal_create(anna, stages, LOST, "0.00", closed_at=utc(3, day))
        deal_create(anna, stages, OPEN, "500.00", created_at=utc(4, 3), expected_close_on=dt.date(2017, 6, 30))
        deal_create(bert, stages, OPEN, "800.00", created_at=utc(5, 3))
        for number in range(4):
            activity_create(anna, number, utc(2, 10 + number))
        for number in range(4, 10):
            kind = ActivityKind.MEETING if number == 4 else ActivityKind.CALL
            activity_create(anna, number, utc(4, 10 + number), kind=kind)
        activity_create(bert, 0, utc(4, 10))
        activity_create(bert, 1, utc(4, 11))
    kpi_snapshot_recompute(organization=org)
    return {"anna": anna, "bert": bert, "cora": cora, "stages": stages}


def build(org, subject, today=TODAY):
    with scope(organization=org):
        return rep_scorecard_build(organization=org, subject=subject, period=Q2, today=today)


def test_gap_to_goal_numbers(org, people):
    gap = build(org, people["anna"]).gap

    assert gap.remaining == Decimal("6100.00")
    assert gap.win_rate == Decimal("0.5")
    assert gap.average_deal_size == Decimal("1500.00")
    assert gap.activities_per_won_deal == Decimal("2.5")
    assert gap.deals_needed == 9
    assert gap.activities_needed == 11
    assert gap.reason == ""


def test_gap_to_goal_without_quota_says_why(org, people):
    gap = build(org, people["bert"]).gap

    assert gap.deals_needed is None
    assert gap.reason == "No won-revenue quota is set for this period."


def test_gap_to_goal_without_win_rate_says_why(org, people):
    with scopes_disabled():
        quota_create(people["bert"], "100.00")

    gap = build(org, people["bert"]).gap

    assert gap.remaining == Decimal("100.00")
    assert gap.deals_needed is None
    assert gap.reason == "No deals were closed in the last 4 periods, so there is no win rate."


def test_leading_indicators_against_team_median(org, people):
    leading = {indicator.label: indicator for indicator in build(org, people["anna"]).leading}

    assert leading["Activities done"].value == Decimal(6)
    assert leading["Activities done"].team_value == Decimal(4)
    assert leading["Meetings held"].value == Decimal(1)
    assert leading["Meetings held"].team_value == Decimal("0.5")
    assert leading["New pipeline created"].value == Decimal("4500.00")
    # Anna: 2 of her 3 Q2-created deals are won; the team pools Bert's open one: 2 of 4.
    assert leading["Deals created in the period and won"].value == Decimal(2) / Decimal(3)
    assert leading["Deals created in the period and won"].team_value == Decimal("0.5")


def test_lagging_from_snapshot_rows(org, people):
    lagging = build(org, people["anna"]).lagging

    assert lagging.won_amount == Decimal("4000.00")
    assert lagging.won_count == 2


def test_revenue_attainment_and_trend(org, people):
    scorecard = build(org, people["anna"])

    assert scorecard.revenue.credited == Decimal("4000.00")
    assert scorecard.revenue.attainment == Decimal("4000") / Decimal("10100")
    assert [bar for bar in scorecard.trend_chart["data"][0]["text"]][-1] == "39.6%"
    assert scorecard.trend_chart["data"][0]["text"][:3] == ["no quota", "no quota", "no quota"]


def test_warning_on_fixed_day(org, people):
    # On 2017-05-15 45 of 91 days have passed: 4,000 ÷ 45/91 = 8,088.89 projected, 80.1 % of 10,100.
    on_pace = build(org, people["anna"], today=TODAY).revenue
    # On 2017-06-29 (90 of 91 days) the projection is 4,044.44, 40.0 %: below 70 %.
    late = build(org, people["anna"], today=dt.date(2017, 6, 29)).revenue

    assert on_pace.projected_attainment.quantize(Decimal("0.001")) == Decimal("0.801")
    assert on_pace.is_warning is False
    assert late.projected_attainment.quantize(Decimal("0.001")) == Decimal("0.400")
    assert late.is_warning is True


# --- pages ----------------------------------------------------------------------------------------


def test_own_panel_full_page(client, org, people, monkeypatch):
    # The plan of deals and activities is shown only while the period runs.
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW_IN_Q2)
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/me/attainment/", {"period": "2017-Q2"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body
    assert "My attainment" in body
    assert 'data-plotly-figure="attainment-trend-chart"' in body
    assert "9 more qualified deals" in body
    assert "about 11 activities" in body
    assert "HX-Request" in response["Vary"]


def test_own_panel_fragment(client, org, people):
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/me/attainment/", {"period": "2017-Q2"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="attainment-panel"')
    assert 'data-metric="won_revenue"' in body


def test_me_page_loads_panel(client, org, people):
    client.force_login(people["anna"].user)

    body = client.get("/o/acme/me/", {"period": "2017-Q2"}).content.decode()

    assert 'hx-get="/o/acme/me/attainment/?period=2017-Q2"' in body


def test_manager_opens_rep_scorecard_and_is_logged(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{people['anna'].pk}/", {"period": "2017-Q2"})

    assert response.status_code == 200
    assert "Scorecard of Anna" in response.content.decode()
    with scopes_disabled():
        views = list(ScorecardView.objects.values_list("viewer_id", "subject_id"))
    assert views == [(manager_member.pk, people["anna"].pk)]


def test_period_switch_not_logged_again(client, org, people, manager_member):
    client.force_login(manager_member.user)
    url = f"/o/acme/reps/{people['anna'].pk}/"

    client.get(url, {"period": "2017-Q2"})
    for period in ("2017-Q1", "2017-Q3", "2017"):
        assert client.get(url, {"period": period}, HTTP_HX_REQUEST="true").status_code == 200

    with scopes_disabled():
        views = list(ScorecardView.objects.values_list("viewer_id", "subject_id"))
    assert views == [(manager_member.pk, people["anna"].pk)]


def test_fragment_without_recent_view_is_logged(client, org, people, manager_member):
    client.force_login(manager_member.user)
    url = f"/o/acme/reps/{people['anna'].pk}/"
    client.get(url, {"period": "2017-Q2"})
    with scopes_disabled():
        ScorecardView.objects.update(viewed_at=timezone.now() - dt.timedelta(minutes=31))

    client.get(url, {"period": "2017-Q1"}, HTTP_HX_REQUEST="true")
    client.get(f"/o/acme/reps/{people['bert'].pk}/", {"period": "2017-Q1"}, HTTP_HX_REQUEST="true")

    with scopes_disabled():
        views = list(ScorecardView.objects.order_by("pk").values_list("viewer_id", "subject_id"))
    assert views == [
        (manager_member.pk, people["anna"].pk),
        (manager_member.pk, people["anna"].pk),
        (manager_member.pk, people["bert"].pk),
    ]


def test_every_full_page_opening_is_logged(client, org, people, manager_member):
    client.force_login(manager_member.user)
    url = f"/o/acme/reps/{people['anna'].pk}/"

    client.get(url, {"period": "2017-Q2"})
    client.get(url, {"period": "2017-Q2"})

    with scopes_disabled():
        assert ScorecardView.objects.count() == 2


def test_rep_scorecard_fragment(client, org, people, admin_member):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/reps/{people['anna'].pk}/", {"period": "2017-Q2"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert "HX-Request" in response["Vary"]


def test_manager_cannot_open_other_team_rep(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{people['cora'].pk}/")

    assert response.status_code == 404
    with scopes_disabled():
        assert ScorecardView.objects.count() == 0


def test_rep_cannot_open_another_rep(client, org, people):
    client.force_login(people["anna"].user)

    assert client.get(f"/o/acme/reps/{people['bert'].pk}/").status_code == 404


def test_other_org_admin_gets_404(client, org, people, other_org_admin):
    client.force_login(other_org_admin.user)

    assert client.get(f"/o/acme/reps/{people['anna'].pk}/").status_code == 404
    assert client.get(f"/o/globex/reps/{people['anna'].pk}/").status_code == 404


def test_scorecard_on_a_past_day_credits_only_closes_up_to_it(org, people):
    revenue = build(org, people["anna"], today=dt.date(2017, 5, 2)).revenue

    # The 1,000 won on 05-03 comes after the day shown.
    assert revenue.credited == Decimal("3000.00")
    assert revenue.remaining == Decimal("7100.00")


# --- gap to goal once the period has ended ------------------------------------------------------

# Midday of TODAY in UTC, inside Q2 2017; pages compute their day from timezone.now().
NOW_IN_Q2 = dt.datetime(2017, 5, 15, 12, 0, tzinfo=dt.UTC)


def gap_text(response) -> str:
    """Return the text of the gap-to-goal paragraph with its whitespace collapsed."""
    body = response.content.decode()
    start = body.index("<p data-gap>") + len("<p data-gap>")
    return " ".join(body[start : body.index("</p>", start)].split())


@pytest.fixture
def dora(org, people):
    """A rep in Anna's team who won 800.00 in Q2 against a quota set by each test."""
    with scopes_disabled():
        dora = rep_create(org, "Dora", team=people["anna"].team, manager=people["anna"].manager)
        deal_create(dora, people["stages"], WON, "800.00", closed_at=utc(5, 4), created_at=utc(4, 5))
    kpi_snapshot_recompute(organization=org)
    return dora


def test_gap_to_goal_after_period_end_has_no_plan(org, people):
    gap = build(org, people["anna"], today=dt.date(2017, 7, 1)).gap

    assert gap.is_ended is True
    assert gap.remaining == Decimal("6100.00")
    assert gap.exceeded_by == Decimal("0")
    assert gap.deals_needed is None
    assert gap.activities_needed is None
    assert gap.reason == ""


def test_gap_to_goal_on_last_day_still_plans(org, people):
    gap = build(org, people["anna"], today=dt.date(2017, 6, 30)).gap

    assert gap.is_ended is False
    assert gap.deals_needed == 9
    assert gap.activities_needed == 11


def test_gap_to_goal_without_quota_after_period_end(org, people):
    gap = build(org, people["bert"], today=dt.date(2017, 7, 1)).gap

    assert gap.is_ended is True
    assert gap.exceeded_by is None
    assert gap.reason == "No won-revenue quota is set for this period."


def test_ended_period_states_missed_amount(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{people['anna'].pk}/", {"period": "2017-Q2"})

    assert response.status_code == 200
    assert gap_text(response) == "The period has ended. Anna missed the quota by €6,100.00."
    assert "Rates over" not in response.content.decode()


def test_ended_period_states_missed_amount_in_german(client, org, people, manager_member):
    manager_member.user.language = "de"
    manager_member.user.save(update_fields=["language"])
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{people['anna'].pk}/", {"period": "2017-Q2"})

    assert gap_text(response) == "Der Zeitraum ist abgelaufen. Anna hat die Quota um 6.100,00 € verfehlt."


def test_ended_period_own_panel_states_missed_amount(client, org, people):
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/me/attainment/", {"period": "2017-Q2"}, HTTP_HX_REQUEST="true")

    assert gap_text(response) == "The period has ended. You missed the quota by €6,100.00."


def test_ended_period_own_panel_in_german(client, org, people):
    people["anna"].user.language = "de"
    people["anna"].user.save(update_fields=["language"])
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/me/attainment/", {"period": "2017-Q2"}, HTTP_HX_REQUEST="true")

    assert gap_text(response) == "Der Zeitraum ist abgelaufen. Sie haben die Quota um 6.100,00 € verfehlt."


@pytest.mark.parametrize(
    ("target", "language", "expected"),
    [
        ("500.00", "en", "The period has ended. Dora exceeded the quota by €300.00."),
        ("500.00", "de", "Der Zeitraum ist abgelaufen. Dora hat die Quota um 300,00 € übertroffen."),
        ("800.00", "en", "The period has ended. Dora reached the quota exactly."),
        ("800.00", "de", "Der Zeitraum ist abgelaufen. Dora hat die Quota genau erreicht."),
    ],
)
def test_ended_period_states_exceeded_or_reached(client, org, dora, manager_member, target, language, expected):
    with scopes_disabled():
        quota_create(dora, target)
    manager_member.user.language = language
    manager_member.user.save(update_fields=["language"])
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{dora.pk}/", {"period": "2017-Q2"})

    assert gap_text(response) == expected


@pytest.mark.parametrize(
    ("target", "language", "expected"),
    [
        ("500.00", "en", "The period has ended. You exceeded the quota by €300.00."),
        ("500.00", "de", "Der Zeitraum ist abgelaufen. Sie haben die Quota um 300,00 € übertroffen."),
        ("800.00", "en", "The period has ended. You reached the quota exactly."),
        ("800.00", "de", "Der Zeitraum ist abgelaufen. Sie haben die Quota genau erreicht."),
    ],
)
def test_ended_period_own_panel_exceeded_or_reached(client, org, dora, target, language, expected):
    with scopes_disabled():
        quota_create(dora, target)
    dora.user.language = language
    dora.user.save(update_fields=["language"])
    client.force_login(dora.user)

    response = client.get("/o/acme/me/attainment/", {"period": "2017-Q2"}, HTTP_HX_REQUEST="true")

    assert gap_text(response) == expected


def test_running_period_still_states_what_is_needed(client, org, people, manager_member, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW_IN_Q2)
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{people['anna'].pk}/", {"period": "2017-Q2"})

    assert gap_text(response) == (
        "To reach the quota Anna needs €6,100.00 more. At their own win rate and deal size that is "
        "9 more qualified deals and about 11 activities by the period end."
    )
    assert "Rates over" in response.content.decode()


def test_running_period_still_states_what_is_needed_in_german(client, org, people, manager_member, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW_IN_Q2)
    manager_member.user.language = "de"
    manager_member.user.save(update_fields=["language"])
    client.force_login(manager_member.user)

    response = client.get(f"/o/acme/reps/{people['anna'].pk}/", {"period": "2017-Q2"})

    assert gap_text(response) == (
        "Um die Quota zu erreichen, benötigt Anna noch 6.100,00 €. Bei der eigenen Win Rate und Deal-Größe sind das "
        "9 weitere qualifizierte Deals und etwa 11 Aktivitäten bis zum Ende des Zeitraums."
    )
