"""Organization settings: the service, configure_organization and the admin page."""

import datetime as dt
import zoneinfo
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals.forms import OrganizationSettingsForm
from goals.models import ForecastSubmission, Quota, QuotaTemplate
from goals.services import organization_settings_update
from pipelines.models import Deal, ExchangeRate
from spm.models import AuditLog, Organization, validate_time_zone
from tests.factories import DealFactory

CURRENCY_LOCKED_EN = (
    "The base currency cannot be changed from EUR to USD because the organization already has deals, quotas, "
    "forecasts or exchange rates in EUR, and their amounts would not be converted. The base currency can only be "
    "set before the first import. To work in USD, create a new organization or contact support."
)
CURRENCY_LOCKED_DE = (
    "Die Basiswährung kann nicht von EUR auf USD geändert werden, weil die Organisation bereits Deals, Quotas, "
    "Forecasts oder Wechselkurse in EUR hat und deren Beträge nicht umgerechnet würden. Die Basiswährung lässt "
    "sich nur vor dem ersten Import festlegen. Um in USD zu arbeiten, legen Sie eine neue Organisation an oder "
    "wenden Sie sich an den Support."
)
SETTINGS_POST = {
    "fiscal_year_start_month": 1, "time_zone": "Europe/Berlin", "currency": "USD", "language": "de",
    "attainment_warning_percent": "70.0", "leaderboard_privacy": "names", "minimum_group_size": 0,
}  # fmt: skip


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
        (
            "--time-zone",
            "Berlin",
            "Berlin is not a supported time zone; use an IANA name of the form Region/City, such as Europe/Berlin, "
            "or UTC.",
        ),
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


def _deal(org, member, stages):
    DealFactory(owner=member, stage=stages["open"], amount=Decimal("1500.00"))


def _deleted_deal(org, member, stages):
    DealFactory(
        owner=member, stage=stages["open"],
        deleted_at=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
    )  # fmt: skip


def _money_quota(org, member, stages):
    Quota.objects.create(
        organization=org, level="rep", membership=member, period_kind="quarter",
        period_start=dt.date(2025, 1, 1), metric="pipeline_created", target=Decimal(9000),
    )  # fmt: skip


def _money_template(org, member, stages):
    QuotaTemplate.objects.create(
        organization=org, name="Q", metric="won_revenue", period_kind="quarter", target=Decimal(9000)
    )


def _forecast_call(org, member, stages):
    ForecastSubmission.objects.create(
        organization=org, subject=member, submitted_by=member, period_kind="quarter",
        period_start=dt.date(2025, 1, 1), commit_amount=Decimal(100), best_case_amount=Decimal(200),
        submitted_at=dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc),
    )  # fmt: skip


def _exchange_rate(org, member, stages):
    ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2025, 1, 1), rate=Decimal("0.9"))


@pytest.mark.parametrize(
    "rows_create", [_deal, _deleted_deal, _money_quota, _money_template, _forecast_call, _exchange_rate]
)
def test_currency_change_rejected_with_base_amounts(org, member, stages, rows_create):
    with scopes_disabled():
        rows_create(org, member, stages)

    with scope(organization=org), pytest.raises(ValidationError) as error:
        organization_settings_update(organization=org, actor=None, changes={"currency": "usd", "language": "en"})

    assert error.value.message_dict == {"currency": [CURRENCY_LOCKED_EN]}
    org.refresh_from_db()
    assert org.currency == "EUR"
    assert org.language == "de"
    with scopes_disabled():
        assert not AuditLog.objects.filter(organization=org, action="organization.settings_changed").exists()


def test_currency_change_allowed_with_count_quota(org, member, django_capture_on_commit_callbacks):
    with scopes_disabled():
        Quota.objects.create(
            organization=org, level="rep", membership=member, period_kind="quarter",
            period_start=dt.date(2025, 1, 1), metric="won_deals", target=Decimal(12),
        )  # fmt: skip

    with scope(organization=org), django_capture_on_commit_callbacks(execute=True):
        changed = organization_settings_update(organization=org, actor=None, changes={"currency": "USD"})

    assert changed == ["currency"]
    org.refresh_from_db()
    assert org.currency == "USD"


def test_same_currency_in_lower_case_is_no_change(org, member, stages):
    with scopes_disabled():
        _deal(org, member, stages)

    with scope(organization=org):
        changed = organization_settings_update(organization=org, actor=None, changes={"currency": "eur"})

    assert changed == []
    with scopes_disabled():
        assert not AuditLog.objects.filter(organization=org, action="organization.settings_changed").exists()


@pytest.mark.parametrize(("language", "message"), [("de", CURRENCY_LOCKED_DE), ("en", CURRENCY_LOCKED_EN)])
def test_configure_organization_rejects_currency_with_deals(org, member, stages, language, message):
    org.language = language
    org.save(update_fields=["language"])
    with scopes_disabled():
        _deal(org, member, stages)

    with pytest.raises(CommandError) as error:
        call_command("configure_organization", "--org", "acme", "--currency", "USD")

    assert str(error.value) == message
    org.refresh_from_db()
    assert org.currency == "EUR"
    with scopes_disabled():
        assert Deal.all_objects.get(organization=org).base_amount == Decimal("1500.00")


@pytest.mark.parametrize(("language", "message"), [("de", CURRENCY_LOCKED_DE), ("en", CURRENCY_LOCKED_EN)])
def test_settings_page_rejects_currency_with_deals(admin_member, member, stages, client, language, message):
    org = admin_member.organization
    with scopes_disabled():
        _deal(org, member, stages)
    client.force_login(admin_member.user)

    response = client.post("/o/acme/settings/", {**SETTINGS_POST, "fiscal_year_start_month": 2}, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    assert response.context["form"].errors == {"currency": [message]}
    assert f'<div class="invalid-feedback d-block">{message}</div>' in response.content.decode()
    org.refresh_from_db()
    assert org.currency == "EUR"
    assert org.fiscal_year_start_month == 1


def test_settings_page_changes_currency_without_deals(admin_member, client):
    client.force_login(admin_member.user)

    response = client.post("/o/acme/settings/", SETTINGS_POST)

    assert response.status_code == 302
    admin_member.organization.refresh_from_db()
    assert admin_member.organization.currency == "USD"


# Names that zoneinfo can list but that are no Region/City zone: links kept for compatibility, the
# placeholder zone Factory, files of the system's zone directory and its posix/ and right/ copies.
NOT_OFFERED_TIME_ZONES = [
    "localtime", "posixrules", "Factory", "GMT", "GMT+0", "Etc/GMT-1", "Etc/UTC", "US/Eastern", "Japan", "CET",
    "SystemV/EST5", "posix/Europe/Berlin", "right/Europe/Berlin",
]  # fmt: skip


def choice_values(choices) -> list[str]:
    """Return the values of (possibly grouped) form choices in their order."""
    values = []
    for value, label in choices:
        if isinstance(label, list):
            values.extend(option for option, _option_label in label)
        else:
            values.append(value)
    return values


def test_time_zone_choices_grouped_by_area():
    form = OrganizationSettingsForm(initial={"time_zone": "Europe/Berlin"})

    choices = form.fields["time_zone"].choices
    with translation.override("en"):
        groups = {str(label): options for label, options in choices[1:]}

    assert choices[0] == ("UTC", "UTC")
    assert list(groups) == [
        "Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian Ocean",
        "Pacific",
    ]  # fmt: skip
    assert ("Europe/Berlin", "Berlin") in groups["Europe"]
    assert ("America/Argentina/Buenos_Aires", "Argentina/Buenos Aires") in groups["America"]
    assert groups["Europe"] == sorted(groups["Europe"])


@pytest.mark.parametrize("name", NOT_OFFERED_TIME_ZONES)
def test_time_zone_choices_leave_out_non_region_names(name):
    form = OrganizationSettingsForm(initial={"time_zone": "Europe/Berlin"})

    assert name not in choice_values(form.fields["time_zone"].choices)


def test_time_zone_validator_accepts_what_the_form_offers():
    offered = set(choice_values(OrganizationSettingsForm().fields["time_zone"].choices))
    accepted = set()
    for name in zoneinfo.available_timezones() | set(NOT_OFFERED_TIME_ZONES):
        try:
            validate_time_zone(name)
        except ValidationError:
            continue
        accepted.add(name)

    assert accepted == offered
    assert {"UTC", "Europe/Berlin", "Europe/Vienna", "Europe/Zurich"} <= accepted


@pytest.mark.parametrize("name", ["GMT+0", "Etc/GMT-1", "US/Eastern", "Factory"])
def test_legacy_time_zone_rejected_as_new_value(org, name):
    with translation.override("en"), scope(organization=org), pytest.raises(ValidationError) as error:
        organization_settings_update(organization=org, actor=None, changes={"time_zone": name})

    with translation.override("en"):
        messages = error.value.message_dict
    assert messages == {
        "time_zone": [
            f"{name} is not a supported time zone; use an IANA name of the form Region/City, such as "
            "Europe/Berlin, or UTC."
        ]
    }
    org.refresh_from_db()
    assert org.time_zone == "Europe/Berlin"


def test_settings_page_marks_current_time_zone(admin_member, client):
    client.force_login(admin_member.user)

    page = client.get("/o/acme/settings/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<option value="UTC">UTC</option>' in page
    assert '<optgroup label="Europe">' in page
    assert '<option value="Europe/Berlin" selected>Berlin</option>' in page


def test_settings_page_keeps_legacy_time_zone(admin_member, client):
    """An organization whose stored zone is a legacy name can still change its other settings."""
    org = admin_member.organization
    Organization.objects.filter(pk=org.pk).update(time_zone="US/Eastern")
    client.force_login(admin_member.user)

    page = client.get("/o/acme/settings/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    response = client.post("/o/acme/settings/", {**SETTINGS_POST, "time_zone": "US/Eastern"})

    assert '<option value="US/Eastern" selected>US/Eastern</option>' in page
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.time_zone == "US/Eastern"
    assert org.currency == "USD"


def test_legacy_time_zone_not_offered_after_change(admin_member, client):
    org = admin_member.organization
    Organization.objects.filter(pk=org.pk).update(time_zone="US/Eastern")
    client.force_login(admin_member.user)

    response = client.post("/o/acme/settings/", {**SETTINGS_POST, "time_zone": "America/New_York"})
    page = client.get("/o/acme/settings/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.time_zone == "America/New_York"
    assert 'value="US/Eastern"' not in page
