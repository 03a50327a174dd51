"""The Maven deal parser remembers valid dates, amounts and stage spellings by their text.

A remembered text must give the same values as parsing it again, whichever column,
stage or rate it meets, and an invalid text must be rejected on every line it appears.
"""

import datetime as dt
from decimal import Decimal

from django_scopes import scopes_disabled

from pipelines.importers import maven_deals
from pipelines.models import ExchangeRate
from tests.test_import_maven import (  # noqa: F401 - the export fixture
    PIPELINE_FILE,
    append_lines,
    deal,
    export,
    noon,
    run_import,
)


def errors_of(result) -> list[tuple[int, str, str, str]]:
    return [(error.line, error.column, error.value, str(error.reason)) for error in result.errors]


def test_same_bad_date_rejected_on_each_line(org, export):
    append_lines(
        export,
        PIPELINE_FILE,
        "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-02-30,2017-03-01,100",
        "BAD00002,Zane Levy,GTX Basic,Cancity,Won,2017-02-30,2017-03-01,100",
        "BAD00003,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,2017-02-30,100",
    )

    result = run_import(org, export)

    assert errors_of(result) == [
        (8, "engage_date", "2017-02-30", "invalid date; no such day, so check the day and the month"),
        (9, "engage_date", "2017-02-30", "invalid date; no such day, so check the day and the month"),
        (10, "close_date", "2017-02-30", "invalid date; no such day, so check the day and the month"),
    ]
    assert result.counts["deals"].rejected == 3
    assert result.counts["deals"].created == 6


def test_same_date_text_in_both_columns(org, export):
    # WON00001 closes on 2017-03-01, the day this deal is engaged.
    append_lines(export, PIPELINE_FILE, "WON00003,Zane Levy,GTX Basic,Cancity,Won,2017-03-01,2017-03-15,100")

    result = run_import(org, export)

    assert result.errors == []
    assert deal(org, "WON00001").closed_at == noon(2017, 3, 1)
    added = deal(org, "WON00003")
    assert added.created_at == noon(2017, 3, 1)
    assert added.closed_at == noon(2017, 3, 15)
    assert added.expected_close_on == dt.date(2017, 3, 15)


def test_same_amount_text_in_each_stage(org, export):
    append_lines(
        export,
        PIPELINE_FILE,
        "LOST0002,Zane Levy,GTX Basic,Cancity,Lost,2017-01-05,2017-03-15,588",
        "ENG00003,Zane Levy,GTX Basic,Cancity,Engaging,2017-06-10,,588",
        "ENG00004,Zane Levy,GTX Basic,Cancity,Engaging,2017-06-10,,",
    )

    result = run_import(org, export)

    assert result.errors == []
    for external_id in ("WON00001", "LOST0002", "ENG00003"):
        stated = deal(org, external_id)
        assert stated.amount == Decimal("588.00")
        assert stated.base_amount == Decimal("588.00")
        assert "amount_source" not in stated.custom_fields
    list_price = deal(org, "ENG00004")
    assert list_price.amount == Decimal("550.00")
    assert list_price.custom_fields["amount_source"] == "list_price"


def test_same_amount_text_converted_at_each_rate(org, export):
    with scopes_disabled():
        for valid_from, rate in ((dt.date(2017, 1, 1), "0.9"), (dt.date(2017, 4, 1), "0.95"), (dt.date(2018, 1, 1), "1.1")):
            ExchangeRate.objects.create(organization=org, currency="USD", valid_from=valid_from, rate=Decimal(rate))
    append_lines(
        export,
        PIPELINE_FILE,
        "WON00003,Zane Levy,GTX Basic,Cancity,Won,2017-02-01,2017-04-20,588",
        "ENG00003,Zane Levy,GTX Basic,Cancity,Engaging,2017-06-10,,588",
    )

    result = run_import(org, export, currency="USD")

    assert result.errors == []
    # 588 × 0.9 on the close date 2017-03-01, 588 × 0.95 on 2017-04-20, and an open
    # deal takes the rate of the import date 2018-01-15: 588 × 1.1.
    assert deal(org, "WON00001").base_amount == Decimal("529.20")
    assert deal(org, "WON00003").base_amount == Decimal("558.60")
    assert deal(org, "ENG00003").base_amount == Decimal("646.80")
    for external_id in ("WON00001", "WON00003", "ENG00003"):
        assert deal(org, external_id).amount == Decimal("588.00")


def test_same_bad_amount_rejected_on_each_line(org, export):
    append_lines(
        export,
        PIPELINE_FILE,
        "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,2017-03-01,-5",
        "BAD00002,Zane Levy,GTX Basic,Cancity,Lost,2017-01-01,2017-03-01,-5",
    )

    result = run_import(org, export)

    assert errors_of(result) == [
        (8, "close_value", "-5", "negative amount; amounts must be 0 or more"),
        (9, "close_value", "-5", "negative amount; amounts must be 0 or more"),
    ]


def test_stage_spellings_and_unknown_stage_lines(org, export):
    append_lines(
        export,
        PIPELINE_FILE,
        "WON00003,Zane Levy,GTX Basic,Cancity,won,2017-01-01,2017-03-01,100",
        "WON00004,Zane Levy,GTX Basic,Cancity,WON,2017-01-01,2017-03-01,100",
        "BAD00001,Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,2017-03-01,100",
        "BAD00002,Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,2017-03-01,100",
    )

    result = run_import(org, export)

    expected_stages = "unknown stage; expected one of: Prospecting, Engaging, Won, Lost"
    assert errors_of(result) == [
        (10, "deal_stage", "Closed", expected_stages),
        (11, "deal_stage", "Closed", expected_stages),
    ]
    for external_id in ("WON00003", "WON00004"):
        won = deal(org, external_id)
        assert won.stage.name == "Won"
        assert won.status == "won"


def test_values_right_beyond_remembered_texts(org, export, monkeypatch):
    """Past PARSED_TEXTS_MAX texts the parser parses each value again, with the same results."""
    monkeypatch.setattr(maven_deals, "PARSED_TEXTS_MAX", 1)

    result = run_import(org, export)

    assert result.errors == []
    assert result.counts["deals"].created == 6
    lost = deal(org, "LOST0001")
    assert lost.stage.name == "Lost"
    assert lost.amount == Decimal("0.00")
    assert lost.created_at == noon(2017, 1, 5)
    assert lost.closed_at == noon(2017, 3, 15)
    won = deal(org, "WON00002")
    assert won.stage.name == "Won"
    assert won.amount == Decimal("4700.00")
    assert won.created_at == noon(2017, 2, 1)
    assert won.closed_at == noon(2017, 4, 20)
