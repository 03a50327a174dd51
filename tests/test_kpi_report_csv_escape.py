"""CSV output of `kpi_report`: imported names that a spreadsheet would run as formulas are escaped.

Names come from CRM imports, so a rep or stage called =HYPERLINK(…) must reach the CSV
as text with a leading apostrophe, as in the web exports. Money written as text keeps
its minus sign unescaped, because a spreadsheet reads "-12.50" as a number.
"""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from pipelines.models import DealStatus
from spm.exports import report_csv_cell
from tests.analytics_data import deal_with_history, sales_stages
from tests.analytics_data import utc as utc_2017
from tests.attainment_data import deal_create, quota_create, rep_create, stages_create
from tests.factories import DealFactory, MembershipFactory, PipelineFactory, StageFactory

FORMULA_NAME = '=HYPERLINK("http://attacker.example","Anna")'


def csv_rows(*args) -> list[list[str]]:
    out = io.StringIO()
    call_command("kpi_report", "--org", "acme", "--period", "2017-Q2", "--format", "csv", *args, stdout=out)
    return list(csv.reader(io.StringIO(out.getvalue())))


def test_rep_report_escapes_formula_name(org):
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org))
        owner = MembershipFactory(organization=org, user__name=FORMULA_NAME)
        DealFactory(
            owner=owner,
            stage=stage,
            status=DealStatus.WON,
            created_at=dt.datetime(2017, 4, 8, 12, tzinfo=dt.timezone.utc),
            closed_at=dt.datetime(2017, 4, 10, 12, tzinfo=dt.timezone.utc),
            amount=Decimal("600.00"),
        )
    kpi_snapshot_recompute(organization=org)

    header, row = csv_rows("--by", "rep")

    assert header[0] == "subject"
    assert row[0] == "'" + FORMULA_NAME
    assert row[header.index("won_amount")] == "600.00"


def test_attainment_report_escapes_formula_name(org):
    with scopes_disabled():
        stages = stages_create(org)
        rep = rep_create(org, "@SUM(A1:A9)")
        quota_create(rep, "1000.00")
        deal_create(rep, stages, DealStatus.WON, "250.00", closed_at=dt.datetime(2017, 5, 2, 12, tzinfo=dt.timezone.utc))

    header, row = csv_rows("--metric", "attainment", "--by", "rep", "--as-of", "2017-05-15")

    assert row[header.index("subject")] == "'@SUM(A1:A9)"
    assert row[header.index("quota")] == "1000.00"
    assert row[header.index("credited")] == "250.00"


def test_funnel_report_escapes_stage_name(org, member):
    stages = sales_stages(org)
    deal_with_history(member, stages, [("Lead", utc_2017(4, 3)), ("Proposal", utc_2017(4, 20))])
    with scopes_disabled():
        stages["Lead"].name = "+Lead"
        stages["Lead"].save(update_fields=["name"])

    header, *rows = csv_rows("--metric", "funnel")

    assert header == ["stage", "kind", "reached", "conversion_to_next"]
    assert rows[0][0] == "'+Lead"
    assert rows[1][0] == "Qualified"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("Anna Adler", "Anna Adler"),
        ("=1+1", "'=1+1"),
        ("-1+1", "'-1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("\tTab", "'\tTab"),
        ("-1234.50", "-1234.50"),
        ("2000.00", "2000.00"),
        ("12", "12"),
        (2.5, 2.5),
        (3, 3),
        (True, True),
    ],
)
def test_report_csv_cell(value, cell):
    assert report_csv_cell(value) == cell
