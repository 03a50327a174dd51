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
