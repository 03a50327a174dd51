"""Times with a UTC offset outside -23:59 to +23:59 reject their row in every import path."""

import zoneinfo

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from pipelines.importers.base import RowRejected
from pipelines.importers.formats import parse_moment
from pipelines.models import Deal
from tests.import_helpers import export_folder, run_file_import
from tests.test_api import DEAL_RECORD, client_for, make_token

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "offset"),
    [
        ("2024-03-01T09:00:00+25:00", "+25:00"),
        ("2024-03-01T09:00:00+24:00", "+24:00"),
        ("2024-03-01 09:00 -2400", "-2400"),
        ("2024-03-01T09:00:00+05:75", "+05:75"),
    ],
)
def test_impossible_offset_rejected(value, offset):
    with pytest.raises(RowRejected) as raised:
        parse_moment(value, "created_at", time_zone=BERLIN)

    assert raised.value.column == "created_at"
    assert raised.value.value == value
    assert str(raised.value.reason) == f"invalid time zone offset {offset}; offsets run from -23:59 to +23:59"


def test_largest_offsets_accepted():
    east = parse_moment("2024-03-01T23:59:00+23:59", "created_at", time_zone=BERLIN)
    west = parse_moment("2024-03-01T00:00:00-23:59", "created_at", time_zone=BERLIN)

    assert east.isoformat() == "2024-03-01T00:00:00+00:00"
    assert west.isoformat() == "2024-03-01T23:59:00+00:00"


def test_salesforce_row_with_impossible_offset_rejected(org, tmp_path):
    folder = export_folder(
        tmp_path / "sf",
        {
            "opportunities.csv": (
                "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Created Date\n"
                "0065g00000OFF01,Offset,Lena Vogt,Prospecting,2025-01-01T10:00:00+25:00\n"
                "0065g00000OFF02,Fine,Lena Vogt,Prospecting,2025-01-01T10:00:00+01:00\n"
            )
        },
    )

    result = run_file_import(org, "salesforce", folder)

    assert [str(error) for error in result.errors] == [
        "opportunities.csv line 2, column Created Date, value '2025-01-01T10:00:00+25:00': "
        "invalid time zone offset +25:00; offsets run from -23:59 to +23:59"
    ]
    assert result.counts["deals"].created == 1


@pytest.mark.django_db
def test_api_deal_with_impossible_offset_rejected(org):
    _token, plain = make_token(org, "write")

    response = client_for(plain).post(
        reverse("api_deals"), {"records": [{**DEAL_RECORD, "created_at": "2025-01-01T10:00:00+25:00"}]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {
            "entity": "deals",
            "index": 0,
            "external_id": "D1",
            "field": "created_at",
            "value": "2025-01-01T10:00:00+25:00",
            "reason": "invalid time zone offset +25:00; offsets run from -23:59 to +23:59",
        }
    ]
    with scopes_disabled():
        assert not Deal.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_api_stage_change_with_impossible_offset_rejected(org):
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    client.post(reverse("api_deals"), {"records": [DEAL_RECORD]}, format="json")

    response = client.post(
        reverse("api_stage_changes"),
        {"records": [{"deal": "D1", "stage": "Won", "changed_at": "2017-02-01T10:00:00+24:00"}]},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["counts"]["stage_changes"]["rejected"] == 1
    assert [(row["field"], row["value"], row["reason"]) for row in body["rejected"]] == [
        ("changed_at", "2017-02-01T10:00:00+24:00", "invalid time zone offset +24:00; offsets run from -23:59 to +23:59")
    ]
