"""The counts table of an import run lists its entities in a fixed order, whatever order the stored summary has."""

import re

import pytest
from django_scopes import scopes_disabled

from pipelines.models import ImportRun, ImportRunStatus

COUNTS = {"created": 1, "updated": 0, "unchanged": 0, "deleted": 0, "rejected": 0}
# PostgreSQL's jsonb returns keys shorter first (deals, teams, people, ...), SQLite in insertion order, so the
# test stores them in an order that neither the page's order nor jsonb's matches.
STORED_ORDER = ["territories", "deals", "products", "stage_changes", "people", "activities", "accounts", "teams"]


@pytest.mark.parametrize("status", [ImportRunStatus.PREVIEWED, ImportRunStatus.SUCCEEDED])
def test_counts_table_fixed_order(org, admin_client, status):
    with scopes_disabled():
        run = ImportRun.objects.create(
            organization=org,
            source="pipedrive",
            language="en",
            directory="imports/x",
            status=status,
            summary={"counts": {entity: COUNTS for entity in STORED_ORDER} | {"widgets": COUNTS}},
        )

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    rows = re.findall(r'<tr data-entity="([a-z_]+)">\s*<th scope="row">([^<]+)</th>', page)
    assert rows == [
        ("deals", "Deals"),
        ("stage_changes", "Stage changes"),
        ("activities", "Activities"),
        ("people", "People"),
        ("teams", "Teams"),
        ("territories", "Territories"),
        ("accounts", "Accounts"),
        ("products", "Products"),
        ("widgets", "widgets"),
    ]
