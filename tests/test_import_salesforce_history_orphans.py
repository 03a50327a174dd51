"""Salesforce history rows of an opportunity missing from the report are reported, not dropped."""

from django_scopes import scope

from pipelines.models import Deal, DealStageChange
from tests.import_helpers import export_folder, run_file_import

OPPORTUNITIES = (
    "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Opportunity Currency,Close Date,Created Date\n"
    "0065g00000QQQ01,Hist A,Lena Vogt,Negotiation,100,EUR,2025-05-30,2025-02-01 10:00\n"
)
HISTORY = (
    "OpportunityId,StageName,CreatedDate,FromOpportunityStageName\n"
    "0065g00000QQQ01AAA,Prospecting,2025-02-01T11:00:00Z,\n"
    "0065g00000ZZZZZAAA,Prospecting,2025-02-02T11:00:00Z,\n"
    "0065g00000ZZZZZAAA,Negotiation,2025-02-03T11:00:00Z,Prospecting\n"
    "0065g00000QQQ01AAA,Negotiation,2025-02-05T11:00:00Z,Prospecting\n"
)


def test_history_rows_without_opportunity_rejected(org, tmp_path):
    folder = export_folder(tmp_path / "sf", {"opportunities.csv": OPPORTUNITIES, "history.csv": HISTORY})

    result = run_file_import(org, "salesforce", folder)

    reason = (
        "opportunity 0065g00000ZZZZZAAA is not in the opportunity report opportunities.csv; add it to the report "
        "or remove its rows from the history file"
    )
    assert [str(error) for error in result.errors] == [
        f"history.csv line 3, column OpportunityId, value '0065g00000ZZZZZAAA': {reason}",
        f"history.csv line 4, column OpportunityId, value '0065g00000ZZZZZAAA': {reason}",
    ]
    assert result.counts["stage_changes"].rejected == 2
    with scope(organization=org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["0065g00000QQQ01"]
        moves = list(DealStageChange.objects.order_by("changed_at").values_list("from_stage__name", "to_stage__name"))
    assert moves == [(None, "Prospecting"), ("Prospecting", "Negotiation")]
