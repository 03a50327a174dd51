"""Manager dashboard and rep scorecard: full pages, htmx fragments, roles, drill-down, charts.

Scenario (organization Acme, EUR, fiscal year = calendar year, Europe/Berlin),
deals of Q2 2017 unless noted; every created and closed time is 12:00 UTC:

team North (manager_member): member (rep) and other_rep
- member: won 1,234.56 (created 04-03, closed 05-08: 35 days),
  won 2,000.00 (04-10 → 06-09: 60 days), lost 500.00 (closed 05-31),
  open 300.00 (created 03-01), and won 100.00 in Q1 (closed 02-01).
- other_rep: won 765.44 (05-01 → 05-11: 10 days), lost 1,000.00 twice
  (closed 06-01 and 06-15), open 700.00 (created 06-20).
team South (no manager of ours): south_rep won 5,000.00 (05-02 → 05-12: 10 days).

North in Q2: won 3 for 4,000.00, lost 3 for 2,500.00, win rate 3/6 = 50.0 %,
value win rate 4,000 / 6,500 = 61.5 %, average deal size 1,333.33, sales cycle
(35 + 60 + 10) / 3 = 35.0 days, median 35.0, open at 2017-07-01: 2 for
1,000.00, velocity 2 × 0.5 × 1,333.33 ÷ 35 = 38.10 per day.
Organization in Q2: won 4 for 9,000.00, lost 3 for 2,500.00, win rate 4/7 =
57.1 %, sales cycle (35 + 60 + 10 + 10) / 4 = 28.75 days, open 2 for 1,000.00.
"""

import datetime as dt
import html
import json
import re
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from dashboards.models import KpiSnapshot
from dashboards.services import kpi_snapshot_recompute
from goals.models import Territory
from pipelines.models import Deal, DealStatus
from spm.models import Role
from tests.attainment_data import utc
from tests.factories import DealFactory, MembershipFactory, UserFactory

NBSP = "\xa0"


def add_deal(owner, stages, status, amount, created_at, closed_at=None):
    stage = stages[status]
    return DealFactory(
        owner=owner,
        stage=stage,
        status=status,
        amount=Decimal(amount),
        created_at=created_at,
        closed_at=closed_at,
    )


@pytest.fixture
def scenario(org, admin_member, manager_member, member, other_rep, south_rep, stages):
    with scopes_disabled():
        member.user.name = "Ann Member"
        member.user.save(update_fields=["name"])
        other_rep.user.name = "Bob Other"
        other_rep.user.save(update_fields=["name"])
        add_deal(member, stages, DealStatus.WON, "1234.56", utc(4, 3), utc(5, 8))
        add_deal(member, stages, DealStatus.WON, "2000.00", utc(4, 10), utc(6, 9))
        add_deal(member, stages, DealStatus.LOST, "500.00", utc(4, 1), utc(5, 31))
        add_deal(member, stages, DealStatus.OPEN, "300.00", utc(3, 1))
        add_deal(member, stages, DealStatus.WON, "100.00", utc(1, 5), utc(2, 1))
        add_deal(other_rep, stages, DealStatus.WON, "765.44", utc(5, 1), utc(5, 11))
        add_deal(other_rep, stages, DealStatus.LOST, "1000.00", utc(4, 1), utc(6, 1))
        add_deal(other_rep, stages, DealStatus.LOST, "1000.00", utc(4, 2), utc(6, 15))
        add_deal(other_rep, stages, DealStatus.OPEN, "700.00", utc(6, 20))
        add_deal(south_rep, stages, DealStatus.WON, "5000.00", utc(5, 2), utc(5, 12))
    kpi_snapshot_recompute(organization=org)
    return org


def tile(content: str, key: str) -> str:
    """Return the text of one KPI tile value (or the median line) with tags stripped."""
    match = re.search(rf'data-kpi="{key}">(.*?)</(?:p|span)>\s', content, re.S)
    assert match, f"no tile {key}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def tile_html(content: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">(.*?)</span>\s*</p>', content, re.S)
    assert match, f"no tile {key}"
    return match.group(1)


def tile_link(content: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">\s*<a href="([^"]+)"', content)
    assert match, f"no drill-down link on tile {key}"
    return html.unescape(match.group(1))


# Full page and htmx fragment


def test_dashboard_full_page_defaults_to_latest_quarter(client, scenario, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/dashboard/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" in content
    assert '<option value="2017-Q2" data-start="2017-04-01" selected>' in content
    assert tile(content, "won_count") == "4"
    assert tile(content, "won_amount") == "€9,000.00"
    assert tile(content, "lost_count") == "3"
    assert tile(content, "win_rate") == "57.1%"
    assert tile(content, "sales_cycle_days_mean") == f"28.8{NBSP}days"
    assert tile(content, "open_count") == "2"
    assert tile(content, "open_amount") == "€1,000.00"
    assert "HX-Request" in response["Vary"]


def test_dashboard_fragment_for_htmx(client, scenario, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/dashboard/?period=2017-Q1", headers={"HX-Request": "true"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="period-select"' not in content
    assert tile(content, "won_count") == "1"
    assert tile(content, "won_amount") == "€100.00"
    assert "HX-Request" in response["Vary"]


def test_dashboard_history_restore_gets_full_page(client, scenario, admin_member):
    client.force_login(admin_member.user)

    response = client.get(
        "/o/acme/dashboard/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    assert "<html" in response.content.decode()


def test_dashboard_in_german(client, scenario, admin_member):
    admin_member.user.language = "de"
    admin_member.user.save(update_fields=["language"])
    client.force_login(admin_member.user)

    response = client.get("/o/acme/dashboard/")

    content = response.content.decode()
    assert '<html lang="de">' in content
    assert tile(content, "won_amount") == f"9.000,00{NBSP}€"
    assert tile(content, "win_rate") == f"57,1{NBSP}%"
    assert tile(content, "sales_cycle_days_mean") == f"28,8{NBSP}Tage"


def test_dashboard_periods_grouped_in_picker(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/").content.decode()

    assert '<optgroup label="Fiscal years">' in content
    assert '<optgroup label="Quarters">' in content
    assert '<optgroup label="Months">' in content
    assert '<option value="2017" data-start="2017-01-01">FY 2017</option>' in content
    assert '<option value="2017-05" data-start="2017-05-01">May 2017</option>' in content


def test_dashboard_tiles_have_definitions(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/").content.decode()

    assert content.count('<details class="kpi-definition">') == 10
    assert "Won deals ÷ (won + lost deals) closed in the period." in content


def test_dashboard_without_data_explains(client, org, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/dashboard/")

    assert response.status_code == 200
    assert "No KPI data yet" in response.content.decode()


def test_dashboard_invalid_period_shows_error(client, scenario, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/dashboard/?period=2017-Q7")

    content = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "Invalid period '2017-Q7'" in content
    assert "a quarter (2017-Q2)" in content
    assert tile(content, "won_count") == "4"


def test_dashboard_undefined_rate_shows_dash(client, scenario, admin_member):
    client.force_login(admin_member.user)

    # March 2017 has open deals only: nothing closed, so every rate is undefined.
    content = client.get("/o/acme/dashboard/?period=2017-03").content.decode()

    assert 'title="No deals closed in this period." tabindex="0">–</span>' in content


# Roles


def test_rep_gets_404_on_dashboard(client, scenario, member):
    client.force_login(member.user)

    assert client.get("/o/acme/dashboard/").status_code == 404


def test_manager_sees_own_team_row_and_reps(client, scenario, manager_member):
    client.force_login(manager_member.user)

    content = client.get("/o/acme/dashboard/").content.decode()

    assert "North · Q2 FY 2017" in content
    assert tile(content, "won_count") == "3"
    assert tile(content, "won_amount") == "€4,000.00"
    assert tile(content, "win_rate") == "50.0%"
    assert tile(content, "value_win_rate") == "61.5%"
    assert tile(content, "average_deal_size") == "€1,333.33"
    assert tile(content, "sales_cycle_days_mean") == f"35.0{NBSP}days"
    assert tile(content, "sales_cycle_days_median") == f"35.0{NBSP}days"
    assert tile(content, "pipeline_velocity") == "€38.10 per day"
    assert "Ann Member" in content
    assert "Bob Other" in content
    assert "Sue South" not in content


def test_manager_of_two_teams_sees_their_sum(client, scenario, manager_member, south_rep):
    with scopes_disabled():
        south = south_rep.team
        south.manager = manager_member
        south.save(update_fields=["manager"])
    client.force_login(manager_member.user)

    content = client.get("/o/acme/dashboard/").content.decode()

    assert "Your teams · Q2 FY 2017" in content
    assert tile(content, "won_count") == "4"
    assert tile(content, "won_amount") == "€9,000.00"
    # A median cannot be added up across teams.
    assert "undefined-value" in tile_html(content, "sales_cycle_days_median")


def test_admin_team_filter_shows_team_row(client, scenario, admin_member, south_rep):
    client.force_login(admin_member.user)

    content = client.get(f"/o/acme/dashboard/?team={south_rep.team_id}").content.decode()

    assert "South · Q2 FY 2017" in content
    assert tile(content, "won_amount") == "€5,000.00"
    assert "Sue South" in content
    assert "Ann Member" not in content


def test_manager_cannot_filter_other_team(client, scenario, manager_member, south_rep):
    client.force_login(manager_member.user)

    content = client.get(f"/o/acme/dashboard/?team={south_rep.team_id}").content.decode()

    assert f"No team with id {south_rep.team_id} among your teams" in content
    assert "Sue South" not in content
    assert tile(content, "won_amount") == "€4,000.00"


def test_dashboard_non_numeric_team_shows_error(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = html.unescape(client.get("/o/acme/dashboard/?team=north").content.decode())

    assert "Invalid team 'north'; use a numeric id, e.g. team=12." in content


# Rep table sorting


def rep_order(content: str) -> list[str]:
    table = content[content.index('<table class="table table-sm table-hover align-middle kpi-table">') :]
    return re.findall(r'<th scope="row">([^<]+)</th>', table[: table.index("</table>")])


def subject_table(content: str, caption_start: str) -> dict[str, list[str]]:
    """Return the cells of the team or territory table whose caption starts with `caption_start`, by row name."""
    table = content[content.index(f'<caption class="visually-hidden">{caption_start}') :]
    table = table[: table.index("</table>")]
    rows = {}
    for name, cells in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', table, re.S):
        rows[name] = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
    return rows


def test_admin_sees_team_and_territory_tables(client, scenario, admin_member, south_rep):
    with scopes_disabled():
        territory = Territory.objects.create(organization=scenario, name="Süd")
        Deal.objects.filter(owner=south_rep).update(territory=territory)
    kpi_snapshot_recompute(organization=scenario)
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/?period=2017-Q2").content.decode()

    teams = subject_table(content, "KPIs per team")
    # North: won 1,234.56 + 2,000.00 + 765.44; lost 500 + 1,000 + 1,000; win rate 3 / 6.
    assert list(teams) == ["North", "South"]
    assert teams["North"][:4] == ["3", "€4,000.00", "3", "50.0%"]
    assert teams["South"][:2] == ["1", "€5,000.00"]
    territories = subject_table(content, "KPIs per territory")
    assert list(territories) == ["Süd"]
    assert territories["Süd"][:2] == ["1", "€5,000.00"]
    assert f"grain=territory&amp;subject={territory.pk}" in content


def test_manager_with_one_team_sees_no_subject_tables(client, scenario, manager_member):
    client.force_login(manager_member.user)

    content = client.get("/o/acme/dashboard/?period=2017-Q2").content.decode()

    assert "KPIs per team" not in content
    assert "KPIs per territory" not in content


def test_rep_table_sorted_by_won_amount_by_default(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/").content.decode()

    assert rep_order(content) == ["Sue South", "Ann Member", "Bob Other"]


def test_rep_table_sorts_by_win_rate_ascending(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/?sort=win_rate").content.decode()

    # Win rates: Bob 1/3, Ann 2/3, Sue 1/1.
    assert rep_order(content) == ["Bob Other", "Ann Member", "Sue South"]
    assert 'aria-sort="ascending"' in content


def test_rep_table_sorts_by_sales_cycle(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/?sort=-sales_cycle").content.decode()

    # Sales cycle: Ann (35 + 60) / 2 = 47.5, Bob 10, Sue 10; ties by name.
    assert rep_order(content) == ["Ann Member", "Bob Other", "Sue South"]


def test_rep_table_sort_links_use_htmx(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = html.unescape(client.get("/o/acme/dashboard/").content.decode())

    assert '<a href="?sort=win_rate"' not in content
    assert 'href="?sort=-win_rate" hx-get="/o/acme/dashboard/?sort=-win_rate"' in content
    assert 'href="?sort=won_amount"' in content


def test_invalid_sort_names_the_choices(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = html.unescape(client.get("/o/acme/dashboard/?sort=name").content.decode())

    assert "Invalid sort 'name'; use one of: won_amount, win_rate, sales_cycle" in content


# Charts


def chart_json(content: str, element_id: str) -> str:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', content, re.S)
    assert match, f"no chart data {element_id}"
    return match.group(1)


def test_charts_embedded_as_json(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/").content.decode()

    won_chart = json.loads(chart_json(content, "won-amount-chart"))
    win_rate_chart = json.loads(chart_json(content, "win-rate-chart"))
    assert len(won_chart["data"][0]["y"]) == 12
    assert won_chart["data"][0]["y"][1] == 100.0
    assert won_chart["data"][0]["y"][4] == 7000.0
    assert won_chart["layout"]["separators"] == ".,"
    assert won_chart["layout"]["xaxis"]["title"]["text"] == "Month"
    assert win_rate_chart["data"][0]["orientation"] == "h"
    assert win_rate_chart["data"][0]["y"] == ["Bob Other", "Ann Member", "Sue South"]
    assert win_rate_chart["data"][0]["text"] == ["33.3%", "66.7%", "100.0%"]
    assert "charts.js" in content
    assert "vendor/plotly/plotly.min.js" in content
    assert "Plotly.newPlot" not in content


def test_charts_use_german_separators(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/", headers={"Accept-Language": "de"}).content.decode()

    won_chart = json.loads(chart_json(content, "won-amount-chart"))
    win_rate_chart = json.loads(chart_json(content, "win-rate-chart"))
    assert won_chart["layout"]["separators"] == ",."
    assert won_chart["layout"]["yaxis"]["ticksuffix"] == f"{NBSP}€"
    assert won_chart["data"][0]["x"][4] == "Mai 17"
    assert won_chart["data"][0]["customdata"][4] == f"7.000,00{NBSP}€"
    assert win_rate_chart["data"][0]["text"] == [f"33,3{NBSP}%", f"66,7{NBSP}%", f"100,0{NBSP}%"]


# Drill-down


@pytest.mark.parametrize(
    ("metric", "expected_count", "expected_amount"),
    [("won", 4, Decimal("9000.00")), ("lost", 3, Decimal("2500.00")), ("open", 2, Decimal("1000.00"))],
)
def test_drilldown_totals_equal_tiles(
    client, scenario, admin_member, metric, expected_count, expected_amount
):
    client.force_login(admin_member.user)
    content = client.get("/o/acme/dashboard/").content.decode()

    response = client.get(tile_link(content, f"{metric}_count"))

    assert response.status_code == 200
    assert tile(content, f"{metric}_count") == str(expected_count)
    assert response.context["totals"].count == expected_count
    assert response.context["totals"].base_amount == expected_amount
    with scopes_disabled():
        snapshot = KpiSnapshot.objects.get(
            grain="organization", period_kind="quarter", period_start=dt.date(2017, 4, 1)
        )
    assert getattr(snapshot, f"{metric}_count") == expected_count
    assert getattr(snapshot, f"{metric}_amount") == expected_amount


@pytest.mark.parametrize(("amount_key", "expected"), [("won_amount", "€9,000.00"), ("open_amount", "€1,000.00")])
def test_drilldown_amount_tile_links_same_deals(client, scenario, admin_member, amount_key, expected):
    client.force_login(admin_member.user)
    content = client.get("/o/acme/dashboard/").content.decode()

    response = client.get(tile_link(content, amount_key))

    assert tile(content, amount_key) == expected
    assert f'data-total-amount>{expected}</td>' in response.content.decode()


def test_drilldown_from_team_row_keeps_team(client, scenario, manager_member):
    client.force_login(manager_member.user)
    content = client.get("/o/acme/dashboard/").content.decode()

    url = tile_link(content, "won_amount")
    response = client.get(url)

    assert f"team={manager_member.team_id}" in url
    assert "period=2017-Q2" in url
    assert "metric=won" in url
    assert response.context["totals"].count == 3
    assert response.context["totals"].base_amount == Decimal("4000.00")


def test_drilldown_from_rep_row_lists_rep_deals(client, scenario, admin_member, other_rep):
    client.force_login(admin_member.user)
    content = html.unescape(client.get("/o/acme/dashboard/").content.decode())

    url = f"/o/acme/deals/?period=2017-Q2&metric=lost&grain=rep&subject={other_rep.pk}"
    response = client.get(url)

    assert f'href="{url}"' in content
    assert response.context["totals"].count == 2
    assert response.context["totals"].base_amount == Decimal("2000.00")


# Scorecard (/me/)


def cell(content: str, attribute: str, key: str) -> str:
    match = re.search(rf'{attribute}="{key}">(.*?)</td>', content, re.S)
    assert match, f"no cell {attribute}={key}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def north_rep_add(org, team, name, *deals):
    """Add a rep to team North with `deals` as (stages, status, amount, created_at, closed_at) and recompute."""
    with scopes_disabled():
        rep = MembershipFactory(organization=org, role=Role.REP, team=team, user=UserFactory(name=name))
        for stages, status, amount, created_at, closed_at in deals:
            add_deal(rep, stages, status, amount, created_at, closed_at)
    kpi_snapshot_recompute(organization=org)
    return rep


def median_hidden_reason(content: str, key: str) -> str:
    """Return the tooltip of a median cell that shows no value, or fail if the cell shows one."""
    match = re.search(rf'data-median="{key}">\s*<span class="undefined-value" title="([^"]*)"', content)
    assert match, f"median cell {key} shows a value"
    return html.unescape(match.group(1))


HIDDEN_BELOW_THREE = (
    "Hidden because fewer than 3 reps of your team have a value for this KPI, "
    "so the median would give away a colleague's figures."
)


def test_me_page_shows_row_and_median(client, scenario, team, member):
    north_rep_add(scenario, team, "Cat Third")
    client.force_login(member.user)

    response = client.get("/o/acme/me/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" in content
    # Ann: won 2 for 3,234.56. Team median over Ann, Bob and Cat (no deals): (2, 1, 0) and
    # (3,234.56, 765.44, 0). Win rates: Ann 2/3 and Bob 1/3; Cat has none, so only two values.
    assert cell(content, "data-kpi", "won_count") == "2"
    assert cell(content, "data-kpi", "won_amount") == "€3,234.56"
    assert cell(content, "data-kpi", "win_rate") == "66.7%"
    assert cell(content, "data-median", "won_count") == "1"
    assert cell(content, "data-median", "won_amount") == "€765.44"
    assert median_hidden_reason(content, "win_rate") == HIDDEN_BELOW_THREE
    assert "HX-Request" in response["Vary"]


def test_me_hides_median_in_team_of_two(client, scenario, member):
    client.force_login(member.user)

    content = client.get("/o/acme/me/").content.decode()

    # Ann and Bob only: the median (2 + 1) / 2 would give away Bob's won count.
    assert cell(content, "data-kpi", "won_count") == "2"
    assert median_hidden_reason(content, "won_count") == HIDDEN_BELOW_THREE
    assert median_hidden_reason(content, "won_amount") == HIDDEN_BELOW_THREE
    assert median_hidden_reason(content, "win_rate") == HIDDEN_BELOW_THREE
    assert "It is shown only when at least 3 reps have a value" in content


def test_me_median_follows_minimum_group_size(client, scenario, team, member):
    scenario.minimum_group_size = 4
    scenario.save(update_fields=["minimum_group_size"])
    north_rep_add(scenario, team, "Cat Third")
    client.force_login(member.user)

    three = client.get("/o/acme/me/").content.decode()
    north_rep_add(scenario, team, "Dan Fourth")
    four = client.get("/o/acme/me/").content.decode()

    hidden_below_four = HIDDEN_BELOW_THREE.replace("3", "4")
    assert median_hidden_reason(three, "won_count") == hidden_below_four
    assert median_hidden_reason(three, "won_amount") == hidden_below_four
    # Four reps at the threshold: (2, 1, 0, 0) and (3,234.56, 765.44, 0, 0).
    assert cell(four, "data-median", "won_count") == "0.5"
    assert cell(four, "data-median", "won_amount") == "€382.72"
    assert "It is shown only when at least 4 reps have a value" in four


def test_me_fragment_for_htmx(client, scenario, member):
    client.force_login(member.user)

    response = client.get("/o/acme/me/?period=2017-Q1", headers={"HX-Request": "true"})

    content = response.content.decode()
    assert "<html" not in content
    assert cell(content, "data-kpi", "won_amount") == "€100.00"
    assert "HX-Request" in response["Vary"]


def test_me_median_excludes_undefined_values(client, scenario, team, stages, member):
    north_rep_add(scenario, team, "Cat Third", (stages, DealStatus.WON, "50.00", utc(4, 5), utc(5, 5)))
    north_rep_add(scenario, team, "Dan Fourth")
    client.force_login(member.user)

    content = client.get("/o/acme/me/").content.decode()

    # Win rates: Ann 2/3, Bob 1/3, Cat 1/1; Dan closed nothing and is left out. Counted as 0,
    # Dan would move the median to (1/3 + 2/3) / 2 = 50.0 %.
    assert cell(content, "data-median", "win_rate") == "66.7%"
    # Won counts (2, 1, 1, 0) include Dan's 0.
    assert cell(content, "data-median", "won_count") == "1"


def test_me_links_to_own_deals(client, scenario, member):
    client.force_login(member.user)

    content = html.unescape(client.get("/o/acme/me/").content.decode())

    assert f'href="/o/acme/deals/?grain=rep&subject={member.pk}"' in content
    assert f'href="/o/acme/deals/?period=2017-Q2&metric=won&grain=rep&subject={member.pk}"' in content


def test_me_without_team_explains_missing_median(client, scenario, south_rep, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/me/").content.decode()

    assert "You are not in a team, so there is no team median." in content


def test_me_for_every_role(client, scenario, admin_member, manager_member, member):
    for membership in (admin_member, manager_member, member):
        client.force_login(membership.user)
        assert client.get("/o/acme/me/").status_code == 200


# Cached fragments and visibility changes


def test_rep_manager_change_retires_cached_fragment(client, scenario, manager_member, south_rep):
    with scopes_disabled():
        south_rep.manager = manager_member
        south_rep.save(update_fields=["manager"])
    client.force_login(manager_member.user)
    url = "/o/acme/dashboard/?period=2017-Q2"
    before = client.get(url, headers={"HX-Request": "true"}).content.decode()

    with scopes_disabled():
        south_rep.manager = None
        south_rep.save(update_fields=["manager"])
    after = client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert "Sue South" in before
    assert "Sue South" not in after
    assert "Ann Member" in after


def test_team_manager_change_retires_cached_fragment(client, scenario, team, admin_member, manager_member, member, other_rep):
    with scopes_disabled():
        # Ann and Bob are visible through team North only, not through their manager field.
        for rep in (member, other_rep):
            rep.manager = None
            rep.save(update_fields=["manager"])
    client.force_login(manager_member.user)
    url = "/o/acme/dashboard/?period=2017-Q2"
    before = client.get(url, headers={"HX-Request": "true"}).content.decode()

    with scopes_disabled():
        team.manager = admin_member
        team.save(update_fields=["manager"])
    after = client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert "Ann Member" in before
    assert "Bob Other" in before
    assert "Ann Member" not in after
    assert "Bob Other" not in after


def test_unchanged_visibility_reuses_cached_fragment(client, scenario, manager_member, django_assert_num_queries):
    client.force_login(manager_member.user)
    url = "/o/acme/dashboard/?period=2017-Q2"
    client.get(url, headers={"HX-Request": "true"})

    # session, user, membership; visibility reads teams and members; no KPI read.
    with django_assert_num_queries(5):
        response = client.get(url, headers={"HX-Request": "true"})

    assert "Ann Member" in response.content.decode()


# Query counts


def test_dashboard_query_count_admin(client, scenario, admin_member, django_assert_num_queries):
    client.force_login(admin_member.user)

    # session, user, membership; periods; newest quarter with a close; teams; headline row; rep rows;
    # team rows; territory rows; monthly series.
    with django_assert_num_queries(11):
        client.get("/o/acme/dashboard/")


def test_dashboard_query_count_manager(client, scenario, manager_member, django_assert_num_queries):
    client.force_login(manager_member.user)

    # session, user, membership; visibility reads teams and members; periods; newest quarter with
    # a close; teams for the picker; then the headline row, the rep rows and the monthly series.
    with django_assert_num_queries(11):
        client.get("/o/acme/dashboard/")


def test_me_query_count(client, scenario, member, django_assert_num_queries):
    client.force_login(member.user)

    # session, user, membership; periods; newest quarter with a close; own row; team reps; their rows.
    with django_assert_num_queries(8):
        client.get("/o/acme/me/")


def test_picker_keeps_current_sort(client, scenario, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/dashboard/?sort=win_rate", headers={"HX-Request": "true"}).content.decode()

    assert '<input type="hidden" name="sort" value="win_rate" form="kpi-filters">' in content
