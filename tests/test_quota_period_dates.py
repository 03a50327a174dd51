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

    assert raised.value.messages == ["02/15/2025 does not start a fiscal quarter; the period containing it starts on 01/01/2025."]
