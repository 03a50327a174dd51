"""Salesforce opportunity report plus OpportunityHistory: ids, stage moves, currencies."""

import datetime as dt
from decimal import Decimal

from django_scopes import scope

from pipelines.models import Deal, DealStageChange, DealStatus, ExchangeRate, Stage, StageKind
from pipelines.services import crm_import

OPPORTUNITIES = (
    "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Opportunity Currency,Close Date,Created Date,"
    "Probability (%),Won,Closed\n"
    "0065g00000AbCdE,Wärmepumpe Bauer,Lena Vogt,Closed Won,10000,USD,2025-03-10,2025-01-05 10:00,100,1,1\n"
    "0065g00000AbCdF,PV Huber,Lena Vogt,Negotiation/Review,5000,EUR,2025-05-30,2025-02-01 10:00,80,0,0\n"
)
HISTORY = (
    "OpportunityId,StageName,Amount,CloseDate,Probability,CreatedDate,FromOpportunityStageName,CurrencyIsoCode\n"
    "0065g00000AbCdEAAX,Prospecting,10000,2025-03-31,10,2025-01-05T09:00:00Z,,USD\n"
    "0065g00000AbCdEAAX,Prospecting,12000,2025-03-31,10,2025-01-20T09:00:00Z,Prospecting,USD\n"
    "0065g00000AbCdEAAX,Negotiation/Review,10000,2025-03-31,80,2025-02-15T09:00:00Z,Prospecting,USD\n"
    "0065g00000AbCdEAAX,Closed Won,10000,2025-03-10,100,2025-03-10T16:00:00Z,Negotiation/Review,USD\n"
)


def utc(year, month, day, hour=0):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


def export(tmp_path, opportunities=OPPORTUNITIES, history=HISTORY):
    folder = tmp_path / "sf"
    folder.mkdir(exist_ok=True)
    (folder / "opportunities.csv").write_text(opportunities, encoding="utf-8")
    if history is not None:
        (folder / "opportunity_history.csv").write_text(history, encoding="utf-8")
    return folder


def run_import(org, folder):
    with scope(organization=org):
        ExchangeRate.objects.get_or_create(
            organization=org, currency="USD", valid_from=dt.date(2025, 1, 1), defaults={"rate": Decimal("0.92")}
        )
        return crm_import(organization=org, source="salesforce", path=folder, today=dt.date(2025, 4, 1))


def test_history_moves_match_by_15_char_id(org, tmp_path):
    result = run_import(org, export(tmp_path))
    assert result.counts["deals"].created == 2
    with scope(organization=org):
        moves = list(
            DealStageChange.objects.filter(deal__external_id="0065g00000AbCdE")
            .order_by("changed_at")
            .values_list("from_stage__name", "to_stage__name", "changed_at", "is_implied")
        )
    # The amount-only change on 2025-01-20 is not a stage move.
    assert moves == [
        (None, "Prospecting", utc(2025, 1, 5, 9), False),
        ("Prospecting", "Negotiation/Review", utc(2025, 2, 15, 9), False),
        ("Negotiation/Review", "Closed Won", utc(2025, 3, 10, 16), False),
    ]


def test_won_deal_converted_at_close_rate(org, tmp_path):
    run_import(org, export(tmp_path))
    with scope(organization=org):
        won = Deal.objects.get(external_id="0065g00000AbCdE")
        open_deal = Deal.objects.get(external_id="0065g00000AbCdF")
    assert won.status == DealStatus.WON
    assert won.closed_at == utc(2025, 3, 10, 16)
    assert won.currency == "USD"
    assert won.base_amount == Decimal("9200.00")
    assert won.probability == 100
    assert open_deal.status == DealStatus.OPEN
    assert open_deal.base_amount == Decimal("5000.00")
    assert open_deal.expected_close_on == dt.date(2025, 5, 30)


def test_stage_kinds_from_flags(org, tmp_path):
    run_import(org, export(tmp_path))
    with scope(organization=org):
        kinds = dict(Stage.objects.filter(pipeline__name="Salesforce").values_list("name", "kind"))
    assert kinds == {
        "Closed Won": StageKind.WON,
        "Negotiation/Review": StageKind.OPEN,
        "Prospecting": StageKind.OPEN,
    }


def test_without_history_deal_is_snapshot(org, tmp_path):
    run_import(org, export(tmp_path, history=None))
    with scope(organization=org):
        moves = list(
            DealStageChange.objects.filter(deal__external_id="0065g00000AbCdE").values_list("to_stage__name", "is_implied")
        )
    assert moves == [("Closed Won", True)]


def test_missing_rate_rejects_row(org, tmp_path):
    text = OPPORTUNITIES.replace(",USD,", ",CHF,")
    result = run_import(org, export(tmp_path, opportunities=text, history=None))
    assert result.counts["deals"].rejected == 1
    assert "no exchange rate for CHF valid on 03/10/2025" in str(result.errors[0].reason)


def test_reimport_is_idempotent(org, tmp_path):
    folder = export(tmp_path)
    run_import(org, folder)
    result = run_import(org, folder)
    assert result.counts["deals"].unchanged == 2
    assert result.counts["stage_changes"].created == 0
    with scope(organization=org):
        assert DealStageChange.objects.count() == 4


def test_won_opportunity_without_close_date_column_names_the_absent_column(org, tmp_path):
    opportunities = (
        "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Opportunity Currency,Created Date\n"
        "0065g00000AbCdE,Wärmepumpe Bauer,Lena Vogt,Closed Won,10000,USD,2025-01-05 10:00\n"
    )
    result = run_import(org, export(tmp_path, opportunities=opportunities, history=None))

    assert str(result.errors[0].column) == "Close Date (not in the file)"
    assert result.errors[0].value == ""
    assert "export the file with this column" in str(result.errors[0].reason)


def test_won_opportunity_with_empty_close_date_asks_to_fill_it(org, tmp_path):
    opportunities = OPPORTUNITIES.replace("Closed Won,10000,USD,2025-03-10,", "Closed Won,10000,USD,,")
    result = run_import(org, export(tmp_path, opportunities=opportunities, history=None))

    assert result.errors[0].column == "Close Date"
    assert result.errors[0].value == ""
    assert "fill in this cell" in str(result.errors[0].reason)


def test_history_before_created_date_rejects_opportunity(org, tmp_path):
    """A history row on an earlier day than Created Date rejects the opportunity instead of moving its creation."""
    opportunities = OPPORTUNITIES.replace("2025-01-05 10:00", "2025-01-25 10:00")

    result = run_import(org, export(tmp_path, opportunities=opportunities))

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 1
    error = result.errors[0]
    assert (error.file_name, error.line, error.column, error.value) == ("opportunities.csv", 2, "Created Date", "2025-01-25 10:00")
    assert error.reason.params == {"entered": dt.date(2025, 1, 5), "created": dt.date(2025, 1, 25), "created_in": "Created Date"}
    with scope(organization=org):
        assert not Deal.objects.filter(external_id="0065g00000AbCdE").exists()


def test_close_date_against_creation(org, tmp_path):
    """A CloseDate earlier on the creation day closes at the creation time; one on an earlier day rejects the row."""
    opportunities = (
        "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Opportunity Currency,Close Date,Created Date,"
        "Probability (%),Won,Closed\n"
        "0065g00000AbCd1,Same day,Lena Vogt,Closed Won,10000,EUR,2025-01-05,2025-01-05 15:00,100,1,1\n"
        "0065g00000AbCd2,Day before,Lena Vogt,Closed Lost,10000,EUR,2025-01-04,2025-01-05 15:00,0,0,1\n"
        "0065g00000AbCd3,Morning,Lena Vogt,Closed Won,10000,EUR,2025-01-05,2025-01-05 09:00,100,1,1\n"
    )

    result = run_import(org, export(tmp_path, opportunities=opportunities, history=None))

    assert [(error.line, error.column, error.value, str(error.reason)) for error in result.errors] == [
        (3, "Close Date", "2025-01-04", "close date is before the creation date")
    ]
    with scope(organization=org):
        stored = dict(Deal.objects.values_list("external_id", "closed_at"))
    # 15:00 in Berlin is 14:00 UTC, later than the 12:00 UTC of a date alone; 09:00 is 08:00 UTC.
    assert stored == {"0065g00000AbCd1": utc(2025, 1, 5, 14), "0065g00000AbCd3": utc(2025, 1, 5, 12)}
