"""The German message catalog: complete, compiled from the committed .po, and used by the pages.

The .po is parsed with Babel, so every check except the source scan runs without GNU gettext.
The source scan runs Django's makemessages (which calls xgettext) over a copy of the source
tree, so a string added to the code without a German translation fails here.
"""

import datetime as dt
import gettext
import html
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.pofile import read_po
from django.core.management import call_command
from django.utils import translation
from django.utils.translation import gettext_lazy
from django_scopes import scopes_disabled

from dashboards.charts import percent_tick_suffix
from dashboards.services import kpi_snapshot_recompute
from dashboards.templatetags.spm_format import undefined_html
from pipelines.models import DealStatus, StageKind
from tests.factories import DealFactory, StageFactory

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LC_MESSAGES = PROJECT_ROOT / "locale" / "de" / "LC_MESSAGES"
PO_PATH = LC_MESSAGES / "django.po"
MO_PATH = LC_MESSAGES / "django.mo"

# Folders that the Makefile's `messages` target leaves out of the catalog. Keep both lists equal.
NOT_TRANSLATED = ["bench", "demo", "staticfiles", "tests"]
# Files that makemessages reads with its default extensions (the djangojs domain is not used).
SOURCE_SUFFIXES = {".py", ".html", ".txt"}

FIX_HINT = (
    "Run `make messages`, translate the new or changed entries in "
    "locale/de/LC_MESSAGES/django.po (no empty or fuzzy entries), "
    "then commit both django.po and django.mo."
)

# Plotly's %{y} and str.format's {name}: placeholders that the python-format check does not cover.
BRACE_PLACEHOLDER = re.compile(r"%?\{[^{}]*\}")


@pytest.fixture(scope="module")
def catalog():
    with PO_PATH.open("rb") as po_file:
        return read_po(po_file, locale="de")


def entry_key(message) -> tuple[str | None, str]:
    """Return (context, msgid) of a catalog entry. A plural entry is keyed by its singular."""
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return message.context, msgid


def translations_of(message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def entries(catalog):
    """Yield every entry except the header (whose msgid is empty)."""
    return (message for message in catalog if message.id)


# The .po file


def test_po_header_is_not_fuzzy(catalog):
    # msgfmt skips a fuzzy header, and with it the charset and the plural rule.
    assert catalog.fuzzy is False


def test_po_has_no_fuzzy_entries(catalog):
    fuzzy = [entry_key(message) for message in entries(catalog) if message.fuzzy]

    assert fuzzy == [], f"{len(fuzzy)} fuzzy entries (Django ignores them): {fuzzy[:20]}. {FIX_HINT}"


def test_po_has_no_empty_translations(catalog):
    empty = [
        entry_key(message)
        for message in entries(catalog)
        if not all(text.strip() for text in translations_of(message))
    ]

    assert empty == [], f"{len(empty)} entries without a German translation: {empty[:20]}. {FIX_HINT}"


def test_po_plural_entries_have_both_forms(catalog):
    plural_entries = [message for message in entries(catalog) if message.pluralizable]

    assert plural_entries, "expected at least one plural entry, e.g. the deal list total"
    for message in plural_entries:
        assert len(message.string) == 2, f"{entry_key(message)} needs msgstr[0] and msgstr[1] for German"


def test_po_placeholders_match_msgids(catalog):
    # Babel's checkers compare the %-placeholders of msgid and msgstr and the number of plural forms.
    # Babel flags every msgid that looks like a format string, even one the source marks with
    # "xgettext:no-python-format" ("% of prorated quota"), so those entries are skipped.
    problems = [
        (entry_key(message), [str(error) for error in errors])
        for message, errors in catalog.check()
        if "no-python-format" not in message.flags
    ]

    assert problems == []


def test_po_brace_placeholders_match_msgids(catalog):
    mismatched = []
    for message in entries(catalog):
        msgids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = sorted(BRACE_PLACEHOLDER.findall(msgids[0]))
        for text in translations_of(message):
            if sorted(BRACE_PLACEHOLDER.findall(text)) != expected:
                mismatched.append((entry_key(message), text))

    assert mismatched == []


# The compiled .mo file


def test_mo_matches_po(catalog):
    with MO_PATH.open("rb") as mo_file:
        compiled = gettext.GNUTranslations(mo_file)

    stale = []
    for message in entries(catalog):
        context, msgid = entry_key(message)
        if message.pluralizable:
            singular, plural = message.id
            found = tuple(
                compiled.npgettext(context, singular, plural, n) if context else compiled.ngettext(singular, plural, n)
                for n in (1, 2)
            )
        else:
            found = (compiled.pgettext(context, msgid) if context else compiled.gettext(msgid),)
        if found != translations_of(message):
            stale.append(msgid)

    assert stale == [], f"django.mo is older than django.po for {stale[:20]}; run `make messages` and commit django.mo."


def test_mo_has_no_entries_missing_from_po(catalog):
    with MO_PATH.open("rb") as mo_file:
        compiled = gettext.GNUTranslations(mo_file)
    # GNUTranslations keys plural forms as (msgid, index) and a context as "context\x04msgid".
    po_keys = {f"{context}\x04{msgid}" if context else msgid for context, msgid in map(entry_key, entries(catalog))}
    mo_keys = {key[0] if isinstance(key, tuple) else key for key in compiled._catalog} - {""}

    assert mo_keys - po_keys == set(), "django.mo has entries that django.po lacks; run `make messages`."


# The source code against the catalog


def copy_sources(destination: Path) -> None:
    """Copy the files makemessages reads, without locale/ and the folders the catalog leaves out."""

    def skipped(folder, names):
        return [
            name
            for name in names
            if name in NOT_TRANSLATED
            or name in {"locale", "__pycache__", "node_modules"}
            or name.startswith(".")
            or (Path(folder, name).is_file() and Path(name).suffix not in SOURCE_SUFFIXES)
        ]

    shutil.copytree(PROJECT_ROOT, destination, ignore=skipped)


@pytest.mark.skipif(
    shutil.which("xgettext") is None,
    reason="xgettext (GNU gettext) is not installed, so makemessages cannot scan the source; "
    "install the gettext package to run this check",
)
def test_catalog_covers_every_source_string(catalog, tmp_path, settings, monkeypatch):
    source_copy = tmp_path / "project"
    copy_sources(source_copy)
    # makemessages scans the working directory and writes to the first LOCALE_PATHS entry.
    settings.LOCALE_PATHS = [source_copy / "locale"]
    monkeypatch.chdir(source_copy)

    call_command(
        "makemessages",
        locale=["de"],
        ignore_patterns=[f"{folder}/*" for folder in NOT_TRANSLATED],
        verbosity=0,
    )

    with (source_copy / "locale" / "de" / "LC_MESSAGES" / "django.po").open("rb") as po_file:
        extracted = {entry_key(message) for message in entries(read_po(po_file, locale="de"))}
    translated = {entry_key(message) for message in entries(catalog)}
    missing = sorted(extracted - translated, key=lambda key: (key[0] or "", key[1]))
    assert missing == [], f"{len(missing)} strings from the source are not in the German catalog: {missing[:20]}. {FIX_HINT}"


# Pages rendered in German


@pytest.fixture
def won_deal(org, member):
    """One deal of the rep `member`, won 2017-05-08 for 1,234.56 €, with KPI snapshots computed."""
    with scopes_disabled():
        won = StageFactory(pipeline__organization=org, name="Won", kind=StageKind.WON, probability=100)
        deal = DealFactory(
            owner=member,
            stage=won,
            status=DealStatus.WON,
            amount=Decimal("1234.56"),
            created_at=dt.datetime(2017, 4, 3, 12, tzinfo=dt.timezone.utc),
            closed_at=dt.datetime(2017, 5, 8, 12, tzinfo=dt.timezone.utc),
        )
    kpi_snapshot_recompute(organization=org)
    return deal


def get_german(client, user, path: str) -> str:
    client.force_login(user)
    response = client.get(path, headers={"Accept-Language": "de"})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_dashboard_in_german_by_accept_language(client, admin_member, won_deal):
    content = get_german(client, admin_member.user, "/o/acme/dashboard/?period=2017-Q2")

    assert '<html lang="de">' in content
    assert "<title>Dashboard · SPM</title>" in content
    assert ">Meine Scorecard</a>" in content
    assert ">Zeitraum</label>" in content
    assert ">Gewonnener Umsatz</h3>" in content
    assert "Summe der Beträge aller gewonnenen Deals in der Basiswährung." in content
    assert ">Q2 GJ 2017</option>" in content


def test_scorecard_title_in_german(client, member, won_deal):
    content = get_german(client, member.user, "/o/acme/me/?period=2017-Q2")

    assert "<title>Meine Scorecard · SPM</title>" in content
    assert ">Team-Median</th>" in content
    assert ">Win Rate</span>" in content


def test_period_error_in_german(client, admin_member, won_deal):
    content = get_german(client, admin_member.user, "/o/acme/dashboard/?period=2017-X")

    assert "Einige Filter wurden nicht angewendet:" in content
    assert (
        "Ungültiger Zeitraum '2017-X'; verwenden Sie ein Geschäftsjahr (2017), "
        "ein Quartal (2017-Q2) oder einen Monat (2017-03)." in content
    )


def test_deal_filter_choice_error_in_german(client, admin_member, won_deal):
    # The German text keeps %%(value)r, so Django's choice validation can fill in the rejected value.
    admin_member.user.language = "de"
    admin_member.user.save(update_fields=["language"])
    client.force_login(admin_member.user)

    response = client.get("/o/acme/deals/?status=gone")

    content = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert "Die Deal-Liste konnte nicht gefiltert werden:" in content
    assert "Ungültiger Wert 'gone' für status; zulässig sind: open, won, lost." in content


def test_percent_axis_suffix_follows_locale():
    # German writes a no-break space between number and percent sign: 20 %.
    assert percent_tick_suffix(Locale.parse("de")) == "\u00a0%"
    assert percent_tick_suffix(Locale.parse("en")) == "%"


def test_undefined_value_follows_language_of_lazy_reason():
    reason = gettext_lazy("Not defined for this selection.")

    with translation.override("en"):
        english = undefined_html(reason)
    with translation.override("de"):
        german = undefined_html(reason)

    assert 'title="Not defined for this selection."' in english
    assert 'title="Für diese Auswahl nicht definiert."' in german
