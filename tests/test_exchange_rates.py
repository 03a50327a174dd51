"""Exchange rates: ECB and plain files, base-currency conversion, set-based recompute of deals."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from pipelines.importers.base import ImportSourceError
from pipelines.models import DealStatus, ExchangeRate
from pipelines.services_rates import (
    deal_base_amount_refresh,
    exchange_rates_import,
    exchange_rates_parse,
)
from spm.models import AuditLog
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
)

ECB = "Date,USD,JPY,GBP,\n2025-03-11,1.0000,160.00,0.8000,\n2025-03-10,1.2500,N/A,0.8500,\n"


def write(tmp_path, text, name="rates.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_ecb_for_euro_base(tmp_path):
    rates, errors = exchange_rates_parse(path=write(tmp_path, ECB), base_currency="EUR")
    assert errors == []
    assert rates == {
        ("USD", dt.date(2025, 3, 11)): Decimal("1.00000000"),
        ("JPY", dt.date(2025, 3, 11)): Decimal("0.00625000"),
        ("GBP", dt.date(2025, 3, 11)): Decimal("1.25000000"),
        ("USD", dt.date(2025, 3, 10)): Decimal("0.80000000"),
        ("GBP", dt.date(2025, 3, 10)): Decimal("1.17647059"),
    }


def test_ecb_for_dollar_base(tmp_path):
    rates, _errors = exchange_rates_parse(path=write(tmp_path, ECB), base_currency="USD")
    # On 2025-03-10 one euro is 1.25 USD and 0.85 GBP, so one pound is 1.25 / 0.85 USD.
    assert rates[("EUR", dt.date(2025, 3, 10))] == Decimal("1.25000000")
    assert rates[("GBP", dt.date(2025, 3, 10))] == Decimal("1.47058824")
    assert rates[("JPY", dt.date(2025, 3, 11))] == Decimal("0.00625000")
    assert ("USD", dt.date(2025, 3, 10)) not in rates


def test_ecb_without_base_column(tmp_path):
    with pytest.raises(ImportSourceError, match="CHF"):
        exchange_rates_parse(path=write(tmp_path, ECB), base_currency="CHF")


def test_plain_list_german_style(tmp_path):
    text = "currency;date;rate\nUSD;10.03.2025;0,9200\nXX;10.03.2025;1\nCHF;10.03.2025;0\n"
    rates, errors = exchange_rates_parse(path=write(tmp_path, text), base_currency="EUR")
    assert rates == {("USD", dt.date(2025, 3, 10)): Decimal("0.92000000")}
    assert [(error.line, error.column) for error in errors] == [(3, "currency"), (4, "rate")]


@pytest.fixture
def usd_deals(org):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        won = StageFactory(pipeline=pipeline, kind="won")
        open_stage = StageFactory(pipeline=pipeline, kind="open")
        owner = MembershipFactory(organization=org)
        closed = DealFactory(
            organization=org,
            owner=owner,
            pipeline=pipeline,
            stage=won,
            status=DealStatus.WON,
            amount=Decimal("1000.00"),
            currency="USD",
            base_amount=None,
            closed_at=dt.datetime(2025, 3, 10, 22, 30, tzinfo=dt.timezone.utc),
        )
        open_deal = DealFactory(
            organization=org,
            owner=owner,
            pipeline=pipeline,
            stage=open_stage,
            status=DealStatus.OPEN,
            amount=Decimal("200.00"),
            currency="USD",
            base_amount=None,
            closed_at=None,
        )
        euro = DealFactory(organization=org, owner=owner, pipeline=pipeline, stage=open_stage, amount=Decimal("50.00"), currency="EUR", base_amount=Decimal("50.00"))
    return closed, open_deal, euro


def test_import_recomputes_deals(org, usd_deals, tmp_path, django_capture_on_commit_callbacks):
    closed, open_deal, euro = usd_deals
    with scope(organization=org), django_capture_on_commit_callbacks() as callbacks:
        outcome = exchange_rates_import(organization=org, path=write(tmp_path, ECB))
    assert outcome["created"] == 5
    assert outcome["deals_recomputed"] == 2
    assert len(callbacks) == 1
    closed.refresh_from_db()
    open_deal.refresh_from_db()
    euro.refresh_from_db()
    # Closed 2025-03-10 22:30 UTC is 23:30 on 2025-03-10 in Berlin: the rate of that day, 1 / 1.25.
    assert closed.base_amount == Decimal("800.00")
    # Open: the latest rate, 1 / 1.00.
    assert open_deal.base_amount == Decimal("200.00")
    assert euro.base_amount == Decimal("50.00")
    with scope(organization=org):
        assert AuditLog.objects.get(action="exchange_rates.imported").after["created"] == 5


def test_reimport_same_rates_changes_nothing(org, usd_deals, tmp_path, django_capture_on_commit_callbacks):
    path = write(tmp_path, ECB)
    with scope(organization=org):
        exchange_rates_import(organization=org, path=path)
        with django_capture_on_commit_callbacks() as callbacks:
            outcome = exchange_rates_import(organization=org, path=path)
    assert outcome["unchanged"] == 5
    assert outcome["deals_recomputed"] == 0
    assert callbacks == []


def test_refresh_ignores_future_rates(org, usd_deals):
    _closed, open_deal, _euro = usd_deals
    with scope(organization=org):
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2025, 1, 1), rate=Decimal("0.5"))
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2025, 12, 1), rate=Decimal("2"))
        deal_base_amount_refresh(organization=org, today=dt.date(2025, 6, 1))
    open_deal.refresh_from_db()
    assert open_deal.base_amount == Decimal("100.00")


def test_rates_upload_page(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin_member.user)
    response = client.post("/o/acme/imports/rates/", {"file": SimpleUploadedFile("eurofxref-hist.csv", ECB.encode())}, follow=True)
    assert "Exchange rates: 5 new" in response.content.decode()
    with scope(organization=org):
        assert ExchangeRate.objects.count() == 5


def test_rates_upload_404_for_rep(org, member, client):
    client.force_login(member.user)
    assert client.post("/o/acme/imports/rates/", {}).status_code == 404


def test_deal_list_shows_both_amounts(org, admin_member, client, usd_deals):
    closed, _open_deal, _euro = usd_deals
    with scope(organization=org):
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2025, 1, 1), rate=Decimal("0.9"))
        deal_base_amount_refresh(organization=org, today=dt.date(2025, 6, 1))
    client.force_login(admin_member.user)
    page = client.get("/o/acme/deals/?status=won").content.decode()
    assert "€900.00" in page
    assert "$1,000.00" in page


def test_import_rates_command(org, usd_deals, tmp_path):
    from django.core.management import call_command

    with scopes_disabled():
        org.language = "en"
        org.save(update_fields=["language"])
    output = io.StringIO()
    call_command("import_rates", str(write(tmp_path, ECB)), "--org", "acme", stdout=output)
    assert "5 new" in output.getvalue()
    assert "2 deals converted again" in output.getvalue()


def ecb_file_with_days(tmp_path, days: int):
    """Write an ECB file with one USD rate per day from 2020-01-01, plus one row with an invalid date."""
    first = dt.date(2020, 1, 1)
    lines = ["Date,USD,"]
    lines += [f"{(first + dt.timedelta(days=offset)).isoformat()},1.1000," for offset in range(days)]
    lines.append("not-a-date,1.2000,")
    return write(tmp_path, "\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("language", "summary", "rejected"),
    [
        (
            "en",
            "Rates: 1,234 new, 0 changed, 0 unchanged; 2 deals converted again.\n",
            "1 row was rejected; the other rates were imported.",
        ),
        (
            "de",
            "Kurse: 1.234 neu, 0 geändert, 0 unverändert; 2 Deals neu umgerechnet.\n",
            "1 Zeile wurde abgelehnt; die übrigen Kurse wurden importiert.",
        ),
    ],
)
def test_import_rates_command_formats_counts(org, usd_deals, tmp_path, language, summary, rejected):
    from django.core.management import CommandError, call_command

    with scopes_disabled():
        org.language = language
        org.save(update_fields=["language"])
    output = io.StringIO()

    with pytest.raises(CommandError) as raised:
        call_command(
            "import_rates", str(ecb_file_with_days(tmp_path, 1234)), "--org", "acme", stdout=output, stderr=io.StringIO()
        )

    assert output.getvalue() == summary
    assert str(raised.value) == rejected
    assert raised.value.returncode == 1


def test_import_rates_command_unknown_organization(db, tmp_path):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as raised:
        call_command("import_rates", str(write(tmp_path, ECB)), "--org", "nobody")

    assert str(raised.value) == "Organization nobody not found; check --org against the slug in the URL /o/<slug>/."
