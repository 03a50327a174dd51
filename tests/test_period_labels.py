"""Periods shown to people: human names instead of stored labels, and date ranges in the reader's notation."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django_scopes import scope, scopes_disabled

from coaching.skills.models import Indicator
from coaching.skills.services import plan_create, plan_goal_add
from dashboards.analytics.periods import parse_period_or_range
from dashboards.templatetags.spm_format import period_name
from spm.fiscal import parse_period


def _client(membership, language) -> Client:
    with scopes_disabled():
        membership.user.language = language
        membership.user.save(update_fields=["language"])
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("2017-04-01..2017-04-06", "2017-04-01..2017-04-06"),
        ("01.04.2017..06.04.2017", "2017-04-01..2017-04-06"),
        ("1.4.2017 .. 6.4.2017", "2017-04-01..2017-04-06"),
        ("01.04.2017..2017-04-06", "2017-04-01..2017-04-06"),
    ],
)
def test_range_parses_iso_and_german_days(text, label):
    period = parse_period_or_range(text, 1)

    assert period.label == label
    assert period.start == dt.date(2017, 4, 1)
    assert period.end == dt.date(2017, 4, 7)


def test_german_range_with_impossible_day_rejected():
    with pytest.raises(ValueError, match="30.02.2017 is not a calendar date"):
        parse_period_or_range("30.02.2017..31.03.2017", 1)


def test_range_names_localized():
    period = parse_period_or_range("2017-04-01..2017-04-06", 1)

    with translation.override("de"):
        assert period_name(period) == "01.04.2017 – 06.04.2017"
    with translation.override("en"):
        assert period_name(period) == "04/01/2017 – 04/06/2017"


def test_quarter_name_in_german():
    with translation.override("de"):
        assert period_name(parse_period("2017-Q1", 1)) == "Q1 GJ 2017"


def test_pipeline_range_field_in_german(org, admin_member):
    client = _client(admin_member, "de")

    content = client.get("/o/acme/pipeline/?period=01.04.2017..06.04.2017").content.decode()

    assert 'placeholder="01.01.2017..31.03.2017"' in content
    assert 'value="01.04.2017..06.04.2017"' in content
    assert '<option value="2017-04-01..2017-04-06" data-start="2017-04-01" selected>01.04.2017 – 06.04.2017</option>' in content
    assert "2017-01-01..2017-03-31" not in content


def test_pipeline_range_field_in_english(org, admin_member):
    client = _client(admin_member, "en")

    content = client.get("/o/acme/pipeline/?period=2017-04-01..2017-04-06").content.decode()

    assert 'placeholder="2017-01-01..2017-03-31"' in content
    assert 'value="2017-04-01..2017-04-06"' in content


def test_plan_page_names_goal_periods(org, manager_member, member):
    with scope(organization=org):
        plan = plan_create(organization=org, creator=manager_member, member=member, title="Close more")
        plan_goal_add(
            plan=plan,
            editor=manager_member,
            indicator=Indicator.ACTIVITY_COUNT,
            stage=None,
            baseline_period_label="2017-Q1",
            period_label="2017-04-01..2017-06-30",
            target_value=Decimal(5),
        )
    client = _client(manager_member, "de")

    content = client.get(reverse("plan_detail", kwargs={"org_slug": org.slug, "plan_id": plan.pk})).content.decode()

    assert "(Q1 GJ 2017)" in content
    assert "(01.04.2017 – 30.06.2017)" in content
    assert "(2017-Q1)" not in content
