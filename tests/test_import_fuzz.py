"""Importers under random and hostile files: a clear rejection or a correct import, never a crash or a partial write.

Each source in FUZZ_SOURCES names a folder of valid test files and the file that gets replaced
by generated content. Adding a source is one line there.
"""

import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import transaction
from django_scopes import scope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.importers.base import ImportSourceError
from pipelines.models import Deal
from pipelines.services import crm_import

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class FuzzSource:
    folder: Path
    deal_file: str
    header: str


FUZZ_SOURCES = {
    "maven": FuzzSource(
        DATA / "maven_small",
        "sales_pipeline.csv",
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value",
    ),
    "pipedrive": FuzzSource(
        DATA / "pipedrive_changelog",
        "deal_changes.csv",
        "deal_id,change_time,changed_field_key,new_value",
    ),
}

# Modest example counts keep the module to a few seconds in CI.
FUZZ_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

CELL_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["=1+1", "+SUM(A1:A2)", "-2+3", "@cmd", "=HYPERLINK(\"http://x\")", '"', '""', "\x00", "\ufeff"]),
    st.text(alphabet=string.printable, min_size=500, max_size=5000),
)
HOSTILE_CONTENT = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.text(max_size=500).map(lambda text: text.encode("utf-16")),
    st.text(alphabet="ÄÖÜäöüß€", max_size=200).map(lambda text: text.encode("latin-1", "replace")),
)


def _rows_strategy(header: str):
    width = len(header.split(","))
    row = st.lists(CELL_TEXT, min_size=0, max_size=width + 2).map(
        lambda cells: ",".join('"' + cell.replace('"', '""') + '"' if "," in cell else cell for cell in cells)
    )
    blank_lines = st.integers(min_value=0, max_value=50).map(lambda count: "\n" * count)
    return st.lists(st.one_of(row, blank_lines, st.just('"unbalanced,quote')), max_size=20).map(
        lambda lines: (header + "\n" + "\n".join(lines)).encode("utf-8", "surrogatepass")
    )


def _run(org, tmp_path, source_name: str, content: bytes):
    """Import a copy of the source's folder with the deal file replaced; return (result or error, deals written)."""
    source = FUZZ_SOURCES[source_name]
    folder = tmp_path / "export"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source.folder, folder)
    (folder / source.deal_file).write_bytes(content)

    with scope(organization=org):
        # The outer atomic block undoes every example, so each starts from an empty organization.
        with transaction.atomic():
            outcome = None
            try:
                outcome = crm_import(organization=org, source=source_name, path=folder)
            except ImportSourceError as error:
                outcome = error
            deals = list(Deal.objects.values_list("external_id", "name"))
            transaction.set_rollback(True)
    return outcome, deals


def _check(outcome, deals) -> None:
    if isinstance(outcome, ImportSourceError):
        assert str(outcome), "a rejection must say why"
        assert deals == [], "a rejected file must not leave rows behind"
        return
    accepted = outcome.counts["deals"].created + outcome.counts["deals"].updated + outcome.counts["deals"].unchanged
    assert len(deals) == accepted
    for error in outcome.errors:
        assert str(error.reason)


@pytest.mark.parametrize("source_name", sorted(FUZZ_SOURCES))
@FUZZ_SETTINGS
@given(content=HOSTILE_CONTENT)
def test_random_bytes_rejected_or_imported(org, tmp_path, source_name, content):
    _check(*_run(org, tmp_path, source_name, content))


@pytest.mark.parametrize("source_name", sorted(FUZZ_SOURCES))
@FUZZ_SETTINGS
@given(data=st.data())
def test_hostile_rows_rejected_or_imported(org, tmp_path, source_name, data):
    content = data.draw(_rows_strategy(FUZZ_SOURCES[source_name].header))

    _check(*_run(org, tmp_path, source_name, content))


def test_formula_cells_stay_text(org, tmp_path):
    header = FUZZ_SOURCES["maven"].header
    content = f"{header}\n=1+1,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,588\n".encode()

    outcome, deals = _run(org, tmp_path, "maven", content)

    assert outcome.errors == []
    # The opportunity id is stored verbatim as text, not evaluated; the name is product · account.
    assert deals == [("=1+1", "GTX Basic · Cancity")]


@pytest.mark.parametrize("source_name", sorted(FUZZ_SOURCES))
def test_field_over_csv_limit_rejected(org, tmp_path, source_name):
    header = FUZZ_SOURCES[source_name].header
    # Python's csv module refuses fields over 131,072 characters.
    content = f'{header}\n"{"x" * 200_000}",a,b\n'.encode()

    outcome, deals = _run(org, tmp_path, source_name, content)

    assert isinstance(outcome, ImportSourceError)
    assert str(outcome) == (
        f"File {FUZZ_SOURCES[source_name].deal_file}, line 2: a cell is longer than 131072 characters, the most an "
        "import reads. A quotation mark that is not closed makes the rest of the file one cell: close it, or "
        "shorten the cell, and import the file again."
    )
    assert deals == []


def test_nul_byte_rejected_with_line(org, tmp_path):
    header = FUZZ_SOURCES["maven"].header
    content = f"{header}\nWON1,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,588\nX\x00,a\n".encode()

    outcome, deals = _run(org, tmp_path, "maven", content)

    assert isinstance(outcome, ImportSourceError)
    assert "contains a NUL character on line 3" in str(outcome)
    assert deals == []
