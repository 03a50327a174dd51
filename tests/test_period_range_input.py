"""Date ranges typed into the pipeline pages in the notation each language shows them."""

import datetime as dt

import pytest
from django.utils import translation

from dashboards.analytics.periods import parse_period_or_range


def parsed_label(text: str, language: str) -> str:
    with translation.override(language):
        return parse_period_or_range(text, 1).label


def range_error(text: str, language: str) -> str:
    with translation.override(language), pytest.raises(ValueError) as raised:
        parse_period_or_range(text, 1)
    return str(raised.value)


@pytest.mark.parametrize(
    "text",
    ["10/01/2017..12/31/2017", "10/01/2017 – 12/31/2017", "10/1/2017..2017-12-31", "01.10.2017..12/31/2017"],
)
def test_english_range_reads_month_first(text):
    assert parsed_label(text, "en") == "2017-10-01..2017-12-31"


def test_german_range_accepts_displayed_form():
    assert parsed_label("01.10.2017 – 31.12.2017", "de") == "2017-10-01..2017-12-31"


def test_english_slashed_range_end_is_inclusive():
    with translation.override("en"):
        period = parse_period_or_range("10/01/2017..12/31/2017", 1)

    assert (period.start, period.end) == (dt.date(2017, 10, 1), dt.date(2018, 1, 1))


def test_english_impossible_slashed_day_rejected():
    assert range_error("02/30/2017..03/31/2017", "en") == (
        "Invalid date range '02/30/2017..03/31/2017': 02/30/2017 is not a calendar date."
    )


def test_invalid_range_lists_english_forms():
    assert range_error("10-01-2017..12-31-2017", "en") == (
        "Invalid date range '10-01-2017..12-31-2017'; use YYYY-MM-DD..YYYY-MM-DD, MM/DD/YYYY..MM/DD/YYYY or "
        "DD.MM.YYYY..DD.MM.YYYY, e.g. 2017-01-01..2017-03-31."
    )


def test_german_rejects_slashed_range_listing_german_forms():
    assert range_error("10/01/2017..12/31/2017", "de") == (
        "Ungültiger Datumsbereich '10/01/2017..12/31/2017'; zulässig sind: JJJJ-MM-TT..JJJJ-MM-TT und "
        "TT.MM.JJJJ..TT.MM.JJJJ, z. B. 01.01.2017..31.03.2017."
    )


def test_pipeline_page_accepts_english_range(admin_client, org):
    response = admin_client.get("/o/acme/pipeline/", {"period": "10/01/2017..12/31/2017"}, HTTP_ACCEPT_LANGUAGE="en")

    content = response.content.decode()
    assert response.status_code == 200
    assert "Invalid date range" not in content
    assert '<option value="2017-10-01..2017-12-31" data-start="2017-10-01" selected>10/01/2017 – 12/31/2017</option>' in content
