"""Exchange rates: ECB and plain files, base-currency conversion, set-based recompute of deals."""

import csv
import datetime as dt
import html
import io
import re
import tempfile
from decimal import Decimal

import pytest
from django.utils import translation
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


RATES_BAD = "currency,date,rate\nJPY,2017-13-01,0.0089\nJPY,2017-01-01,abc\nJPY,01/02/2017,0.009\nXXXX,2017-01-01,1\n"


def rates_upload(client, name, text, language, date_order=""):
    """Upload a rate file and return the messages and then the rejected rows that the imports page shows."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        "/o/acme/imports/rates/",
        {"file": SimpleUploadedFile(name, text.encode()), "date_order": date_order},
        HTTP_ACCEPT_LANGUAGE=language,
        follow=True,
    )
    return [str(message) for message in response.context["messages"]] + rejected_rate_rows(response.content.decode())


def rejected_rate_rows(page: str) -> list[str]:
    """Return the rejected-rate rows of the imports page as "line, column, value: reason"."""
    rows = re.findall(r"<tr data-rates-rejected-row>(.*?)</tr>", page)
    cells = [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]
    return [f"{line}, {column}, {value}: {reason}" for line, column, value, reason in cells]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "Exchange rates: 0 new, 0 changed, 0 unchanged, 4 rows rejected; 0 deals converted again.",
                "2, date, 2017-13-01: invalid date; no such day, so check the day and the month",
                "3, rate, abc: invalid number; expected e.g. 1,234.56 or 1234.56",
                "4, date, 01/02/2017: ambiguous date: it can be day/month or "
                "month/day; choose the date order (DD/MM/YYYY or MM/DD/YYYY) and import again",
                "5, currency, XXXX: not a three-letter ISO currency code",
            ],
        ),
        (
            "de",
            [
                "Wechselkurse: 0 neu, 0 geändert, 0 unverändert, 4 Zeilen abgelehnt; 0 Deals neu umgerechnet.",
                "2, date, 2017-13-01: ungültiges Datum; diesen Tag gibt es nicht, prüfen Sie Tag und Monat",
                "3, rate, abc: ungültige Zahl; erwartet wird z. B. 1.234,56 oder 1234,56",
                "4, date, 01/02/2017: mehrdeutiges Datum: Es kann Tag/Monat oder "
                "Monat/Tag sein; wählen Sie die Datumsreihenfolge (TT/MM/JJJJ oder MM/TT/JJJJ) und importieren Sie erneut",
                "5, currency, XXXX: kein dreistelliger ISO-Währungscode",
            ],
        ),
    ],
)
def test_rates_upload_messages_name_uploaded_file(org, admin_member, client, settings, tmp_path, language, expected):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    assert rates_upload(client, "rates_bad.csv", RATES_BAD, language) == expected


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "rates.csv",
            "currency,date,rate\nJPY,2017-02-01,0.009\n",
            "Exchange rates: 1 new, 0 changed, 0 unchanged, 0 rows rejected; 0 deals converted again.",
        ),
        (
            "Kurse.csv",
            "name,value\nJPY,1\n",
            "File Kurse.csv is neither the ECB shape (Date,USD,JPY,…) nor a list with the columns currency, date "
            "and rate.",
        ),
    ],
)
def test_rates_upload_leaves_no_files(org, admin_member, client, settings, tmp_path, monkeypatch, name, text, expected):
    settings.MEDIA_ROOT = tmp_path / "media"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    client.force_login(admin_member.user)

    messages = rates_upload(client, name, text, "en")

    assert messages == [expected]
    assert list((tmp_path / "media").rglob("*")) == []
    assert list(temporary.iterdir()) == []


@pytest.mark.parametrize(("date_order", "valid_from"), [("dmy", dt.date(2017, 2, 1)), ("mdy", dt.date(2017, 1, 2))])
def test_rates_upload_reads_chosen_date_order(org, admin_member, client, settings, tmp_path, date_order, valid_from):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    messages = rates_upload(client, "rates.csv", "currency,date,rate\nJPY,01/02/2017,0.009\n", "en", date_order)

    assert messages == ["Exchange rates: 1 new, 0 changed, 0 unchanged, 0 rows rejected; 0 deals converted again."]
    with scope(organization=org):
        assert list(ExchangeRate.objects.values_list("currency", "valid_from", "rate")) == [
            ("JPY", valid_from, Decimal("0.00900000"))
        ]


def test_rates_upload_file_error_names_uploaded_file(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    messages = rates_upload(client, "Kurse März.csv", "name,value\nJPY,1\n", "en")

    assert messages == [
        "File Kurse_März.csv is neither the ECB shape (Date,USD,JPY,…) nor a list with the columns currency, date "
        "and rate."
    ]


def test_import_page_offers_rates_date_order(org, admin_member, client):
    client.force_login(admin_member.user)

    page = client.get("/o/acme/imports/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert page.count('id="id_date_order"') == 1
    assert page.count('id="id_rates_date_order"') == 1
    assert '<label class="form-label" for="id_rates_date_order">Date order</label>' in page


@pytest.mark.parametrize(("date_order", "valid_from"), [("dmy", dt.date(2017, 2, 1)), ("mdy", dt.date(2017, 1, 2))])
def test_import_rates_command_date_order(org, tmp_path, date_order, valid_from):
    from django.core.management import call_command

    path = write(tmp_path, "currency,date,rate\nJPY,01/02/2017,0.009\n")

    call_command("import_rates", str(path), "--org", "acme", "--date-order", date_order, stdout=io.StringIO())

    with scope(organization=org):
        assert list(ExchangeRate.objects.values_list("valid_from", flat=True)) == [valid_from]


RATES_TODAY = dt.date(2026, 12, 5)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("2000-01-01", True),
        ("1999-12-31", False),
        ("2031-12-05", True),
        ("2031-12-06", False),
        ("2099-01-01", False),
    ],
)
def test_rate_list_date_range(tmp_path, text, accepted):
    path = write(tmp_path, f"currency;date;rate\nUSD;{text};1,1\n")

    rates, errors = exchange_rates_parse(path=path, base_currency="EUR", today=RATES_TODAY)

    assert (len(rates), len(errors)) == ((1, 0) if accepted else (0, 1))


def test_rate_list_far_future_date_message(tmp_path):
    path = write(tmp_path, "currency;date;rate\nUSD;2099-01-01;1,1\nCHF;2026-01-02;0,95\n")

    with translation.override("de"):
        rates, errors = exchange_rates_parse(path=path, base_currency="EUR", today=RATES_TODAY)
        messages = [str(error) for error in errors]

    assert rates == {("CHF", dt.date(2026, 1, 2)): Decimal("0.95000000")}
    assert messages == [
        "rates.csv Zeile 2, Spalte date, Wert '2099-01-01': 01.01.2099 liegt außerhalb des zulässigen Bereichs; "
        "geben Sie ein Datum vom 01.01.2000 bis 05.12.2031 ein."
    ]


def test_ecb_far_future_row_rejected(tmp_path):
    text = "Date,USD\n2099-01-01,1.25\n2026-03-10,1.25\n"

    rates, errors = exchange_rates_parse(path=write(tmp_path, text), base_currency="EUR", today=RATES_TODAY)

    assert rates == {("USD", dt.date(2026, 3, 10)): Decimal("0.80000000")}
    assert [(error.line, error.column, error.value) for error in errors] == [(2, "Date", "2099-01-01")]


def test_rates_upload_rejects_far_future_date(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    messages = rates_upload(client, "rates.csv", "currency;date;rate\nUSD;2099-01-01;1,1\n", "en")

    assert messages[0] == "Exchange rates: 0 new, 0 changed, 0 unchanged, 1 row rejected; 0 deals converted again."
    assert messages[1].startswith("2, date, 2099-01-01: 01/01/2099 is outside the allowed range")
    with scope(organization=org):
        assert ExchangeRate.objects.count() == 0


def test_rates_upload_summary_singular(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)
    text = "currency;date;rate\nUSD;2025-03-01;0,9\nXXX1;2025-03-01;1\n"

    messages = rates_upload(client, "rates.csv", text, "en")

    assert messages[0] == "Exchange rates: 1 new, 0 changed, 0 unchanged, 1 row rejected; 0 deals converted again."


def test_rates_summary_one_deal():
    from pipelines.views_imports import _rates_summary

    outcome = {"created": 1, "updated": 1, "unchanged": 1, "errors": [], "deals_recomputed": 1}

    with translation.override("en"):
        assert _rates_summary(outcome) == "Exchange rates: 1 new, 1 changed, 1 unchanged, 0 rows rejected; 1 deal converted again."


# Two good rows, then 13 rows with a currency that is no ISO code, on lines 4 to 16.
RATES_MANY_BAD = "currency,date,rate\nJPY,2017-01-02,0.009\nJPY,2017-01-03,0.0091\n" + "".join(
    f"X{index:02d},2017-01-01,1\n" for index in range(13)
)


def test_rates_upload_lists_all_rejected_rows(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)

    messages = rates_upload(client, "rates.csv", RATES_MANY_BAD, "en")

    assert messages[0] == "Exchange rates: 2 new, 0 changed, 0 unchanged, 13 rows rejected; 0 deals converted again."
    assert messages[1:] == [
        f"{line}, currency, X{line - 4:02d}: not a three-letter ISO currency code" for line in range(4, 17)
    ]
    page = client.get("/o/acme/imports/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-rates-rejected="13"' in page
    assert "13 rejected rows in rates.csv" in page
    assert "data-rates-rejected-note" not in page
    response = client.get("/o/acme/imports/rates/rejected.csv", HTTP_ACCEPT_LANGUAGE="de")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Datei", "Zeile", "Spalte", "Wert", "Grund"]
    assert [row[:4] for row in rows[1:]] == [["rates.csv", str(line), "currency", f"X{line - 4:02d}"] for line in range(4, 17)]
    assert rows[-1][4] == "kein dreistelliger ISO-Währungscode"


def test_rates_rejected_rows_beyond_page(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)
    text = "currency,date,rate\n" + "".join(f"X{index:02d},2017-01-01,1\n" for index in range(25))

    messages = rates_upload(client, "rates.csv", text, "en")

    assert messages[0] == "Exchange rates: 0 new, 0 changed, 0 unchanged, 25 rows rejected; 0 deals converted again."
    assert len(messages) == 1 + 20
    page = html.unescape(client.get("/o/acme/imports/").content.decode())
    assert "The first 20 are listed here; the CSV has all 25." in page
    response = client.get("/o/acme/imports/rates/rejected.csv")
    assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))) == 1 + 25


def test_rates_rejected_rows_cleared_by_clean_upload(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)
    rates_upload(client, "rates.csv", RATES_MANY_BAD, "en")

    messages = rates_upload(client, "rates.csv", "currency,date,rate\nJPY,2017-01-04,0.009\n", "en")

    assert messages == ["Exchange rates: 1 new, 0 changed, 0 unchanged, 0 rows rejected; 0 deals converted again."]
    response = client.get("/o/acme/imports/rates/rejected.csv")
    assert list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))) == [
        ["File", "Line", "Column", "Value", "Reason"]
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "rates_header.csv",
            "currency,date,rate\n",
            "File rates_header.csv has a header row but no data rows; add at least one row below the header.",
        ),
        (
            "rates.pdf",
            "%PDF-1.4\n",
            "File rates.pdf is a PDF document, not a CSV file; export the data as CSV UTF-8 or XLSX.",
        ),
        (
            "rates_empty.csv",
            "",
            "File rates_empty.csv is empty (0 bytes); export the data again with its header row and data rows.",
        ),
    ],
)
def test_failed_rate_upload_clears_rejected_rows(org, admin_member, client, settings, tmp_path, name, text, message):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(admin_member.user)
    rates_upload(client, "rates.csv", RATES_MANY_BAD, "en")

    messages = rates_upload(client, name, text, "en")

    assert messages == [message]
    page = client.get("/o/acme/imports/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "data-rates-rejected" not in page
    assert "rejected rows in rates.csv" not in page
    response = client.get("/o/acme/imports/rates/rejected.csv")
    assert list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))) == [
        ["File", "Line", "Column", "Value", "Reason"]
    ]
