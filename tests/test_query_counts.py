"""Query counts of the dashboard and the deal list do not grow with the number of reps or deals.

Each test renders a view with a small book, counts its queries, grows the
book, and expects the same count: a query per row (N+1) would add queries.
The cached htmx fragment of the dashboard needs no KPI query at all.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from pipelines.models import StageKind
from spm.models import Role
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    TeamFactory,
    TerritoryFactory,
    UserFactory,
)


@pytest.fixture
def book(org):
    """Adds `count` reps with a won, a lost and an open deal each, in teams and territories; recomputes."""
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        stages = {kind: StageFactory(pipeline=pipeline, name=kind, kind=kind) for kind in StageKind.values}
        team = TeamFactory(organization=org, name="North")
        territory = TerritoryFactory(organization=org, name="DACH")
    added = []

    def grow(count: int):
        with scopes_disabled():
            for _ in range(count):
                index = len(added)
                rep = MembershipFactory(
                    organization=org, role=Role.REP, team=team, territory=territory, user=UserFactory(name=f"Rep {index:03d}")
                )
                for kind, closed in (("won", True), ("lost", True), ("open", False)):
                    DealFactory(
                        owner=rep,
                        stage=stages[kind],
                        status=kind,
                        territory=territory,
                        amount=Decimal("100.00") + index,
                        created_at=dt.datetime(2017, 1, 5, 12, tzinfo=dt.timezone.utc),
                        closed_at=dt.datetime(2017, 2, 5 + index % 20, 12, tzinfo=dt.timezone.utc) if closed else None,
                    )
                added.append(rep)
        kpi_snapshot_recompute(organization=org)

    return grow


def queries_of(client, url, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_dashboard_queries_flat_in_reps(client, org, admin_member, book, settings):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(2)
    few = queries_of(client, url)

    book(10)
    many = queries_of(client, url)

    assert many == few


def test_fragment_queries_flat_in_reps(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1&sort=rep"
    book(2)
    few = queries_of(client, url, HTTP_HX_REQUEST="true")

    book(10)
    many = queries_of(client, url, HTTP_HX_REQUEST="true")

    assert many == few


def test_cached_fragment_reads_no_snapshot(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(3)
    queries_of(client, url, HTTP_HX_REQUEST="true")

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert not [query for query in captured.captured_queries if "dashboards_kpisnapshot" in query["sql"]]


def test_recompute_refreshes_cached_fragment(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(1)
    before = client.get(url, HTTP_HX_REQUEST="true").content

    book(1)
    after = client.get(url, HTTP_HX_REQUEST="true").content

    assert b"Rep 001" not in before
    assert b"Rep 001" in after


def test_deal_list_queries_flat_in_deals(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/deals/"
    book(2)
    few = queries_of(client, url)

    book(15)
    many = queries_of(client, url)

    assert many == few


def test_deal_list_pages_fifty_deals(client, org, admin_member, book):
    client.force_login(admin_member.user)
    book(20)

    response = client.get("/o/acme/deals/?page=2")

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 10


# Cached fragments, cached totals and their invalidation by a stage move


def kpi_snapshot_queries(captured) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if "dashboards_kpisnapshot" in query["sql"]]


def test_dashboard_page_reuses_cached_fragment(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(3)
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)

    assert response.status_code == 200
    assert fragment in response.content.decode()
    # session, user, organization and membership, the period list, the team list.
    assert len(captured.captured_queries) == 5
    # The period picker's list is the only KPI read.
    assert len(kpi_snapshot_queries(captured)) == 1


def test_cached_fragment_query_count(client, org, admin_member, book):
    client.force_login(admin_member.user)
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(3)
    client.get(url)

    with CaptureQueriesContext(connection) as captured:
        client.get(url, HTTP_HX_REQUEST="true")

    # session, user, organization and membership: no view query at all.
    assert len(captured.captured_queries) == 3


def test_admins_share_cached_fragment(client, org, admin_member, book):
    with scopes_disabled():
        second_admin = MembershipFactory(organization=org, role=Role.ADMIN)
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(3)
    client.force_login(admin_member.user)
    client.get(url, HTTP_HX_REQUEST="true")
    client.force_login(second_admin.user)

    with CaptureQueriesContext(connection) as captured:
        client.get(url, HTTP_HX_REQUEST="true")

    assert kpi_snapshot_queries(captured) == []


def test_manager_fragment_not_served_to_admin(client, org, admin_member, book):
    url = "/o/acme/dashboard/?period=2017-Q1"
    book(2)
    with scopes_disabled():
        manager = MembershipFactory(organization=org, role=Role.MANAGER)
    client.force_login(manager.user)
    manager_html = client.get(url, HTTP_HX_REQUEST="true").content
    client.force_login(admin_member.user)

    admin_html = client.get(url, HTTP_HX_REQUEST="true").content

    assert b"Rep 000" not in manager_html
    assert b"Rep 000" in admin_html


def deal_aggregate_queries(captured) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if 'COUNT("pipelines_deal"."id")' in query["sql"]]


def test_deal_list_totals_cached(client, org, admin_member, book):
    client.force_login(admin_member.user)
    book(4)
    with CaptureQueriesContext(connection) as first:
        client.get("/o/acme/deals/?status=won")

    with CaptureQueriesContext(connection) as second:
        response = client.get("/o/acme/deals/?status=won&page=1&sort=-amount")

    assert len(deal_aggregate_queries(first)) == 1
    assert deal_aggregate_queries(second) == []
    assert response.context["totals"].count == 4
    assert response.context["totals"].base_amount == Decimal("406.00")


def test_deal_list_totals_per_filter(client, org, admin_member, book):
    client.force_login(admin_member.user)
    book(4)
    client.get("/o/acme/deals/?status=won")

    response = client.get("/o/acme/deals/?status=lost&q=nothing-matches")

    assert response.context["totals"].count == 0


def test_stage_move_refreshes_dashboard_and_totals(
    client, org, admin_member, book, django_capture_on_commit_callbacks
):
    from django_scopes import scope

    from pipelines.models import Deal, Stage
    from pipelines.services import deal_move_stage

    client.force_login(admin_member.user)
    book(2)
    url = "/o/acme/dashboard/?period=2017-Q1"
    before = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    totals_before = client.get("/o/acme/deals/?status=won").context["totals"]
    with scope(organization=org):
        deal = Deal.objects.get(status="open", owner__user__name="Rep 000")
        won = Stage.objects.get(kind="won")
        with django_capture_on_commit_callbacks(execute=True):
            deal_move_stage(deal=deal, to_stage=won, changed_at=dt.datetime(2017, 2, 10, 12, tzinfo=dt.timezone.utc))

    after = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    totals_after = client.get("/o/acme/deals/?status=won").context["totals"]

    assert won_count_of(before) == "2"
    assert won_count_of(after) == "3"
    assert (totals_before.count, totals_after.count) == (2, 3)


def won_count_of(html: str) -> str:
    """The headline won-deal count of a dashboard fragment, as displayed."""
    import re

    match = re.search(r'data-kpi="won_count">\s*(?:<a [^>]*>)?([^<]+)<', html)
    assert match is not None, "no won_count tile in the fragment"
    return match[1].strip()


def test_deal_list_page_keeps_sort_order(client, org, admin_member, book):
    from pipelines.models import Deal

    client.force_login(admin_member.user)
    book(20)
    with scopes_disabled():
        expected = list(Deal.objects.filter(organization=org).order_by("-base_amount", "-id").values_list("pk", flat=True))

    response = client.get("/o/acme/deals/?sort=-amount&page=2")

    assert [deal.pk for deal in response.context["page"].object_list] == expected[50:60]


def test_committed_move_retires_totals_not_fragment(
    client, org, admin_member, book, django_capture_on_commit_callbacks
):
    from unittest import mock

    from django_scopes import scope

    from pipelines.models import Deal, Stage
    from pipelines.services import deal_move_stage

    client.force_login(admin_member.user)
    book(2)
    url = "/o/acme/dashboard/?period=2017-Q1"
    client.get(url, HTTP_HX_REQUEST="true")
    totals_before = client.get("/o/acme/deals/?status=won").context["totals"]
    # The recompute task is not run: only what the commit itself does is checked.
    with scope(organization=org), mock.patch("dashboards.tasks.kpi_snapshot_recompute_deals"):
        deal = Deal.objects.get(status="open", owner__user__name="Rep 000")
        won = Stage.objects.get(kind="won")
        with django_capture_on_commit_callbacks(execute=True):
            deal_move_stage(deal=deal, to_stage=won, changed_at=dt.datetime(2017, 2, 10, 12, tzinfo=dt.timezone.utc))

    totals_after = client.get("/o/acme/deals/?status=won").context["totals"]
    with CaptureQueriesContext(connection) as captured:
        client.get(url, HTTP_HX_REQUEST="true")

    assert (totals_before.count, totals_after.count) == (2, 3)
    assert kpi_snapshot_queries(captured) == []
