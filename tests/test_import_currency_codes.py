"""Deal imports accept only ISO 4217 currency codes, as the settings and the rate upload do (spm.currencies)."""

import pytest
from django_scopes import scope

from pipelines.importers.base import ImportSourceError
from pipelines.services import crm_import
from pipelines.services_records import RecordsSourceError, records_import
from tests.test_import_generic import CSV, MAPPING, run_import
from tests.test_records_import import ACCOUNTS, DEALS, PEOPLE, PIPELINE, run

REASON = "not an ISO 4217 currency code; use a code such as EUR, CHF or USD"


def test_generic_row_with_made_up_code_rejected(org, tmp_path):
    folder = tmp_path / "generic"
    folder.mkdir()
    (folder / "deals.csv").write_text(
        "Nr;Verkäufer;Angelegt;Phase;Status;Betrag;Währung\n"
        "A-1;Eva Roth;03.02.2025;Angebot;offen;200;XYZ\n"
        "A-2;Eva Roth;04.02.2025;Angebot;offen;300;EUR\n",
        encoding="utf-8",
    )
    mapping = {key: MAPPING[key] for key in ("external_id", "owner", "created_at", "stage", "status", "amount")}

    result = run_import(org, folder, mapping={**mapping, "currency": "Währung"})

    assert result.counts["deals"].created == 1
    [error] = result.errors
    assert (error.line, error.column, error.value) == (2, "Währung", "XYZ")
    assert str(error.reason) == REASON


def test_records_deal_with_reserved_code_rejected(org):
    deals = [{**DEALS[0], "currency": "XXX"}, DEALS[1]]

    result, _schedule = run(org, pipelines=[PIPELINE], people=PEOPLE, accounts=ACCOUNTS, deals=deals)

    assert [(error.field, error.value) for error in result.record_errors] == [("currency", "XXX")]
    assert str(result.record_errors[0].reason) == REASON
    assert result.counts["deals"].created == 1


@pytest.mark.parametrize("code", ["XYZ", "XTS"])
def test_file_and_records_currency_option_rejected(org, tmp_path, code):
    message = f"Currency {code} is not a three-letter ISO code such as EUR or USD."
    with scope(organization=org):
        with pytest.raises(RecordsSourceError, match=message):
            records_import(organization=org, source="api", currency=code, deals=[])
    (tmp_path / "deals.csv").write_text(CSV, encoding="utf-8")
    with scope(organization=org), pytest.raises(ImportSourceError, match=message):
        crm_import(organization=org, source="generic", path=tmp_path, currency=code, options={"mapping": MAPPING})
