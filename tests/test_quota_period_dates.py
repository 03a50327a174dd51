"""Dates in the rejection of a quota period that does not start a fiscal period."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from goals.services import quota_period_check


@pytest.mark.parametrize(
    ("language", "day", "start"),
    [("en", "02/15/2025", "01/01/2025"), ("de", "15.02.2025", "01.01.2025")],
)
def test_period_check_dates_localized(org, language, day, start):
    """15 February 2025 lies in the fiscal quarter that starts on 1 January, because the fiscal year starts in January."""
    with translation.override(language), pytest.raises(ValidationError) as raised:
        quota_period_check(organization=org, period_kind="quarter", period_start=dt.date(2025, 2, 15))

    [message] = raised.value.messages
    assert message.startswith(f"{day} ")
    assert message.endswith(f" {start}.")
    assert "2025-" not in message


def test_period_check_message_english(org):
    with translation.override("en"), pytest.raises(ValidationError) as raised:
        quota_period_check(organization=org, period_kind="quarter", period_start=dt.date(2025, 2, 15))

    assert raised.value.messages == [
        "02/15/2025 does not start a fiscal quarter; the fiscal quarter containing it starts on 01/01/2025."
    ]


GERMAN_MESSAGES = {
    "year": "01.03.2025 ist nicht der erste Tag eines Geschäftsjahres; das Geschäftsjahr, das diesen Tag enthält,"
    " beginnt am 01.01.2025.",
    "quarter": "15.02.2025 ist nicht der erste Tag eines Geschäftsquartals; das Geschäftsquartal, das diesen Tag"
    " enthält, beginnt am 01.01.2025.",
    "month": "15.02.2025 ist nicht der erste Tag eines Geschäftsmonats; der Geschäftsmonat, der diesen Tag enthält,"
    " beginnt am 01.02.2025.",
}


@pytest.mark.parametrize(
    ("kind", "day"), [("year", dt.date(2025, 3, 1)), ("quarter", dt.date(2025, 2, 15)), ("month", dt.date(2025, 2, 15))]
)
def test_period_check_german_names_kind(org, kind, day):
    """The German message names the kind of period in German, not the code (quarter)."""
    with translation.override("de"), pytest.raises(ValidationError) as raised:
        quota_period_check(organization=org, period_kind=kind, period_start=day)

    assert raised.value.messages == [GERMAN_MESSAGES[kind]]
