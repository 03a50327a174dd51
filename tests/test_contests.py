"""Contests: creation rights, standings over any days, team mode, winners, badges, pages.

Scenario (Acme): the May 2017 contest "May sprint" on won revenue. Team North
(the fixture team, led by manager_member) has Anna and Bert, team South has
Cora and Dirk. Monthly quotas for May: Anna 1,000, Bert 4,000, Cora 2,000.
Won in May: Anna 800, Bert 1,000, Cora 1,600, Dirk 300; Bert also won 5,000
on 2017-04-30 (before the contest).

Individual standings by % of quota: Anna 80 %, Cora 80 %, Bert 25 %: 1, 1, 3.
Team mode by absolute value: North 1,800, South 1,900: South 1, North 2.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_scopes import scope, scopes_disabled

from goals.contests import contest_badges, contest_create, contest_quota_targets, contest_standings
from goals.models import Contest, ContestNormalization, QuotaLevel, QuotaMetric
from goals.privacy import contest_period_key, name_policy_for
from pipelines.models import DealStatus
from spm.fiscal import calendar_month, fiscal_quarter
from spm.models import AuditLog, LeaderboardPrivacy
from spm.tenancy import membership_ids_visible
from tests.attainment_data import deal_create, north_and_south_reps_create, quota_create, stages_create, utc

MAY = calendar_month(2017, 5)
WON = DealStatus.WON
AFTER_MAY = dt.date(2017, 6, 5)
IN_MAY = dt.date(2017, 5, 20)


@pytest.fixture
def people(org, team, manager_member):
    with scopes_disabled():
        stages = stages_create(org)
        people = north_and_south_reps_create(org, team, manager_member)
        anna, bert, cora, dirk = people["anna"], people["bert"], people["cora"], people["dirk"]
        quota_create(anna, "1000.00", period=MAY)
        quota_create(bert, "4000.00", period=MAY)
        quota_create(cora, "2000.00", period=MAY)
        deal_create(anna, stages, WON, "800.00", closed_at=utc(5, 3))
        deal_create(bert, stages, WON, "1000.00", closed_at=utc(5, 31))
        deal_create(bert, stages, WON, "5000.00", closed_at=utc(4, 30))
        deal_create(cora, stages, WON, "1600.00", closed_at=utc(5, 1))
        deal_create(dirk, stages, WON, "300.00", closed_at=utc(5, 15))
    return {**people, "north": team, "manager": manager_member}


def create(org, creator, people, **overrides):
    values = {
        "organization": org,
        "created_by": creator,
        "name": "May sprint",
        "metric": QuotaMetric.WON_REVENUE,
        "starts_on": dt.date(2017, 5, 1),
        "ends_on": dt.date(2017, 5, 31),
        "normalization": ContestNormalization.PERCENT_OF_QUOTA,
        "is_team_mode": False,
        "participants": [people["anna"], people["bert"], people["cora"], people["dirk"]],
        "teams": [],
    }
    values.update(overrides)
    with scope(organization=org):
        return contest_create(**values)


def standings_for(org, contest, viewer, today=AFTER_MAY):
    with scope(organization=org):
        policy = name_policy_for(
            organization=org,
            viewer=viewer,
            visible_ids=membership_ids_visible(viewer),
            period_key=contest_period_key(contest),
        )
        return contest_standings(organization=org, contest=contest, policy=policy, today=today)


def test_admin_creates_contest_with_participants(org, people, admin_member):
    contest = create(org, admin_member, people)

    with scope(organization=org):
        assert set(contest.participants.values_list("pk", flat=True)) == {
            people[name].pk for name in ("anna", "bert", "cora", "dirk")
        }
        assert contest.created_by == admin_member


def test_manager_cannot_pick_members_outside_team(org, people, manager_member):
    with pytest.raises(PermissionDenied):
        create(org, manager_member, people)

    with scope(organization=org):
        assert Contest.objects.count() == 0


def test_manager_picks_own_reps(org, people, manager_member):
    contest = create(org, manager_member, people, participants=[people["anna"], people["bert"]])

    with scope(organization=org):
        assert set(contest.participants.values_list("pk", flat=True)) == {people["anna"].pk, people["bert"].pk}
        assert contest.created_by == manager_member


def test_rep_cannot_create_contest(org, people):
    with pytest.raises(PermissionDenied):
        create(org, people["anna"], people, participants=[people["anna"]])


def test_contest_needs_ordered_days_and_competitors(org, people, admin_member):
    with pytest.raises(ValidationError):
        create(org, admin_member, people, starts_on=dt.date(2017, 6, 1))
    with pytest.raises(ValidationError):
        create(org, admin_member, people, participants=[])
    with pytest.raises(ValidationError):
        create(org, admin_member, people, is_team_mode=True, teams=[])


def test_percent_standings_share_rank(org, people, admin_member):
    contest = create(org, admin_member, people)

    standings = standings_for(org, contest, admin_member)

    assert [(entry.name, entry.rank, entry.value) for entry in standings.ranked] == [
        ("Anna", 1, Decimal("0.8")),
        ("Cora", 1, Decimal("0.8")),
        ("Bert", 3, Decimal("0.25")),
    ]
    assert [entry.name for entry in standings.unranked] == ["Dirk"]


def test_winners_only_after_last_day(org, people, admin_member):
    contest = create(org, admin_member, people)

    running = standings_for(org, contest, admin_member, today=IN_MAY)
    finished = standings_for(org, contest, admin_member, today=AFTER_MAY)

    assert running.winners == []
    assert [entry.name for entry in finished.winners] == ["Anna", "Cora"]


def test_running_standings_count_closes_up_to_today(org, people, admin_member):
    contest = create(org, admin_member, people, normalization=ContestNormalization.ABSOLUTE)

    running = standings_for(org, contest, admin_member, today=IN_MAY)

    # Bert's 1,000 closes on 05-31, after 05-20.
    assert [(entry.name, entry.value) for entry in running.ranked] == [
        ("Cora", Decimal("1600.00")),
        ("Anna", Decimal("800.00")),
        ("Dirk", Decimal("300.00")),
        ("Bert", Decimal("0")),
    ]


def test_team_mode_ranks_teams(org, people, admin_member):
    contest = create(
        org,
        admin_member,
        people,
        is_team_mode=True,
        participants=[],
        teams=[people["north"], people["south"]],
        normalization=ContestNormalization.ABSOLUTE,
    )

    standings = standings_for(org, contest, admin_member)

    assert [(entry.name, entry.rank, entry.value) for entry in standings.ranked] == [
        ("South", 1, Decimal("1900.00")),
        ("North", 2, Decimal("1800.00")),
    ]


def test_improvement_compares_same_days_before(org, people, admin_member):
    # May has 31 days, so the days before are 2017-03-31 … 2017-04-30, which hold Bert's 5,000.
    contest = create(org, admin_member, people, normalization=ContestNormalization.IMPROVEMENT)

    standings = standings_for(org, contest, admin_member)

    values = {entry.name: entry.value for entry in standings.ranked}
    assert values["Bert"] == Decimal("-4000.00")
    assert values["Cora"] == Decimal("1600.00")


def test_contest_quota_prorates_by_days(org, people):
    with scopes_disabled():
        quota_create(people["dirk"], "9100.00", period=fiscal_quarter(2017, 2, 1))
    # Days 2017-05-10 … 2017-05-19: Anna's May quota 1,000 × 10/31; Dirk only has a quarter: 9,100 × 10/91.
    days = calendar_month(2017, 5)
    days = type(days)(start=dt.date(2017, 5, 10), end=dt.date(2017, 5, 20), kind="custom", label="ten days")

    with scope(organization=org):
        targets = contest_quota_targets(
            organization=org, period=days, metric=QuotaMetric.WON_REVENUE, level=QuotaLevel.REP
        )

    assert targets[people["anna"].pk] == Decimal("1000.00") * 10 / 31
    assert targets[people["dirk"].pk] == Decimal("1000.00")


def test_badges_go_to_winners(org, people, admin_member):
    contest = create(org, admin_member, people)

    with scope(organization=org):
        policy = name_policy_for(organization=org, viewer=admin_member, visible_ids=None, period_key="2017-Q2")
        badges = contest_badges(organization=org, policy=policy, period=fiscal_quarter(2017, 2, 1), today=AFTER_MAY)

    assert badges == {(QuotaLevel.REP, people["anna"].pk): [contest], (QuotaLevel.REP, people["cora"].pk): [contest]}


def test_leaderboard_page_shows_badge(client, org, people, admin_member):
    create(org, admin_member, people, ends_on=dt.date(2017, 5, 31))
    client.force_login(admin_member.user)

    body = client.get("/o/acme/leaderboard/", {"period": "2017-Q2"}).content.decode()

    assert "Won: May sprint" in body


# --- pages ----------------------------------------------------------------------------------------


def contest_post(people, **overrides):
    """Return the new-contest form data for Anna and Bert in May 2017, with `overrides` applied."""
    values = {
        "name": "Sprint",
        "metric": "won_revenue",
        "starts_on": "2017-05-01",
        "ends_on": "2017-05-31",
        "normalization": "absolute",
        "participants": [people["anna"].pk, people["bert"].pk],
    }
    values.update(overrides)
    return values


def test_new_contest_page_lists_only_visible_members(client, org, people, manager_member):
    client.force_login(manager_member.user)

    body = client.get("/o/acme/contests/new/").content.decode()

    assert "Anna" in body
    assert "Bert" in body
    assert "Cora" not in body


def test_manager_posts_contest(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.post("/o/acme/contests/new/", contest_post(people))

    with scopes_disabled():
        contest = Contest.objects.get(name="Sprint")
    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/contests/{contest.pk}/"


def test_manager_cannot_post_other_team_member(client, org, people, manager_member):
    client.force_login(manager_member.user)

    response = client.post("/o/acme/contests/new/", contest_post(people, participants=[people["cora"].pk]))

    assert response.status_code == 400
    with scopes_disabled():
        assert Contest.objects.count() == 0


def test_rep_gets_404_on_new_contest(client, org, people):
    client.force_login(people["anna"].user)

    assert client.get("/o/acme/contests/new/").status_code == 404


def test_contest_page_full_and_fragment(client, org, people, admin_member):
    contest = create(org, admin_member, people)
    client.force_login(people["anna"].user)

    full = client.get(f"/o/acme/contests/{contest.pk}/")
    fragment = client.get(f"/o/acme/contests/{contest.pk}/", HTTP_HX_REQUEST="true")

    assert full.status_code == 200
    assert "<html" in full.content.decode()
    assert "May sprint" in full.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert 'data-standings' in fragment.content.decode()


def test_contest_of_other_org_is_404(client, org, people, admin_member, other_org_admin):
    contest = create(org, admin_member, people)
    client.force_login(other_org_admin.user)

    assert client.get(f"/o/globex/contests/{contest.pk}/").status_code == 404


# --- entered and stored days ----------------------------------------------------------------------

# 10:00 in Berlin; the planning range of the contest form then ends on 2031-12-05.
NOW_2026 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def now_2026(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW_2026)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starts_on", "0001-01-01", "01/01/0001 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."),
        ("starts_on", "1999-12-31", "12/31/1999 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."),
        ("ends_on", "9999-12-31", "12/31/9999 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."),
        ("ends_on", "2031-12-06", "12/06/2031 is outside the allowed range; enter a date from 01/01/2000 to 12/05/2031."),
    ],
)
def test_contest_form_rejects_days_out_of_range(client, org, people, manager_member, now_2026, field, value, message):
    client.force_login(manager_member.user)

    response = client.post("/o/acme/contests/new/", contest_post(people, **{field: value}))

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    with scopes_disabled():
        assert Contest.objects.count() == 0


def test_contest_form_accepts_range_limits(client, org, people, manager_member, now_2026):
    client.force_login(manager_member.user)

    early = client.post("/o/acme/contests/new/", contest_post(people, starts_on="2000-01-01", ends_on="2000-01-31"))
    late = client.post("/o/acme/contests/new/", contest_post(people, starts_on="2031-12-01", ends_on="2031-12-05"))

    assert early.status_code == 302
    assert late.status_code == 302
    with scopes_disabled():
        assert sorted(Contest.objects.values_list("starts_on", "ends_on")) == [
            (dt.date(2000, 1, 1), dt.date(2000, 1, 31)),
            (dt.date(2031, 12, 1), dt.date(2031, 12, 5)),
        ]


def test_contest_form_rejects_last_day_before_first(client, org, people, manager_member, now_2026):
    client.force_login(manager_member.user)

    response = client.post("/o/acme/contests/new/", contest_post(people, starts_on="2017-05-31", ends_on="2017-05-01"))

    assert response.status_code == 400
    assert response.context["form"].errors["ends_on"] == [
        "The last day 05/01/2017 is before the first day 05/31/2017; swap them."
    ]


def test_contest_form_limits_length_to_366_days(client, org, people, manager_member, now_2026):
    client.force_login(manager_member.user)

    leap_year = client.post("/o/acme/contests/new/", contest_post(people, starts_on="2016-01-01", ends_on="2016-12-31"))
    too_long = client.post("/o/acme/contests/new/", contest_post(people, starts_on="2017-01-01", ends_on="2018-01-02"))

    assert leap_year.status_code == 302
    assert too_long.status_code == 400
    assert too_long.context["form"].errors["ends_on"] == [
        "The contest from 01/01/2017 to 01/02/2018 lasts 367 days; a contest can last at most 366 days."
    ]
    with scopes_disabled():
        assert list(Contest.objects.values_list("ends_on", flat=True)) == [dt.date(2016, 12, 31)]


def stored_contest(org, creator, people, starts_on, ends_on, name="Typo contest"):
    """Store a contest directly, as the form accepted any days before it checked them."""
    with scopes_disabled():
        contest = Contest.objects.create(
            organization=org,
            name=name,
            metric=QuotaMetric.WON_REVENUE,
            starts_on=starts_on,
            ends_on=ends_on,
            normalization=ContestNormalization.IMPROVEMENT,
            created_by=creator,
        )
        contest.participants.set([people["anna"], people["cora"]])
    return contest


@pytest.mark.parametrize(
    ("starts_on", "ends_on"),
    [
        (dt.date(1, 1, 1), dt.date(2017, 5, 31)),
        (dt.date(2017, 5, 1), dt.date(9999, 12, 31)),
        # In range, but 5,996 days long.
        (dt.date(2001, 1, 1), dt.date(2017, 5, 31)),
    ],
)
def test_stored_contest_with_bad_days_shows_notice(client, org, people, admin_member, caplog, starts_on, ends_on):
    contest = stored_contest(org, admin_member, people, starts_on, ends_on)
    client.force_login(people["anna"].user)

    with caplog.at_level("WARNING", logger="goals.contests"):
        response = client.get(f"/o/acme/contests/{contest.pk}/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "data-days-out-of-range" in body
    assert "from 01/01/2000 on and at most 366 days long" in body
    assert response.context["standings"].ranked == []
    assert [record.getMessage() for record in caplog.records if record.name == "goals.contests"] == [
        (
            "Contest standings skipped, days out of range: "
            f"organization_id={org.pk} contest_id={contest.pk} starts_on={starts_on.isoformat()} ends_on={ends_on.isoformat()}"
        )
    ]


def test_leaderboard_skips_stored_contest_with_bad_days(client, org, people, admin_member):
    create(org, admin_member, people, ends_on=dt.date(2017, 5, 31))
    stored_contest(org, admin_member, people, dt.date(1, 1, 1), dt.date(2017, 5, 20))
    client.force_login(admin_member.user)

    response = client.get("/o/acme/leaderboard/", {"period": "2017-Q2"})

    assert response.status_code == 200
    body = response.content.decode()
    assert "Won: May sprint" in body
    assert "Typo contest" not in body


def test_badges_skip_stored_contest_with_bad_days(org, people, admin_member):
    contest = create(org, admin_member, people)
    stored_contest(org, admin_member, people, dt.date(1, 1, 1), dt.date(2017, 5, 20))

    with scope(organization=org):
        policy = name_policy_for(organization=org, viewer=admin_member, visible_ids=None, period_key="2017-Q2")
        badges = contest_badges(organization=org, policy=policy, period=fiscal_quarter(2017, 2, 1), today=AFTER_MAY)

    assert badges == {(QuotaLevel.REP, people["anna"].pk): [contest], (QuotaLevel.REP, people["cora"].pk): [contest]}


def test_contest_list_shows_stored_contest_with_bad_days(client, org, people, admin_member):
    stored_contest(org, admin_member, people, dt.date(1, 1, 1), dt.date(9999, 12, 31))
    client.force_login(admin_member.user)

    response = client.get("/o/acme/contests/")

    assert response.status_code == 200
    assert "01/01/0001" in response.content.decode()


# --- deleting ---------------------------------------------------------------------------------------


def test_admin_deletes_contest_with_audit_entry(client, org, people, admin_member, manager_member):
    contest = create(org, manager_member, people, participants=[people["anna"], people["bert"]])
    contest_id = contest.pk
    client.force_login(admin_member.user)

    response = client.post(f"/o/acme/contests/{contest_id}/delete/", {"confirm": "on"})

    assert response.status_code == 302
    assert response["Location"] == "/o/acme/contests/"
    with scopes_disabled():
        assert Contest.objects.count() == 0
        audit = AuditLog.objects.get(action="contest.deleted")
    assert audit.actor == admin_member.user
    assert audit.object_type == "contest"
    assert audit.object_id == str(contest_id)
    assert audit.before == {
        "name": "May sprint",
        "metric": "won_revenue",
        "starts_on": "2017-05-01",
        "ends_on": "2017-05-31",
        "normalization": "percent_of_quota",
        "is_team_mode": False,
        "created_by_id": manager_member.pk,
    }


def test_manager_deletes_own_contest(client, org, people, manager_member):
    contest = create(org, manager_member, people, participants=[people["anna"]])
    client.force_login(manager_member.user)

    response = client.post(f"/o/acme/contests/{contest.pk}/delete/", {"confirm": "on"})

    assert response.status_code == 302
    with scopes_disabled():
        assert Contest.objects.count() == 0


# A manager who did not create the contest, and a rep.
@pytest.mark.parametrize("viewer", ["manager", "anna"])
def test_non_creator_cannot_delete_contest(client, org, people, admin_member, viewer):
    contest = create(org, admin_member, people)
    client.force_login(people[viewer].user)

    page = client.get(f"/o/acme/contests/{contest.pk}/").content.decode()
    response = client.post(f"/o/acme/contests/{contest.pk}/delete/", {"confirm": "on"})

    assert "data-contest-delete" not in page
    assert response.status_code == 404
    with scopes_disabled():
        assert Contest.objects.count() == 1


def test_contest_delete_needs_confirmation(client, org, people, admin_member):
    contest = create(org, admin_member, people)
    client.force_login(admin_member.user)

    page = client.get(f"/o/acme/contests/{contest.pk}/").content.decode()
    response = client.post(f"/o/acme/contests/{contest.pk}/delete/", {})

    assert "data-contest-delete" in page
    assert response.status_code == 400
    assert response.context["delete_form"].errors["confirm"] == ["This field is required."]
    with scopes_disabled():
        assert Contest.objects.count() == 1
        assert AuditLog.objects.filter(action="contest.deleted").count() == 0


def test_stored_contest_with_bad_days_can_be_deleted(client, org, people, admin_member):
    contest = stored_contest(org, admin_member, people, dt.date(1, 1, 1), dt.date(2017, 5, 31))
    client.force_login(admin_member.user)

    page = client.get(f"/o/acme/contests/{contest.pk}/").content.decode()
    response = client.post(f"/o/acme/contests/{contest.pk}/delete/", {"confirm": "on"})

    assert "data-contest-delete" in page
    assert response.status_code == 302
    with scopes_disabled():
        assert Contest.objects.count() == 0


@pytest.fixture
def own_rank(org):
    with scopes_disabled():
        org.leaderboard_privacy = LeaderboardPrivacy.OWN_RANK
        org.save(update_fields=["leaderboard_privacy"])
    return org


def test_own_rank_standings_count_hidden_winners(own_rank, people, admin_member):
    contest = create(own_rank, admin_member, people)

    for_bert = standings_for(own_rank, contest, people["bert"])
    for_anna = standings_for(own_rank, contest, people["anna"])

    assert for_bert.winners == []
    assert for_bert.hidden_winner_count == 2
    assert for_bert.is_own_win is False
    assert [entry.name for entry in for_anna.winners] == ["Anna"]
    assert for_anna.hidden_winner_count == 1
    assert for_anna.is_own_win is True


def test_own_rank_running_contest_has_no_winner(own_rank, people, admin_member):
    contest = create(own_rank, admin_member, people)

    standings = standings_for(own_rank, contest, people["bert"], today=IN_MAY)

    assert standings.hidden_winner_count == 0
    assert standings.is_own_win is False


def test_own_rank_contest_page_reports_hidden_winner(client, own_rank, people, admin_member):
    contest = create(own_rank, admin_member, people, participants=[people["anna"], people["bert"], people["dirk"]])
    client.force_login(people["bert"].user)

    content = client.get(f"/o/acme/contests/{contest.pk}/").content.decode()

    assert "The contest has a winner whose name the leaderboard privacy settings hide." in content
    assert "without a ranked winner" not in content
    assert "Anna" not in content
    assert "You won this contest." not in content


def test_own_rank_contest_page_tells_winner(client, own_rank, people, admin_member):
    contest = create(own_rank, admin_member, people)
    client.force_login(people["anna"].user)

    content = client.get(f"/o/acme/contests/{contest.pk}/").content.decode()

    assert "You won this contest." in content
    assert "The contest has a winner whose name the leaderboard privacy settings hide." in content
    assert "Cora" not in content
