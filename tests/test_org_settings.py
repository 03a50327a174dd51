"""Organization settings: the service, configure_organization and the admin page."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django_scopes import scope, scopes_disabled

from goals.models import Quota
from goals.services import organization_settings_update
from spm.models import AuditLog, Organization


def test_fiscal_calendar_change_keeps_quotas_and_recomputes(org, member, django_capture_on_commit_callbacks):
    with scopes_disabled():
        Quota.objects.create(
            organization=org, level="rep", membership=member, period_kind="quarter",
            period_start=dt.date(2025, 1, 1), metric="won_revenue", target=Decimal(9000),
        )  # fmt: skip

    with (
        scope(organization=org),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        changed = organization_settings_update(organization=org, actor=None, changes={"fiscal_year_start_month": 2})

    assert changed == ["fiscal_year_start_month"]
    delay.assert_called_once_with(organization_id=org.pk)
    with scopes_disabled():
        assert Quota.objects.get(organization=org).period_start == dt.date(2025, 1, 1)
        entry = AuditLog.objects.get(organization=org, action="organization.settings_changed")
    assert entry.before == {"fiscal_year_start_month": 1}
    assert entry.after == {"fiscal_year_start_month": 2}


def test_currency_change_does_not_recompute(org, django_capture_on_commit_callbacks):
    with (
        scope(organization=org),
        mock.patch("dashboards.tasks.kpi_snapshot_recompute.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        organization_settings_update(organization=org, actor=None, changes={"currency": "chf"})

    delay.assert_not_called()
    org.refresh_from_db()
    assert org.currency == "CHF"


def test_invalid_time_zone_rejected_and_unchanged(org):
    with scope(organization=org), pytest.raises(ValidationError, match="Mars/Olympus"):
        organization_settings_update(organization=org, actor=None, changes={"time_zone": "Mars/Olympus"})

    org.refresh_from_db()
    assert org.time_zone == "Europe/Berlin"


def test_configure_organization_command(org, capsys):
    call_command(
        "configure_organization", "--org", "acme", "--fiscal-year-start-month", "4",
        "--time-zone", "Europe/Vienna", "--currency", "CHF", "--language", "en",
    )  # fmt: skip

    org.refresh_from_db()
    assert org.fiscal_year_start_month == 4
    assert org.time_zone == "Europe/Vienna"
    assert org.currency == "CHF"
    assert org.language == "en"
    # The output uses the language the organization had before the change.
    assert capsys.readouterr().out == (
        "Startmonat des Geschäftsjahrs: April\n"
        "Zeitzone: Europe/Vienna\n"
        "Basiswährung: CHF\n"
        "Standardsprache: Englisch\n"
    )


def test_configure_organization_command_in_english(org_in_english, capsys):
    call_command(
        "configure_organization", "--org", "acme", "--fiscal-year-start-month", "3", "--language", "de",
    )  # fmt: skip

    assert capsys.readouterr().out == "Fiscal year start month: March\nDefault language: German\n"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fiscal-year-start-month", "13", "--fiscal-year-start-month 13 is invalid; use a month number from 1"),
        ("--time-zone", "Berlin", "Berlin is not a known time zone; use an IANA name such as Europe/Berlin."),
        ("--currency", "EURO", "EURO is not an ISO 4217 currency code; use a code such as EUR"),
    ],
)
def test_configure_organization_rejects_invalid(org_in_english, option, value, message):
    with pytest.raises(CommandError) as error:
        call_command("configure_organization", "--org", "acme", option, value)

    assert message in str(error.value)
    org_in_english.refresh_from_db()
    assert org_in_english.fiscal_year_start_month == 1
    assert org_in_english.currency == "EUR"


def test_configure_organization_without_options(org_in_english):
    with pytest.raises(CommandError, match="Nothing to change"):
        call_command("configure_organization", "--org", "acme")


def test_configure_organization_unknown_org(db):
    with pytest.raises(CommandError, match="Organization nobody not found"):
        call_command("configure_organization", "--org", "nobody", "--language", "en")
    assert not Organization.objects.filter(slug="nobody").exists()
