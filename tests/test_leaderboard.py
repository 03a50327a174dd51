"""Leaderboards: ranking modes, ties, reps without quota, team roll-up, small groups, the page.

Scenario (Acme, Q2 2017, won revenue): team North (the fixture team, led by
manager_member) has Anna (quota 1,000, won 500) and Bert (quota 2,000, won
1,000); team South has Cora (quota 1,000, won 400) and Dirk (no quota, won
9,999). Anna also won 100 in Q1.

By % of quota: Anna 50 %, Bert 50 %, Cora 40 %: ranks 1, 1, 3; Dirk unranked.
Absolute: Dirk 9,999, Bert 1,000, Anna 500, Cora 400: ranks 1, 2, 3, 4.
Improvement over Q1: Dirk 9,999, Bert 1,000, Anna 400, Cora 400: 1, 2, 3, 3.
Teams: North 1,500 / 3,000 = 50 %; South 10,399 / 1,000 = 1,039.9 %.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from goals.leaderboards import ABSOLUTE, IMPROVEMENT, PERCENT, competition_ranks, leaderboard_build
from goals.models import QuotaLevel, QuotaMetric
from goals.privacy import name_policy_for, pseudonym_numbers
from pipelines.models import DealStatus, Stage, StageKind
from spm.models import LeaderboardPrivacy
from spm.tenancy import membership_ids_visible
from tests.attainment_data import Q2, deal_create, north_and_south_reps_create, quota_create, stages_create, utc

TODAY = dt.date(2017, 5, 15)
WON = DealStatus.WON


@pytest.fixture
def people(org, team, manager_member):
    with scopes_disabled():
        stages = stages_create(org)
        people = north_and_south_reps_create(org, team, manager_member)
        anna, bert, cora, dirk = people["anna"], people["bert"], people["cora"], people["dirk"]
        quota_create(anna, "1000.00")
        quota_create(bert, "2000.00")
        quota_create(cora, "1000.00")
        deal_create(anna, stages, WON, "500.00", closed_at=utc(5, 2))
        deal_create(anna, stages, WON, "100.00", closed_at=utc(2, 2))
        deal_create(bert, stages, WON, "1000.00", closed_at=utc(4, 12))
        deal_create(cora, stages, WON, "400.00", closed_at=utc(5, 10))
        deal_create(dirk, stages, WON, "9999.00", closed_at=utc(5, 11))
    return {**people, "manager": manager_member}


def board_for(org, viewer, *, ranking=PERCENT, level=QuotaLevel.REP):
    with scope(organization=org):
        policy = name_policy_for(
            organization=org, viewer=viewer, visible_ids=membership_ids_visible(viewer), period_key=Q2.label
        )
        return leaderboard_build(
            organization=org,
            policy=policy,
            period=Q2,
            metric=QuotaMetric.WON_REVENUE,
            level=level,
            ranking=ranking,
            today=TODAY,
        )


def ranks(board):
    return [(entry.name, entry.rank) for entry in board.ranked]


def test_competition_ranks_share_and_skip():
    assert competition_ranks([Decimal(5), Decimal(5), Decimal(4), Decimal(3), Decimal(3)]) == [1, 1, 3, 4, 4]


def test_percent_ranking_ties_share_rank(org, people, admin_member):
    board = board_for(org, admin_member)

    assert ranks(board) == [("Anna", 1), ("Bert", 1), ("Cora", 3)]
    assert board.ranked[0].value == Decimal("0.5")


def test_board_on_a_past_day_ignores_later_closes(org, people, admin_member):
    with scopes_disabled():
        stages = {WON: Stage.objects.get(pipeline__organization=org, kind=StageKind.WON)}
        deal_create(people["cora"], stages, WON, "5000.00", closed_at=utc(5, 16))

    board = board_for(org, admin_member, ranking=ABSOLUTE)

    assert ranks(board) == [("Dirk", 1), ("Bert", 2), ("Anna", 3), ("Cora", 4)]
    assert board.ranked[3].value == Decimal("400.00")


def test_reps_without_quota_listed_apart(org, people, admin_member):
    board = board_for(org, admin_member)

    assert [entry.name for entry in board.unranked] == ["Dirk"]
    assert board.unranked[0].rank is None
    assert board.unranked[0].attainment.credited == Decimal("9999.00")


def test_absolute_ranking_ranks_everyone(org, people, admin_member):
    board = board_for(org, admin_member, ranking=ABSOLUTE)

    assert ranks(board) == [("Dirk", 1), ("Bert", 2), ("Anna", 3), ("Cora", 4)]
    assert board.unranked == []


def test_improvement_over_previous_quarter(org, people, admin_member):
    board = board_for(org, admin_member, ranking=IMPROVEMENT)

    assert ranks(board) == [("Dirk", 1), ("Bert", 2), ("Anna", 3), ("Cora", 3)]
    assert board.ranked[2].value == Decimal("400.00")


def test_team_board_is_ratio_of_sums(org, people, admin_member, team):
    board = board_for(org, admin_member, level=QuotaLevel.TEAM)

    by_name = {entry.name: entry for entry in board.ranked}
    assert by_name["North"].attainment.credited == Decimal("1500.00")
    assert by_name["North"].attainment.quota == Decimal("3000.00")
    assert by_name["North"].value == Decimal("0.5")
    assert by_name["South"].value == Decimal("10.399")
    assert ranks(board) == [("South", 1), ("North", 2)]


def test_minimum_group_size_hides_small_team(org, people, admin_member):
    with scopes_disabled():
        # North has three members (manager, Anna, Bert), South two.
        org.minimum_group_size = 3
        org.save(update_fields=["minimum_group_size"])

    board = board_for(org, admin_member, level=QuotaLevel.TEAM)

    assert ranks(board) == [("North", 1)]
    assert [row.subject for row in board.hidden_groups] == ["South"]


def test_names_mode_shows_everyone_to_rep(org, people):
    board = board_for(org, people["anna"])

    assert [entry.name for entry in board.ranked] == ["Anna", "Bert", "Cora"]
    assert board.own_entry.name == "Anna"


def test_pseudonyms_hide_other_reps_names(org, people):
    with scopes_disabled():
        org.leaderboard_privacy = LeaderboardPrivacy.PSEUDONYMS
        org.save(update_fields=["leaderboard_privacy"])
    with scope(organization=org):
        numbers = pseudonym_numbers(period_key=Q2.label)
    board = board_for(org, people["anna"])

    bert, cora, dirk = (numbers[people[name].pk] for name in ("bert", "cora", "dirk"))
    assert [entry.name for entry in board.ranked] == ["Anna", f"Rep {bert}", f"Rep {cora}"]
    assert [entry.name for entry in board.unranked] == [f"Rep {dirk}"]
    assert board.ranked[1].is_named is False


def test_pseudonyms_keep_names_of_managers_reps(org, people):
    with scopes_disabled():
        org.leaderboard_privacy = LeaderboardPrivacy.PSEUDONYMS
        org.save(update_fields=["leaderboard_privacy"])
    with scope(organization=org):
        cora = pseudonym_numbers(period_key=Q2.label)[people["cora"].pk]
    board = board_for(org, people["manager"])

    assert [entry.name for entry in board.ranked] == ["Anna", "Bert", f"Rep {cora}"]


def test_own_rank_mode_lists_only_own_row(org, people):
    with scopes_disabled():
        org.leaderboard_privacy = LeaderboardPrivacy.OWN_RANK
        org.save(update_fields=["leaderboard_privacy"])
    board = board_for(org, people["bert"])

    assert ranks(board) == [("Bert", 1)]
    assert board.unranked == []
    assert board.ranked_count == 3
    assert board.own_entry.rank == 1


# --- the page ---------------------------------------------------------------------------------------


def test_page_full_for_rep(client, org, people):
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/leaderboard/", {"period": "2017-Q2"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body
    assert 'hx-trigger="every 30s"' in body
    assert "Without a quota (not ranked)" in body
    assert "Dirk" in body
    assert "Your rank: 1 of 3" in body
    assert "HX-Request" in response["Vary"]


def test_page_fragment_for_htmx(client, org, people):
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/leaderboard/", {"period": "2017-Q2", "ranking": "absolute"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="leaderboard-content"')
    assert 'data-rank="1"' in body
    assert "HX-Request" in response["Vary"]


def test_page_own_rank_hides_other_names(client, org, people):
    with scopes_disabled():
        org.leaderboard_privacy = LeaderboardPrivacy.OWN_RANK
        org.save(update_fields=["leaderboard_privacy"])
    client.force_login(people["anna"].user)

    body = client.get("/o/acme/leaderboard/", {"period": "2017-Q2"}).content.decode()

    assert "Anna" in body
    assert "Bert" not in body
    assert "Cora" not in body
    assert "Dirk" not in body


def test_page_invalid_metric_reports_error(client, org, people):
    client.force_login(people["anna"].user)

    response = client.get("/o/acme/leaderboard/", {"period": "2017-Q2", "metric": "bogus"})

    assert response.status_code == 200
    assert "bogus" in response.content.decode()


def test_page_of_other_org_is_404(client, org, people, other_org_admin):
    client.force_login(other_org_admin.user)

    assert client.get("/o/acme/leaderboard/").status_code == 404
