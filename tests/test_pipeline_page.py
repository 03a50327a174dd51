"""Pipeline analytics page, activity page, exports and stage settings: roles, htmx, drill-down, query counts.

Data (Acme, Europe/Berlin, Q2 2017, times 12:00 UTC), pipeline Sales with
Lead(1), Qualified(2), Proposal(3), Negotiation(4), Won, Lost:
- member (rep of manager_member's team North): A Lead 04-03 → Proposal
  04-20 → Won 05-15 (1,000.00); B Lead 04-05 → Qualified 04-10 (open).
- south_rep (team South, not the manager's): C Lead 04-07 → Lost 04-30.
Funnel Q2 for the admin: Lead 3, Qualified 2 (A, B), Proposal 1 (A), Won 1.
For the manager (member's deals only): Lead 2, Qualified 2, Proposal 1.
For the rep: the same as the manager, since both deals are the rep's.
"""

import html
import re

import pytest
from django_scopes import scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from spm.models import AuditLog, Role
from tests.analytics_data import add_activity, deal_with_history, sales_stages, utc
from tests.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture
def south_rep(org):
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South")
        return MembershipFactory(organization=org, role=Role.REP, team=south, user=UserFactory(email="s@acme.example"))


@pytest.fixture
def stages(org):
    return sales_stages(org, thresholds={"Lead": 10})


@pytest.fixture
def data(org, admin_member, manager_member, member, south_rep, stages):
    deals = {
        "A": deal_with_history(member, stages, [("Lead", utc(4, 3)), ("Proposal", utc(4, 20)), ("Won", utc(5, 15))]),
        "B": deal_with_history(member, stages, [("Lead", utc(4, 5)), ("Qualified", utc(4, 10))]),
        "C": deal_with_history(south_rep, stages, [("Lead", utc(4, 7)), ("Lost", utc(4, 30))]),
    }
    add_activity(member, utc(4, 4), deal=deals["A"], subject="=HYPERLINK(\"x\")")
    add_activity(member, utc(4, 6), deal=deals["B"])
    kpi_snapshot_recompute(organization=org)
    return deals


def funnel_counts(content: str) -> list[str]:
    table = re.search(r'data-table="funnel">(.*?)</table>', content, re.S).group(1)
    return re.findall(r'<td class="num"><a href="[^"]+">([^<]+)</a>', table)


def funnel_links(content: str) -> list[str]:
    table = re.search(r'data-table="funnel">(.*?)</table>', content, re.S).group(1)
    return [html.unescape(url) for url in re.findall(r'<td class="num"><a href="([^"]+)">', table)]


def test_pipeline_full_page_for_admin(client, data, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/?period=2017-Q2")

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" in content
    assert funnel_counts(content) == ["3", "2", "1", "1", "1"]
    assert response["Vary"].count("HX-Request") == 1
    assert 'data-plotly-figure="funnel-chart"' in content


def test_pipeline_fragment_for_htmx(client, data, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/?period=2017-Q2", HTTP_HX_REQUEST="true")

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="kpi-filters"' not in content
    assert funnel_counts(content) == ["3", "2", "1", "1", "1"]


@pytest.mark.parametrize("path", ["/o/acme/pipeline/?period=2017-Q2", "/o/acme/pipeline/activities/?period=2017-Q2"])
def test_fragment_not_written_to_cache(client, data, admin_member, monkeypatch, path):
    from unittest import mock

    # The pipeline and activity pages read deals and activities directly, which the KPI data
    # version in the fragment cache key does not follow, so their fragments must not be cached.
    fragment_cache = mock.Mock()
    monkeypatch.setattr("dashboards.views.cache", fragment_cache)
    client.force_login(admin_member.user)

    response = client.get(path, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert fragment_cache.mock_calls == []


def test_manager_sees_only_visible_deals(client, data, manager_member):
    client.force_login(manager_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-Q2").content.decode()

    assert funnel_counts(content) == ["2", "2", "1", "1", "1"]


def test_rep_sees_own_pipeline(client, data, member):
    client.force_login(member.user)

    response = client.get("/o/acme/pipeline/?period=2017-Q2")

    assert response.status_code == 200
    assert funnel_counts(response.content.decode()) == ["2", "2", "1", "1", "1"]


def test_other_org_member_gets_404(client, data, other_org_admin):
    client.force_login(other_org_admin.user)

    assert client.get("/o/acme/pipeline/").status_code == 404
    assert client.get("/o/acme/pipeline/activities/").status_code == 404
    assert client.get("/o/acme/pipeline/export/?table=funnel&format=csv").status_code == 404


def test_funnel_drilldown_count_equals_number(client, data, manager_member):
    client.force_login(manager_member.user)
    content = client.get("/o/acme/pipeline/?period=2017-Q2").content.decode()

    lead_url = funnel_links(content)[0]
    listed = client.get(lead_url).content.decode()

    errors = re.findall(r'<li>(.*?)</li>', listed.split('alert-danger', 1)[-1])[:3] if "alert-danger" in listed else []
    assert "analysis=funnel" in lead_url
    assert errors == []
    assert re.search(r"data-totals>\s*2 deals", listed)
    assert "Funnel: Lead" in listed


def test_waterfall_identity_shown(client, data, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-Q2").content.decode()

    # Start 0 + created 3 − won 1 − lost 1 − other 0 = end 1.
    identity = re.search(r"data-identity>(.*?)</p>", content, re.S).group(1)
    assert "0 + 3 − 1 − 1 − 0 = 1" in " ".join(identity.split())
    assert "✓" in identity


def test_as_of_before_snapshots_says_reconstructed(client, data, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-Q2&as_of=2017-04-08").content.decode()

    assert "data-reconstructed" in content


def test_invalid_range_shows_message(client, data, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-05-01..2017-04-01").content.decode()

    assert "the end date is before the start date" in content


def test_range_period_accepted(client, data, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-04-01..2017-04-06").content.decode()

    # Created 04-01 to 04-06: A (04-03) and B (04-05).
    assert funnel_counts(content)[0] == "2"


def test_pipeline_query_count(client, data, admin_member, django_assert_num_queries):
    client.force_login(admin_member.user)
    client.get("/o/acme/pipeline/?period=2017-Q2")

    with django_assert_num_queries(23):
        client.get("/o/acme/pipeline/?period=2017-Q2")


def test_activity_page_full_and_fragment(client, data, admin_member):
    client.force_login(admin_member.user)

    full = client.get("/o/acme/pipeline/activities/?period=2017-Q2")
    fragment = client.get("/o/acme/pipeline/activities/?period=2017-Q2", HTTP_HX_REQUEST="true")

    total = re.search(r"<tr data-total>(.*?)</tr>", full.content.decode(), re.S).group(1)
    # 2 activities ÷ 1 won deal = 2.0.
    assert re.findall(r'<td class="num">(?:<a href="[^"]+">)?([^<]+)', total) == ["2", "1", "2.0"]
    assert "<html" in full.content.decode()
    assert "<html" not in fragment.content.decode()
    assert "HX-Request" in fragment["Vary"]


def test_activity_page_query_count(client, data, admin_member, django_assert_num_queries):
    client.force_login(admin_member.user)
    client.get("/o/acme/pipeline/activities/?period=2017-Q2")

    with django_assert_num_queries(12):
        client.get("/o/acme/pipeline/activities/?period=2017-Q2")


def test_export_csv_escapes_formula(client, data, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/?table=activity_feed&format=csv&period=2017-Q2")

    text = b"".join(response.streaming_content).decode("utf-8")
    assert response.status_code == 200
    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text


def test_export_xlsx_of_funnel(client, data, admin_member):
    import io

    from openpyxl import load_workbook

    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/?table=funnel&format=xlsx&period=2017-Q2")

    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [cell.value for cell in sheet[1]] == ["Stage", "Deals reached", "Conversion to next step"]
    # The conversion 2/3 is rounded to 4 places, like every rate in an export.
    assert [cell.value for cell in sheet[2]] == ["Lead", 3, 0.6667]


def test_export_unknown_table_is_404(client, data, admin_member):
    client.force_login(admin_member.user)

    assert client.get("/o/acme/pipeline/export/?table=secrets").status_code == 404
    assert client.get("/o/acme/pipeline/export/?table=funnel&format=pdf").status_code == 404


def test_stage_settings_only_for_admins(client, data, manager_member, member):
    for person in (manager_member, member):
        client.force_login(person.user)
        assert client.get("/o/acme/settings/stages/").status_code == 404
        assert client.post("/o/acme/settings/stages/", {}).status_code == 404


def test_stage_settings_saves_and_audits(client, data, admin_member, stages):
    client.force_login(admin_member.user)
    ordered = ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    post = {"form-TOTAL_FORMS": "6", "form-INITIAL_FORMS": "6"}
    for index, name in enumerate(ordered):
        post[f"form-{index}-stage_id"] = str(stages[name].pk)
        post[f"form-{index}-stalled_after_days"] = {"Lead": "10", "Qualified": "21"}.get(name, "")

    response = client.post("/o/acme/settings/stages/", post)

    assert response.status_code == 302
    with scopes_disabled():
        stages["Qualified"].refresh_from_db()
        entries = list(AuditLog.objects.filter(action="stage.stall_threshold_changed"))
    assert stages["Qualified"].stalled_after_days == 21
    assert len(entries) == 1
    assert entries[0].before == {"stalled_after_days": None}
    assert entries[0].after == {"stalled_after_days": 21}


def test_drilldown_keys_not_localized(client, org, admin_member, member):
    # Ids above 999 must not get a thousands separator (USE_THOUSAND_SEPARATOR is on).
    from pipelines.models import StageKind
    from tests.factories import PipelineFactory, StageFactory

    with scopes_disabled():
        pipeline = PipelineFactory(organization=org, name="Big")
        stages = {
            "Lead": StageFactory(id=4321, pipeline=pipeline, name="Lead", order=1),
            "Won": StageFactory(id=4322, pipeline=pipeline, name="Won", order=2, kind=StageKind.WON),
        }
    deal_with_history(member, stages, [("Lead", utc(4, 3))])
    kpi_snapshot_recompute(organization=org)
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-Q2").content.decode()
    lead_url = funnel_links(content)[0]
    listed = client.get(lead_url).content.decode()

    assert "key=4321&" in lead_url
    assert re.search(r"data-totals>\s*1 deal,", listed)
