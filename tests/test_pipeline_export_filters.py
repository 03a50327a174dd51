"""Pipeline exports reject invalid filters with 400 instead of exporting the default selection."""

import pytest

from tests.analytics_data import deal_with_history, sales_stages, utc

CHOICES = "product, sector, territory, size_band, lost_reason"


@pytest.fixture
def data(org, member):
    stages = sales_stages(org)
    return deal_with_history(member, stages, [("Lead", utc(10, 3)), ("Won", utc(11, 20))], amount="500.00")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", f"Invalid dimension 'size'; use one of: {CHOICES}.\n"),
        ("de", f"Ungültiger Wert 'size' für dimension; zulässig sind: {CHOICES}.\n"),
    ],
)
def test_unknown_dimension_is_400(client, data, admin_member, language, expected):
    client.force_login(admin_member.user)

    response = client.get(
        "/o/acme/pipeline/export/?period=2017-Q4&dimension=size&table=winloss", HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == expected


@pytest.mark.parametrize("table", ["winloss", "funnel", "activity_weekly"])
def test_unknown_dimension_rejects_every_table(client, data, admin_member, table):
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/pipeline/export/?period=2017-Q4&dimension=size&table={table}")

    assert response.status_code == 400


def test_known_dimension_exports(client, data, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/?period=2017-Q4&dimension=size_band&table=winloss", HTTP_ACCEPT_LANGUAGE="en")
    text = b"".join(response.streaming_content).decode("utf-8-sig")

    assert response.status_code == 200
    assert text.splitlines()[0].startswith("Deal size,Won deals")


def test_page_shows_dimension_message(client, data, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-Q4&dimension=size", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f"Invalid dimension &#x27;size&#x27;; use one of: {CHOICES}." in content
