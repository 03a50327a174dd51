"""Deal list (filters, totals, pagination, role visibility) and deal detail pages."""

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from pipelines.models import DealStatus
from tests.attainment_data import utc
from tests.factories import (
    AccountFactory,
    DealFactory,
    DealStageChangeFactory,
    ProductFactory,
    TeamFactory,
    TerritoryFactory,
)

NBSP = "\xa0"


@pytest.fixture
def deals(org, admin_member, member, other_rep, south_rep, stages):
    """One deal per rep: Ann's won Alpha, Bob's open Beta, Sue's lost Gamma."""
    with scopes_disabled():
        return {
            "ann": DealFactory(
                owner=member,
                name="Alpha",
                external_id="CRM-001",
                stage=stages["won"],
                status=DealStatus.WON,
                amount=Decimal("1234.56"),
                created_at=utc(4, 3),
                closed_at=utc(5, 8),
            ),
            "bob": DealFactory(
                owner=other_rep,
                name="Beta",
                external_id="CRM-002",
                stage=stages["open"],
                status=DealStatus.OPEN,
                amount=Decimal("500.00"),
                created_at=utc(4, 10),
            ),
            "sue": DealFactory(
                owner=south_rep,
                name="Gamma",
                external_id="CRM-003",
                stage=stages["lost"],
                status=DealStatus.LOST,
                amount=Decimal("2000.00"),
                created_at=utc(4, 1),
                closed_at=utc(6, 1),
            ),
        }


def deal_names(response) -> list[str]:
    return [deal.name for deal in response.context["page"]]


# Role visibility


def test_rep_lists_only_own_deals(client, deals, member):
    client.force_login(member.user)

    response = client.get("/o/acme/deals/")

    assert response.status_code == 200
    assert deal_names(response) == ["Alpha"]
    assert response.context["totals"].count == 1


def test_manager_lists_team_deals(client, deals, manager_member):
    client.force_login(manager_member.user)

    response = client.get("/o/acme/deals/")

    assert sorted(deal_names(response)) == ["Alpha", "Beta"]


def test_admin_lists_all_deals(client, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/")

    # Newest created first.
    assert deal_names(response) == ["Beta", "Alpha", "Gamma"]
    assert response.context["totals"].base_amount == Decimal("3734.56")


def test_rep_gets_404_on_other_reps_deal(client, deals, member):
    client.force_login(member.user)

    assert client.get(f"/o/acme/deals/{deals['bob'].pk}/").status_code == 404
    assert client.get(f"/o/acme/deals/{deals['ann'].pk}/").status_code == 200


def test_manager_gets_404_on_other_teams_deal(client, deals, manager_member):
    client.force_login(manager_member.user)

    assert client.get(f"/o/acme/deals/{deals['sue'].pk}/").status_code == 404
    assert client.get(f"/o/acme/deals/{deals['bob'].pk}/").status_code == 200


def test_owner_outside_visibility_is_rejected(client, deals, member, other_rep):
    client.force_login(member.user)

    response = client.get(f"/o/acme/deals/?owner={other_rep.pk}")

    assert response.status_code == 400
    assert response.context["errors"] == [
        f"No owner with id {other_rep.pk} among the people you may see; pick one from the list."
    ]
    assert "totals" not in response.context


def test_empty_result_says_so(client, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?q=no-such-deal", HTTP_ACCEPT_LANGUAGE="en")
    text = response.content.decode()

    assert response.status_code == 200
    assert "No deals match these filters." in text
    assert "0 deals, " in text


# Filters


def test_filter_by_status(client, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?status=lost")

    assert deal_names(response) == ["Gamma"]


def test_filter_by_stage_and_owner(client, deals, admin_member, stages, other_rep):
    client.force_login(admin_member.user)

    by_stage = client.get(f"/o/acme/deals/?stage={stages['won'].pk}")
    by_owner = client.get(f"/o/acme/deals/?owner={other_rep.pk}")

    assert deal_names(by_stage) == ["Alpha"]
    assert deal_names(by_owner) == ["Beta"]


def test_filter_by_team(client, deals, admin_member, south_rep):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?team={south_rep.team_id}")

    assert deal_names(response) == ["Gamma"]


def test_search_by_name_or_external_id(client, deals, admin_member):
    client.force_login(admin_member.user)

    by_name = client.get("/o/acme/deals/?q=alp")
    by_external_id = client.get("/o/acme/deals/?q=crm-003")

    assert deal_names(by_name) == ["Alpha"]
    assert deal_names(by_external_id) == ["Gamma"]


def test_period_and_metric_filter(client, deals, admin_member):
    client.force_login(admin_member.user)

    won = client.get("/o/acme/deals/?period=2017-Q2&metric=won")
    closed = client.get("/o/acme/deals/?period=2017-Q2&metric=closed")
    open_at_end = client.get("/o/acme/deals/?period=2017-04&metric=open")

    assert deal_names(won) == ["Alpha"]
    assert sorted(deal_names(closed)) == ["Alpha", "Gamma"]
    # At 2017-05-01 all three were created and none was closed yet.
    assert open_at_end.context["totals"].count == 3


def test_grain_and_subject_filter(client, deals, admin_member, member):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?grain=rep&subject={member.pk}")

    assert deal_names(response) == ["Alpha"]


def test_active_filters_shown_as_removable_chips(client, deals, admin_member, member):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?period=2017-Q2&metric=won&grain=rep&subject={member.pk}&status=won")

    content = html.unescape(response.content.decode())
    chips = response.context["chips"]
    assert [text for text, _url in chips] == [
        "Won in the period: Q2 FY 2017",
        f"Rep: {member.display_name}",
        "Status: Won",
    ]
    assert chips[0][1] == f"/o/acme/deals/?grain=rep&subject={member.pk}&status=won"
    assert chips[2][1] == f"/o/acme/deals/?period=2017-Q2&metric=won&grain=rep&subject={member.pk}"
    assert 'aria-label="Remove filter Status: Won"' in content


# Invalid filters


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "period=2017-Q9&metric=won",
            "Invalid period '2017-Q9'; use a fiscal year (2017), a quarter (2017-Q2) or a month (2017-03).",
        ),
        ("period=2017-Q2&metric=best", "Invalid metric 'best'; use one of: won, lost, closed, open."),
        ("owner=ann", "Invalid owner 'ann'; use a numeric id, e.g. owner=12."),
        ("stage=1.5", "Invalid stage '1.5'; use a numeric id, e.g. stage=12."),
        ("team=3&team=x", "Invalid team 'x'; use a numeric id, e.g. team=12."),
        ("grain=country&subject=1", "Invalid grain 'country'; use one of: organization, territory, team, rep."),
        ("metric=won", "The metric 'won' needs a period; add e.g. period=2017-Q2, or remove the metric."),
        ("period=2017", "The period '2017' needs a metric; add metric=won, lost, closed or open."),
        ("grain=rep", "The grain 'rep' needs a subject id; add e.g. subject=12, or remove the grain."),
        ("status=pending", "Invalid status 'pending'; use one of: open, won, lost."),
        ("sort=price", "Invalid sort 'price'; use one of: name, owner, stage, amount, created, closed"),
        ("q=" + "x" * 201, "Invalid q: 201 characters; use at most 200."),
        ("key=" + "x" * 250, "Invalid key: 250 characters; use at most 200."),
    ],
)
def test_invalid_filter_shows_message(client, deals, admin_member, query, message):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?{query}")

    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert "page" not in response.context or response.context["page"] is None


def test_long_search_message_german(client, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?q=" + "x" * 201, HTTP_ACCEPT_LANGUAGE="de")

    assert response.status_code == 400
    assert "Ungültiger Wert für q: 201 Zeichen; zulässig sind höchstens 200." in html.unescape(response.content.decode())


def test_team_subject_outside_visibility_is_rejected(client, deals, member, south_rep):
    client.force_login(member.user)

    response = client.get(f"/o/acme/deals/?grain=team&subject={south_rep.team_id}")

    assert response.status_code == 400
    assert response.context["errors"] == [
        f"No team with id {south_rep.team_id} among your teams; pick one from the list."
    ]
    assert "totals" not in response.context


def test_other_organizations_team_is_rejected(client, deals, admin_member, other_org):
    with scopes_disabled():
        foreign_team = TeamFactory(organization=other_org, name="Globex team")
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?team={foreign_team.pk}")

    assert response.status_code == 400
    assert response.context["errors"] == [
        f"No team with id {foreign_team.pk} among your teams; pick one from the list."
    ]
    assert "Globex team" not in response.content.decode()


@pytest.mark.parametrize(
    "query, message",
    [
        ("stage={unknown}", "No stage with id {unknown} in this organization; pick one from the list."),
        (
            "grain=rep&subject={unknown}",
            "No rep with id {unknown} among the people you may see; remove grain and subject or fix the id.",
        ),
        (
            "grain=territory&subject={unknown}",
            "No territory with id {unknown} in this organization; remove grain and subject or fix the id.",
        ),
    ],
)
def test_unknown_filter_ids_are_rejected(client, deals, admin_member, query, message):
    unknown = 987654
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?" + query.format(unknown=unknown))

    assert response.status_code == 400
    assert response.context["errors"] == [message.format(unknown=unknown)]


def test_rep_filters_by_own_team_with_its_name(client, deals, member, team):
    client.force_login(member.user)

    by_team = client.get(f"/o/acme/deals/?team={team.pk}")
    by_subject = client.get(f"/o/acme/deals/?grain=team&subject={team.pk}")

    assert by_team.status_code == 200
    assert [text for text, _url in by_team.context["chips"]] == ["Team: North"]
    assert by_subject.status_code == 200
    assert [text for text, _url in by_subject.context["chips"]] == ["Team: North"]


def test_team_chip_shows_team_name(client, deals, admin_member, south_rep):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?team={south_rep.team_id}")

    assert [text for text, _url in response.context["chips"]] == ["Team: South"]


# Sorting, pagination, totals


def test_sort_by_amount_both_directions(client, deals, admin_member):
    client.force_login(admin_member.user)

    ascending = client.get("/o/acme/deals/?sort=amount")
    descending = client.get("/o/acme/deals/?sort=-amount")

    assert deal_names(ascending) == ["Beta", "Alpha", "Gamma"]
    assert deal_names(descending) == ["Gamma", "Alpha", "Beta"]
    assert 'aria-sort="descending"' in descending.content.decode()


@pytest.fixture
def many_deals(org, member, stages):
    with scopes_disabled():
        for number in range(60):
            DealFactory(
                owner=member,
                stage=stages["open"],
                amount=Decimal("10.50"),
                created_at=utc(1, 1) + dt.timedelta(hours=number),
            )


def test_pagination_totals_cover_all_pages(client, many_deals, admin_member):
    client.force_login(admin_member.user)

    first = client.get("/o/acme/deals/")
    second = client.get("/o/acme/deals/?page=2")

    assert len(first.context["page"]) == 50
    assert len(second.context["page"]) == 10
    assert first.context["totals"].count == 60
    assert first.context["totals"].base_amount == Decimal("630.00")
    assert "60 deals, €630.00 in total" in first.content.decode()
    assert "Page 1 of 2" in first.content.decode()


def test_out_of_range_page_shows_last_page(client, many_deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?page=99")

    assert response.status_code == 200
    assert response.context["page"].number == 2


def test_deal_list_fragment_for_htmx(client, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?status=won", headers={"HX-Request": "true"})

    content = response.content.decode()
    assert "<html" not in content
    assert "Alpha" in content
    assert "Gamma" not in content
    assert "HX-Request" in response["Vary"]


def test_deal_list_full_page(client, deals, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/")

    content = response.content.decode()
    assert "<html" in content
    assert '<div class="table-responsive">' in content
    assert '<label class="form-label" for="deal-search">' in content
    assert '<td class="num">€1,234.56</td>' in content


# Query counts: session, user and membership, then the page's own reads.


def test_deal_list_query_count_admin(client, many_deals, admin_member, django_assert_num_queries):
    client.force_login(admin_member.user)

    # + teams, stages, owners, totals, page rows, win model, page scores, next steps (ranking, stalled).
    with django_assert_num_queries(12):
        client.get("/o/acme/deals/")


def test_deal_list_query_count_manager(client, many_deals, manager_member, django_assert_num_queries):
    client.force_login(manager_member.user)

    # + visibility (teams, members), teams, stages, owners, totals, page rows, win model, page scores,
    # next steps (ranking, stalled).
    with django_assert_num_queries(14):
        client.get("/o/acme/deals/?period=2017-Q1&metric=open&status=open")


def test_deal_list_query_count_rep(client, many_deals, member, django_assert_num_queries):
    client.force_login(member.user)

    # + stages, owners, totals, page rows (a rep has no teams to pick), win model, page scores,
    # next steps (ranking, stalled).
    with django_assert_num_queries(11):
        client.get("/o/acme/deals/?sort=-amount")


# Deal detail


@pytest.fixture
def detailed_deal(org, member, stages):
    with scopes_disabled():
        deal = DealFactory(
            owner=member,
            name="Big one",
            account=AccountFactory(organization=org, name="Initech"),
            product=ProductFactory(organization=org, name="GTX Pro"),
            territory=TerritoryFactory(organization=org, name="DACH"),
            stage=stages["won"],
            status=DealStatus.WON,
            amount=Decimal("1000.00"),
            currency="USD",
            base_amount=Decimal("912.34"),
            created_at=utc(3, 1),
            expected_close_on=dt.date(2017, 12, 31),
            closed_at=utc(5, 8),
        )
        DealStageChangeFactory(
            deal=deal, from_stage=None, to_stage=stages["open"], changed_at=utc(3, 1), is_implied=True
        )
        DealStageChangeFactory(deal=deal, from_stage=stages["open"], to_stage=stages["won"], changed_at=utc(5, 8))
        return deal


def test_deal_detail_shows_fields_and_history(client, detailed_deal, member):
    client.force_login(member.user)

    response = client.get(f"/o/acme/deals/{detailed_deal.pk}/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "Initech" in content
    assert "GTX Pro" in content
    assert "DACH" in content
    assert "<dd class=\"col-7 num text-start\" data-amount>$1,000.00</dd>" in content
    assert "<dd class=\"col-7 num text-start\" data-base-amount>€912.34</dd>" in content
    assert [change.to_stage.name for change in response.context["history"]] == ["Qualify", "Won"]
    assert content.count(">implied</span>") == 1


def test_deal_detail_in_german(client, detailed_deal, member):
    member.user.language = "de"
    member.user.save(update_fields=["language"])
    client.force_login(member.user)

    content = client.get(f"/o/acme/deals/{detailed_deal.pk}/").content.decode()

    assert f"data-amount>1.000,00{NBSP}$</dd>" in content
    assert f"data-base-amount>912,34{NBSP}€</dd>" in content
    assert "31.12.2017" in content
    assert re.search(r"data-closed>08\.05\.2017</dd>", content)


def test_deal_detail_query_count(client, detailed_deal, member, django_assert_num_queries):
    client.force_login(member.user)

    # session, user, membership, the deal with its relations, its history, its score, the win model.
    with django_assert_num_queries(7):
        client.get(f"/o/acme/deals/{detailed_deal.pk}/")


def test_deal_detail_date_only_times_show_date_german(client, detailed_deal, member, stages):
    with scopes_disabled():
        DealStageChangeFactory(
            deal=detailed_deal,
            from_stage=stages["won"],
            to_stage=stages["open"],
            changed_at=dt.datetime(2017, 6, 1, 9, 30, tzinfo=dt.timezone.utc),
        )
    member.user.language = "de"
    member.user.save(update_fields=["language"])
    client.force_login(member.user)

    content = client.get(f"/o/acme/deals/{detailed_deal.pk}/").content.decode()

    assert 'data-created>01.03.2017</dd>' in content
    assert 'data-closed>08.05.2017</dd>' in content
    assert '<td class="num">01.03.2017</td>' in content
    assert '<td class="num">08.05.2017</td>' in content
    # A real time keeps its time, in the organization's time zone (Europe/Berlin, UTC+2 in June).
    assert '<td class="num">01.06.2017 11:30</td>' in content
    assert "14:00" not in content


def test_deal_detail_date_only_times_show_date_english(client, detailed_deal, member):
    client.force_login(member.user)

    content = client.get(f"/o/acme/deals/{detailed_deal.pk}/").content.decode()

    assert '<td class="num">03/01/2017</td>' in content
    assert '<td class="num">05/08/2017</td>' in content
    assert "p.m." not in content


def test_deal_list_date_only_in_auckland(client, detailed_deal, admin_member, org):
    # In Auckland (UTC+12), 12:00 UTC of 1 March is already 2 March, but the source gave 1 March.
    org.time_zone = "Pacific/Auckland"
    org.save(update_fields=["time_zone"])
    client.force_login(admin_member.user)

    content = client.get("/o/acme/deals/").content.decode()

    assert '<td class="num">03/01/2017</td>' in content
    assert '<td class="num">03/02/2017</td>' not in content
