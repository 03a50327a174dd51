"""Quota and people files whose shape would lose values: extra cells, repeated column names."""

import pytest
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals.imports import people_import, quota_import
from goals.models import Quota
from pipelines.importers.base import ImportSourceError
from spm.models import User


def source_error(run, org, text: str, file_name: str) -> ImportSourceError:
    with scope(organization=org), pytest.raises(ImportSourceError) as raised:
        run(organization=org, actor=None, data=text.encode(), file_name=file_name)
    return raised.value


def in_language(error: ImportSourceError, language: str) -> str:
    with translation.override(language):
        return str(error)


def test_quota_row_with_extra_cells_rejects_file(org, member):
    text = f"level,name,period,metric,target\nrep,{member.user.email},2025-Q1,won_revenue,1,234.56\n"

    error = source_error(quota_import, org, text, "quotas.csv")

    assert in_language(error, "en") == (
        "File quotas.csv, line 2 has 6 cells, but the header has 5 columns. The likely cause is a value that contains "
        "the separator “,” without quotes, such as the amount 1,234.56 in a comma-separated file: put such values in "
        "quotes or export the file again."
    )
    assert in_language(error, "de") == (
        "Datei quotas.csv, Zeile 2 hat 6 Zellen, die Kopfzeile aber 5 Spalten. Wahrscheinlich enthält ein Wert das "
        "Trennzeichen „,“ ohne Anführungszeichen, etwa der Betrag 1,234.56 in einer kommagetrennten Datei: Setzen Sie "
        "solche Werte in Anführungszeichen oder exportieren Sie die Datei erneut."
    )
    with scopes_disabled():
        assert not Quota.objects.exists()


def test_people_row_with_extra_cells_rejects_file(org):
    text = (
        "name,email,role,team\n"
        'Paul Komma,paul.komma@example.com,rep,"Nord, Süd"\n'
        "Rita Extra,rita.extra@example.com,manager,Nord,Hamburg\n"
    )

    error = source_error(people_import, org, text, "p_extra.csv")

    assert in_language(error, "en").startswith("File p_extra.csv, line 3 has 5 cells, but the header has 4 columns.")
    assert User.objects.filter(email__in=["paul.komma@example.com", "rita.extra@example.com"]).count() == 0


def test_empty_cells_after_last_column_are_read(org, member):
    text = f"level;name;period;metric;target;;\nrep;{member.user.email};2025-Q1;won_revenue;500;;\n"

    with scope(organization=org):
        result = quota_import(organization=org, actor=None, data=text.encode(), file_name="quotas.csv")

    assert (result.created, result.rejected) == (1, 0)


def test_repeated_column_name_rejects_file(org, member):
    text = f"level;name;period;metric;target;Target\nrep;{member.user.email};2025-Q2;won_revenue;5;7\n"

    error = source_error(quota_import, org, text, "q_dupcol.csv")

    assert in_language(error, "en") == (
        "File q_dupcol.csv has the column(s) target more than once, so it is unclear which one to read. "
        "Rename or remove the extra column(s) and import the file again."
    )
    assert in_language(error, "de") == (
        "Die Datei q_dupcol.csv enthält die Spalte(n) target mehrfach, daher ist unklar, welche gelesen werden soll. "
        "Benennen Sie die überzähligen Spalten um oder entfernen Sie sie, und importieren Sie die Datei erneut."
    )
    with scopes_disabled():
        assert not Quota.objects.exists()
