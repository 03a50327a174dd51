"""Upload errors: files that are no CSV, header-only files, repeated and out-of-range rows, long values, broken calendars.

Covers the people, quota, exchange-rate, CRM deal and calendar uploads. Every row of a
rate list ends up counted as created, updated, unchanged or rejected.
"""

import datetime as dt
import html
import io
import re
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scope, scopes_disabled

from goals import parsing
from goals.imports import people_import
from integrations.capture import ics
from pipelines.importers.base import ImportSourceError, RowError, RowRejected
from pipelines.models import ExchangeRate, ImportRun
from pipelines.services_rates import exchange_rates_parse
from spm.models import Membership, Role


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("people.csv", "name,email\nAnna,anna@acme.example\n")
    return buffer.getvalue()


ZIP_MESSAGE = (
    "File binary.csv is a ZIP archive, not a CSV file. An Excel workbook is a ZIP archive too: upload a workbook "
    "with the extension .xlsx, or export the data as CSV."
)
NUL_MESSAGE = (
    "File binary.csv is not a text file: it contains the byte 0x00, which no CSV file contains. Save it as CSV "
    "UTF-8 and upload it again."
)
# Bytes 0x80-0xFF are no UTF-8 text, and Windows-1252 has no character for 0x81.
UNDECODABLE = b"name,email\n" + bytes(range(0x80, 0x100))
UNDECODABLE_MESSAGE = (
    "File binary.csv is neither UTF-8 nor Windows-1252: it contains the byte 0x81, which neither can read. "
    "Save it as CSV UTF-8 and upload it again."
)
HEADER_ONLY_MESSAGE = "File binary.csv has a header row but no data rows; add at least one row below the header."
XLSX_TEXT_MESSAGE = (
    "File binary.xlsx is not an Excel workbook, although its name ends in .xlsx. Save it from Excel as .xlsx, or as "
    "CSV UTF-8 with the extension .csv, and upload it again."
)
XLS_MESSAGE = (
    "File binary.csv is an Excel 97-2003 workbook (.xls), which cannot be read. Save it as an Excel workbook "
    "(.xlsx) or as CSV UTF-8 and upload it again."
)
PNG_MESSAGE = "File binary.csv is a PNG image, not a CSV file; export the data as CSV UTF-8 or XLSX."
PDF_XLSX_MESSAGE = "File binary.xlsx is a PDF document, not an Excel workbook; export the data as CSV UTF-8 or XLSX."
OLE2_HEAD = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100

HEADERS = {
    "people": b"name,email\n",
    "quotas": b"level,name,period,metric,target\n",
    "rates": b"currency,date,rate\n",
    "deals": b"Record ID,Deal Name,Deal Stage,Pipeline,Create Date\n",
}
CONTENT_CASES = {
    "zip": ("binary.csv", zip_archive(), ZIP_MESSAGE),
    "nul": ("binary.csv", b"name,email\n\x00\x01\x02\n", NUL_MESSAGE),
    "undecodable": ("binary.csv", UNDECODABLE, UNDECODABLE_MESSAGE),
    "xls": ("binary.csv", OLE2_HEAD, XLS_MESSAGE),
    "text as xlsx": ("binary.xlsx", b"name,email\nAnna,anna@acme.example\n", XLSX_TEXT_MESSAGE),
    "header only": ("binary.csv", None, HEADER_ONLY_MESSAGE),
    "png": ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", PNG_MESSAGE),
    "pdf as xlsx": ("binary.xlsx", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF_XLSX_MESSAGE),
}


def upload_error(client, kind: str, file_name: str, data: bytes) -> tuple[int, list[str]]:
    """Post one file to the upload of `kind` and return the status and the error messages the page shows."""
    upload = SimpleUploadedFile(file_name, data)
    if kind == "people":
        response = client.post("/o/acme/people/", {"file": upload})
        return response.status_code, [response.context["source_error"]]
    if kind == "quotas":
        response = client.post("/o/acme/quotas/upload/", {"file": upload})
        return response.status_code, [response.context["upload_error"]]
    if kind == "rates":
        response = client.post("/o/acme/imports/rates/", {"file": upload}, follow=True)
        return response.status_code, [str(message) for message in response.context["messages"]]
    response = client.post("/o/acme/imports/", {"source": "hubspot", "files": upload})
    return response.status_code, list(response.context["form"].errors["files"])


@pytest.mark.parametrize("case", list(CONTENT_CASES))
@pytest.mark.parametrize("kind", list(HEADERS))
def test_upload_names_unreadable_file(org, admin_member, client, settings, tmp_path, kind, case):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    file_name, data, message = CONTENT_CASES[case]
    if data is None:
        data = HEADERS[kind]

    status, errors = upload_error(client, kind, file_name, data)

    assert errors == [message]
    # The rate upload redirects back to the import page; the others return 400 for the form post.
    assert status == (200 if kind == "rates" else 400)
    with scopes_disabled():
        assert Membership.objects.filter(organization=org).count() == 1
        assert ImportRun.objects.filter(organization=org).count() == 0
        assert ExchangeRate.objects.filter(organization=org).count() == 0


def test_deal_upload_all_files_header_only(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    files = [SimpleUploadedFile("deals.csv", HEADERS["deals"]), SimpleUploadedFile("activities.csv", b"Subject,Date\n;;\n")]

    response = client.post("/o/acme/imports/", {"source": "hubspot", "files": files})

    assert response.status_code == 400
    assert response.context["form"].errors["files"] == ["None of the files activities.csv, deals.csv has data rows below its header row."]


def test_deal_upload_allows_one_empty_file(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    # A Pipedrive change log without activities has an activity.csv with only its header row.
    files = [
        SimpleUploadedFile("deal_changes.csv", b"deal_id,change_time,changed_field_key,new_value\n1,2025-01-01,stage_id,1\n"),
        SimpleUploadedFile("activity.csv", b"activity_id,type,assigned_to_user,done,due_to\n"),
    ]

    response = client.post("/o/acme/imports/", {"source": "pipedrive", "files": files})

    assert response.status_code == 302
    with scopes_disabled():
        assert ImportRun.objects.get(organization=org).file_names == ["activity.csv", "deal_changes.csv"]


def test_deal_upload_header_only_workbook(org, admin_member, client, settings, tmp_path):
    from openpyxl import Workbook

    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    workbook = Workbook()
    workbook.active.append(["Record ID", "Deal Name"])
    workbook.active.append([None, "  "])
    buffer = io.BytesIO()
    workbook.save(buffer)

    response = client.post("/o/acme/imports/", {"source": "hubspot", "files": SimpleUploadedFile("deals.xlsx", buffer.getvalue())})

    assert response.status_code == 400
    assert response.context["form"].errors["files"] == [
        "File deals.xlsx has a header row but no data rows; add at least one row below the header."
    ]


def test_people_file_bom_bad_byte(db):
    data = b"\xef\xbb\xbfname,email\nAnna,anna@acme.example\x81\n"

    with pytest.raises(ImportSourceError) as raised:
        parsing.read_table(data, "people.csv", required=("name", "email"))

    assert str(raised.value) == (
        "File people.csv is neither UTF-8 nor Windows-1252: it contains the byte 0x81, which neither can read. "
        "Save it as CSV UTF-8 and upload it again."
    )


def test_people_header_only_wrong_columns(db):
    with pytest.raises(ImportSourceError) as raised:
        parsing.read_table(b"vorname;mail\n", "people.csv", required=("name", "email"))

    assert str(raised.value) == "File people.csv is missing the required column(s): name, email."


EMPTY_FILE_MESSAGES = {
    "en": "File {file} is empty (0 bytes); export the data again with its header row and data rows.",
    "de": "Die Datei {file} ist leer (0 Byte); exportieren Sie die Daten erneut mit Kopfzeile und Datenzeilen.",
}


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("file_name", ["deals.csv", "deals.xlsx", "export.zip"])
def test_deal_upload_names_empty_file(org, admin_member, client, settings, tmp_path, language, file_name):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)

    response = client.post(
        "/o/acme/imports/",
        {"source": "generic", "files": SimpleUploadedFile(file_name, b"")},
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 400
    assert response.context["form"].errors["files"] == [EMPTY_FILE_MESSAGES[language].format(file=file_name)]
    with scopes_disabled():
        assert ImportRun.objects.filter(organization=org).count() == 0


@pytest.mark.parametrize("language", ["en", "de"])
def test_rate_upload_names_empty_file(org, admin_member, client, settings, tmp_path, language):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)

    response = client.post(
        "/o/acme/imports/rates/",
        {"file": SimpleUploadedFile("rates.csv", b"")},
        HTTP_ACCEPT_LANGUAGE=language,
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        EMPTY_FILE_MESSAGES[language].format(file="rates.csv")
    ]
    with scopes_disabled():
        assert ExchangeRate.objects.filter(organization=org).count() == 0


# --- quota upload form errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("post", "message"),
    [
        (
            {"file": SimpleUploadedFile("quotas.csv", b"")},
            "File quotas.csv is empty (0 bytes); export the data again with its header row and data rows.",
        ),
        ({}, "This field is required."),
    ],
    ids=["empty file", "no file"],
)
def test_quota_upload_shows_form_error(org, admin_member, client, post, message):
    client.force_login(admin_member.user)

    response = client.post("/o/acme/quotas/upload/", post)

    assert response.status_code == 400
    assert f'<div class="invalid-feedback d-block">{message}</div>' in response.content.decode()


# --- people upload: repeated rows and long values ------------------------------------------------


def people_upload(org, text: str):
    with scope(organization=org):
        return people_import(organization=org, actor=None, data=text.encode(), file_name="people.csv", today=dt.date(2026, 12, 5))


def test_people_upload_rejects_repeated_email(org):
    text = "name,email,role\nDup One,dup@beta.example,rep\nDup Two,DUP@beta.example,manager\n"

    result = people_upload(org, text)

    assert (result.created, result.updated, result.unchanged, result.rejected) == (1, 0, 0, 1)
    assert [str(error) for error in result.errors] == [
        "people.csv line 3, column email, value 'DUP@beta.example': repeats line 2; keep one of them"
    ]
    with scopes_disabled():
        membership = Membership.objects.select_related("user").get(organization=org, user__email="dup@beta.example")
    assert membership.role == Role.REP
    assert membership.user.name == "Dup One"


def test_people_upload_rejects_repeated_name_without_email(org, member):
    with scopes_disabled():
        name = member.user.name
    text = f"name,email,role\n{name},,manager\n{name.upper()},,admin\n"

    result = people_upload(org, text)

    assert (result.created, result.updated, result.unchanged, result.rejected) == (0, 1, 0, 1)
    assert [(error.line, error.column) for error in result.errors] == [(3, "name")]
    member.refresh_from_db()
    assert member.role == Role.MANAGER


def test_people_upload_allows_row_after_rejected_one(org):
    text = "name,email,role\nDup One,dup@beta.example,boss\nDup One,dup@beta.example,manager\n"

    result = people_upload(org, text)

    assert (result.created, result.rejected) == (1, 1)
    assert [(error.line, error.column) for error in result.errors] == [(2, "role")]


def test_people_upload_shortens_long_value_in_message(org, admin_member, client):
    client.force_login(admin_member.user)
    long_name = "N" * 5000
    data = f"name,email\n{long_name},long@acme.example\n".encode()

    response = client.post("/o/acme/people/", {"file": SimpleUploadedFile("people.csv", data)})

    message = f"people.csv line 2, column name, value '{'N' * 60}…': too long; at most 200 characters"
    assert [str(error) for error in response.context["result"].errors] == [message]
    assert response.context["result"].errors[0].value == long_name
    assert "N" * 61 not in response.content.decode()


@pytest.mark.parametrize(("value", "shown"), [("A" * 60, "A" * 60), ("A" * 61, "A" * 60 + "…"), ("", "")])
def test_row_error_shows_at_most_60_characters(value, shown):
    error = RowError.from_rejection("f.csv", 2, RowRejected("name", value, "missing value"))

    assert str(error) == f"f.csv line 2, column name, value {shown!r}: missing value"


# --- exchange rates ------------------------------------------------------------------------------


RATE_LIST = (
    "currency;date;rate\n"
    "USD;03.03.2017;1,0625\n"
    "USD;06.03.2017;0,94\n"
    "USD;06.03.2017;0,95\n"
    "EUR;06.03.2017;1\n"
    "XXX;06.03.2017;1\n"
    "XYZ;06.03.2017;1\n"
    "USD;07.03.2017;99999999999999999999\n"
    "USD;08.03.2017;0\n"
    "USD;09.03.2017;0,000000001\n"
    "JPY;06.03.2017;0,0083\n"
)
RANGE_REASON = "rate out of range; allowed are 0.00000001 to 1,000,000,000"


def rates_post(client, name: str, text: str) -> list[str]:
    """Upload a rate file and return the messages, then each rejected row that the imports page lists, as one line."""
    response = client.post("/o/acme/imports/rates/", {"file": SimpleUploadedFile(name, text.encode())}, follow=True)
    assert response.status_code == 200
    rows = re.findall(r"<tr data-rates-rejected-row>(.*?)</tr>", response.content.decode())
    cells = [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]
    rejected = [f"{name} line {line}, column {column}, value {value!r}: {reason}" for line, column, value, reason in cells]
    return [str(message) for message in response.context["messages"]] + rejected


def test_rate_list_counts_every_row(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)

    messages = rates_post(client, "rates.csv", RATE_LIST)

    assert messages == [
        "Exchange rates: 3 new, 0 changed, 0 unchanged, 7 rows rejected; 0 deals converted again.",
        "rates.csv line 4, column date, value '06.03.2017': repeats line 3; keep one of them",
        "rates.csv line 5, column currency, value 'EUR': the base currency needs no rate, because its rate is always 1; "
        "remove the row",
        "rates.csv line 6, column currency, value 'XXX': not an ISO 4217 currency code; use a code such as EUR, CHF or USD",
        "rates.csv line 7, column currency, value 'XYZ': not an ISO 4217 currency code; use a code such as EUR, CHF or USD",
        f"rates.csv line 8, column rate, value '99999999999999999999': {RANGE_REASON}",
        "rates.csv line 9, column rate, value '0': a rate must be greater than 0",
        f"rates.csv line 10, column rate, value '0,000000001': {RANGE_REASON}",
    ]
    with scope(organization=org):
        assert sorted(ExchangeRate.objects.values_list("currency", "valid_from", "rate")) == [
            ("JPY", dt.date(2017, 3, 6), Decimal("0.00830000")),
            ("USD", dt.date(2017, 3, 3), Decimal("1.06250000")),
            ("USD", dt.date(2017, 3, 6), Decimal("0.94000000")),
        ]


def test_rate_upload_after_rejected_overflow_succeeds(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    rates_post(client, "rates.csv", "currency;date;rate\nUSD;03.03.2017;99999999999999999999\n")

    messages = rates_post(client, "rates2.csv", "currency;date;rate\nUSD;03.03.2017;1,05\nUSD;10.03.2017;1,07\n")

    assert messages == ["Exchange rates: 2 new, 0 changed, 0 unchanged, 0 rows rejected; 0 deals converted again."]


def test_rate_list_keeps_largest_and_smallest_rate(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    text = (
        "currency;date;rate\n"
        "VND;01.03.2017;0,00000001\n"
        "BTN;01.03.2017;1.000.000.000\n"
        "BTN;02.03.2017;1000000000,00000001\n"
        "BTN;03.03.2017;9.999.999.999,99999999\n"
        "BTN;04.03.2017;0,000000005\n"
    )

    messages = rates_post(client, "rates.csv", text)

    assert messages == [
        "Exchange rates: 3 new, 0 changed, 0 unchanged, 2 rows rejected; 0 deals converted again.",
        f"rates.csv line 4, column rate, value '1000000000,00000001': {RANGE_REASON}",
        f"rates.csv line 5, column rate, value '9.999.999.999,99999999': {RANGE_REASON}",
    ]
    with scope(organization=org):
        assert sorted(ExchangeRate.objects.values_list("currency", "valid_from", "rate")) == [
            ("BTN", dt.date(2017, 3, 1), Decimal("1000000000.00000000")),
            ("BTN", dt.date(2017, 3, 4), Decimal("0.00000001")),
            ("VND", dt.date(2017, 3, 1), Decimal("0.00000001")),
        ]


def test_ecb_repeated_day_and_range(tmp_path):
    path = tmp_path / "ecb.csv"
    path.write_text("Date,USD,JPY\n2025-03-11,1.0,160\n2025-03-11,1.1,161\n2025-03-10,0.00000000001,150\n")

    rates, errors = exchange_rates_parse(path=path, base_currency="EUR")

    assert rates == {("USD", dt.date(2025, 3, 11)): Decimal("1.00000000"), ("JPY", dt.date(2025, 3, 11)): Decimal("0.00625000")}
    assert [str(error) for error in errors] == [
        "ecb.csv line 3, column Date, value '2025-03-11': repeats line 2; keep one of them",
        f"ecb.csv line 4, column USD, value '0.00000000001': {RANGE_REASON}",
    ]


def test_ecb_rejects_column_that_is_no_currency(tmp_path):
    path = tmp_path / "ecb.csv"
    path.write_text("Date,USD,XYZ\n2025-03-11,1.0,2.0\n")

    with pytest.raises(ImportSourceError) as raised:
        exchange_rates_parse(path=path, base_currency="EUR")

    assert str(raised.value) == "File ecb.csv has columns that are no ISO 4217 currency codes: XYZ."


def test_deal_upload_non_iso_currency(org, admin_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    data = HEADERS["deals"] + b"1,Big deal,closedwon,default,2025-01-01\n"

    response = client.post("/o/acme/imports/", {"source": "hubspot", "files": SimpleUploadedFile("d.csv", data), "currency": "xxx"})

    assert response.status_code == 400
    assert response.context["form"].errors["currency"] == ["xxx is not an ISO 4217 currency code; use a code such as EUR, CHF or USD."]


def test_settings_reject_no_currency_code(org):
    from django.core.exceptions import ValidationError

    from goals.services import currency_check

    with pytest.raises(ValidationError) as raised:
        currency_check("XXX")

    assert raised.value.messages == ["XXX is not an ISO 4217 currency code; use a code such as EUR, CHF or USD."]
    assert currency_check("chf") == "CHF"


# --- calendar upload -----------------------------------------------------------------------------


BROKEN_START = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//test//test//EN\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:call-1@customer.example\r\n"
    "DTSTART:20261302T100000Z\r\n"
    "DTEND:20261302T110000Z\r\n"
    "SUMMARY:Call\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def calendar_post(client, name: str, text: str) -> list[str]:
    response = client.post("/o/acme/calendar/upload/", {"file": SimpleUploadedFile(name, text.encode())}, follow=True)
    return [str(message) for message in response.context["messages"]]


def test_calendar_upload_names_broken_start(org, member, client):
    client.force_login(member.user)

    messages = calendar_post(client, "calls.ics", BROKEN_START)

    assert messages == [
        "calls.ics: Line 6 (event call-1@customer.example): DTSTART has the invalid value 20261302T100000Z; expected "
        "a date such as 20261203 or a date and time such as 20261203T100000Z."
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RRULE:FREQ=SOMETIMES", "Line 9 (event call-1@customer.example): RRULE has the invalid value FREQ=SOMETIMES; "
         "expected a recurrence rule such as FREQ=WEEKLY;BYDAY=MO."),
        ("DURATION:P1X", "Line 9 (event call-1@customer.example): DURATION has the invalid value P1X; expected a "
         "duration such as PT1H30M."),
    ],
)  # fmt: skip
def test_calendar_names_broken_rule_and_duration(line, message):
    text = BROKEN_START.replace("20261302T100000Z", "20261202T100000Z").replace("20261302T110000Z", "20261202T110000Z")
    text = text.replace("SUMMARY:Call\r\n", f"SUMMARY:Call\r\n{line}\r\n")

    with pytest.raises(ics.CalendarFileError) as raised:
        ics.calendar_parse(text.encode(), start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), end=dt.datetime(2027, 1, 1, tzinfo=dt.UTC), floating_zone=dt.UTC)

    assert str(raised.value) == message


def test_calendar_upload_without_events_says_so(org, member, client):
    client.force_login(member.user)

    messages = calendar_post(client, "empty.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n")

    assert messages == ["empty.ics: The calendar file contains no events (no BEGIN:VEVENT)."]


def test_calendar_names_line_without_colon(org, member, client):
    client.force_login(member.user)

    messages = calendar_post(client, "bad.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nthis is no property\r\nEND:VCALENDAR\r\n")

    assert messages == [
        "bad.ics: Line 3 of the calendar file is not an iCalendar line of the form NAME:value: this is no property"
    ]


# The ZIP signature makes these bytes look like a workbook, but the archive is cut off.
BROKEN_WORKBOOK = b"PK\x03\x04garbage"
BROKEN_WORKBOOK_MESSAGE = "File p.xlsx is not a readable XLSX workbook; save it again from Excel."


@pytest.mark.parametrize("kind", ["people", "quotas", "rates"])
def test_broken_workbook_message_without_library_text(org, admin_member, client, settings, tmp_path, caplog, kind):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)

    status, errors = upload_error(client, kind, "p.xlsx", BROKEN_WORKBOOK)

    assert errors == [BROKEN_WORKBOOK_MESSAGE]
    assert "File is not a zip file" in caplog.text


def test_broken_deal_workbook_message_without_library_text(tmp_path, caplog):
    from pipelines.importers.formats import table_read

    path = tmp_path / "p.xlsx"
    path.write_bytes(BROKEN_WORKBOOK)

    with pytest.raises(ImportSourceError) as raised:
        table_read(path)

    assert str(raised.value) == BROKEN_WORKBOOK_MESSAGE
    assert "File is not a zip file" in caplog.text


def test_deal_upload_workbook_after_title_sheet(org, admin_member, client, settings, tmp_path):
    """A cover sheet holding only a title is skipped, as the importer skips it, so the data sheet counts."""
    from openpyxl import Workbook

    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    workbook = Workbook()
    workbook.active.title = "Cover"
    workbook.active.append(["Export"])
    deals = workbook.create_sheet("Deals")
    deals.append(["id", "owner", "created", "amount"])
    deals.append(["G1", "Eva Roth", "2017-01-10", "100"])
    buffer = io.BytesIO()
    workbook.save(buffer)

    response = client.post("/o/acme/imports/", {"source": "generic", "files": SimpleUploadedFile("deals.xlsx", buffer.getvalue())})

    assert response.status_code == 302
    with scopes_disabled():
        assert ImportRun.objects.get(organization=org).file_names == ["deals.xlsx"]
