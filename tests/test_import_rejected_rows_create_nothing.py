"""Pipelines, stages and products named only in rejected rows: no import may create them.

Each file or batch below names a new stage, pipeline or product in rows that are rejected
for another reason. The reasons are an amount that is no number, an impossible date, a missing
time, and an owner whose generated e-mail address belongs to another name ("Joerg Weiss" after
"Jörg Weiß").
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from integrations.api.services import api_token_create
from pipelines.models import Deal, ImportRunStatus, Product
from tests.import_helpers import (
    export_folder,
    import_start,
    mapped_dry_run,
    pipeline_names,
    run_file_import,
    run_records,
    stage_rows,
)

GENERIC_MAPPING = {
    "external_id": "ID",
    "owner": "Owner",
    "created_at": "Created",
    "stage": "Stage",
    "status": "Status",
    "closed_at": "Closed",
    "amount": "Amount",
}
# G-1 has an amount that is no number, G-2 an impossible close date (its status also needs
# the stage "Won"), and G-4's owner clashes with G-3's. Only G-3 and its stage "Angebot" are accepted.
GENERIC_CSV = (
    "ID,Owner,Created,Stage,Status,Closed,Amount\n"
    "G-1,Eva Roth,01.05.2017,Demo,,,abc\n"
    "G-2,Eva Roth,02.05.2017,Pilot,won,31.02.2017,100\n"
    "G-3,Jörg Weiß,03.05.2017,Angebot,,,300\n"
    "G-4,Joerg Weiss,04.05.2017,Workshop,,,400\n"
)


def folder_with(tmp_path, text: str):
    return export_folder(tmp_path / "export", {"deals.csv": text})


def generic_import(org, folder):
    return run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})


def product_names(org) -> list[str]:
    with scopes_disabled():
        return sorted(Product.objects.filter(organization=org).values_list("name", flat=True))


def test_generic_rejected_rows_add_no_stage(org, tmp_path):
    result = generic_import(org, folder_with(tmp_path, GENERIC_CSV))

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 3
    assert [(error.line, str(error.column)) for error in result.errors] == [(2, "Amount"), (3, "Closed"), (5, "Owner")]
    assert stage_rows(org) == [("Import", "Angebot", 1, "open")]
    with scope(organization=org):
        assert Deal.objects.get().stage.name == "Angebot"


def test_generic_file_of_rejected_rows_adds_no_pipeline(org, tmp_path):
    """The only row names a new stage but has an impossible creation date, so not even the pipeline "Import" is created."""
    folder = folder_with(tmp_path, "ID,Owner,Created,Stage,Status,Closed,Amount\nG-1,Eva Roth,31.02.2017,Demo,,,100\n")

    result = generic_import(org, folder)

    assert result.counts["deals"].rejected == 1
    assert stage_rows(org) == []
    assert pipeline_names(org) == []


def test_generic_new_stages_keep_file_order_after_rejections(org, tmp_path):
    text = (
        "ID,Owner,Created,Stage,Status,Closed,Amount\n"
        "G-1,Eva Roth,01.05.2017,Demo,,,abc\n"
        "G-2,Eva Roth,02.05.2017,Angebot,,,100\n"
        "G-3,Eva Roth,03.05.2017,Verhandlung,won,10.06.2017,200\n"
        "G-4,Eva Roth,04.05.2017,Qualifiziert,lost,11.06.2017,300\n"
    )

    generic_import(org, folder_with(tmp_path, text))

    assert stage_rows(org) == [
        ("Import", "Angebot", 1, "open"),
        ("Import", "Verhandlung", 2, "open"),
        ("Import", "Qualifiziert", 3, "open"),
        ("Import", "Won", 4, "won"),
        ("Import", "Lost", 5, "lost"),
    ]


def test_generic_queries_flat_in_new_stages(org, tmp_path):
    """Ten rows with ten new stages cost the same queries as two rows with two, because one statement inserts the stages."""

    def queries_for(count: int, name: str) -> int:
        lines = [f"{name}-{number},Eva Roth,01.05.2017,{name} {number},,,100" for number in range(count)]
        folder = export_folder(tmp_path / name, {"deals.csv": "ID,Owner,Created,Stage,Status,Closed,Amount\n" + "\n".join(lines) + "\n"})
        with CaptureQueriesContext(connection) as queries:
            generic_import(org, folder)
        return len(queries)

    # The first import creates the pipeline and the owner, so it runs once before the two that are compared.
    queries_for(1, "Warm")

    assert queries_for(10, "Ten") == queries_for(2, "Two")


@pytest.mark.usefixtures("import_storage")
def test_generic_dry_run_then_import_stages(org, admin_client, django_capture_on_commit_callbacks):
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, GENERIC_CSV, GENERIC_MAPPING)

    assert run.status == ImportRunStatus.PREVIEWED
    assert run.summary["counts"]["deals"]["created"] == 1
    assert run.summary["counts"]["deals"]["rejected"] == 3
    assert [row["stage"] for row in run.preview] == ["Angebot"]
    assert stage_rows(org) == []

    import_start(admin_client, django_capture_on_commit_callbacks, run)

    assert run.status == ImportRunStatus.SUCCEEDED
    assert stage_rows(org) == [("Import", "Angebot", 1, "open")]


# D1 has an amount that is no number, D2 an impossible close date, and D4's owner clashes with D3's.
RECORD_DEALS = [
    {
        "external_id": "D1",
        "owner": "Eva Roth",
        "pipeline": "Phantom",
        "stage": "Demo",
        "product": "Ghost",
        "created_at": "2025-01-02",
        "amount": "abc",
    },
    {
        "external_id": "D2",
        "owner": "Eva Roth",
        "stage": "Pilot",
        "status": "won",
        "product": "Spectre",
        "created_at": "2025-01-02",
        "closed_at": "2025-02-30",
    },
    {"external_id": "D3", "owner": "Jörg Weiß", "stage": "Angebot", "product": "Real", "created_at": "2025-01-03"},
    {"external_id": "D4", "owner": "Joerg Weiss", "stage": "Workshop", "product": "Mirage", "created_at": "2025-01-04"},
]


def test_records_rejected_deals_create_nothing(org):
    result = run_records(org, deals=RECORD_DEALS)

    assert [(error.index, error.field) for error in result.record_errors] == [(0, "amount"), (1, "closed_at"), (3, "owner")]
    assert result.counts["deals"].created == 1
    assert result.counts["products"].created == 1
    assert product_names(org) == ["Real"]
    assert pipeline_names(org) == ["Sales"]
    assert stage_rows(org) == [("Sales", "Angebot", 1, "open")]
    with scope(organization=org):
        assert Deal.objects.get().product.name == "Real"


def test_records_invalid_product_rejects_only_its_deal(org):
    """A product name that is too long, or no text, rejects its deal instead of failing the whole call."""
    deals = [
        {"external_id": "D1", "owner": "Eva Roth", "stage": "Angebot", "product": "x" * 201, "created_at": "2025-01-03"},
        {"external_id": "D2", "owner": "Eva Roth", "stage": "Angebot", "product": {"name": "GTX"}, "created_at": "2025-01-03"},
        {"external_id": "D3", "owner": "Eva Roth", "stage": "Angebot", "product": "Real", "created_at": "2025-01-03"},
    ]

    result = run_records(org, deals=deals)

    assert [(error.index, error.field, str(error.reason)) for error in result.record_errors] == [
        (0, "product", "too long; at most 200 characters"),
        (1, "product", "invalid value; expected text or a number"),
    ]
    assert result.counts["deals"].created == 1
    assert product_names(org) == ["Real"]


def test_records_rejected_stage_changes_add_no_stage(org):
    """A move without its time, and a move of a deal rejected for its owner, leave their new stages uncreated."""
    stage_changes = [
        {"deal": "D3", "stage": "Ghost stage"},
        {"deal": "D3", "stage": "Angebot", "changed_at": "2025-01-03"},
        {"deal": "D4", "stage": "Review", "changed_at": "2025-01-05"},
    ]

    result = run_records(org, deals=RECORD_DEALS[2:], stage_changes=stage_changes)

    assert [(error.entity, error.index, error.field) for error in result.record_errors] == [
        ("stage_changes", 0, "changed_at"),
        ("deals", 1, "owner"),
    ]
    assert stage_rows(org) == [("Sales", "Angebot", 1, "open")]


def test_records_stored_deal_move_creates_its_stage(org):
    """A move of a deal stored by an earlier call creates the new stage it enters."""
    run_records(org, deals=[RECORD_DEALS[2]])

    result = run_records(org, stage_changes=[{"deal": "D3", "stage": "Vertrag", "changed_at": "2025-02-01"}])

    assert result.record_errors == []
    assert result.counts["deals"].updated == 1
    assert stage_rows(org) == [("Sales", "Angebot", 1, "open"), ("Sales", "Vertrag", 2, "open")]
    with scope(organization=org):
        assert Deal.objects.get().stage.name == "Vertrag"


def test_records_pipeline_without_stages_is_created(org):
    result = run_records(org, pipelines=[{"name": "Partner"}])

    assert result.counts["pipelines"].created == 1
    assert pipeline_names(org) == ["Partner"]


def test_records_queries_flat_in_new_names(org):
    def queries_for(count: int, name: str) -> int:
        deals = [
            {
                "external_id": f"{name}-{number}",
                "owner": "Eva Roth",
                "stage": f"{name} stage {number}",
                "product": f"{name} product {number}",
                "created_at": "2025-01-02",
            }
            for number in range(count)
        ]
        with CaptureQueriesContext(connection) as queries:
            run_records(org, deals=deals)
        return len(queries)

    queries_for(1, "Warm")

    assert queries_for(10, "Ten") == queries_for(2, "Two")


@pytest.mark.django_db
def test_api_rejected_deal_adds_no_product(org):
    with scope(organization=org):
        _token, plain = api_token_create(organization=org, name="write token", scope="write", actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE="en")
    records = [
        {"external_id": "D1", "owner": "Eva Roth", "stage": "Demo", "product": "Ghost", "amount": "abc", "created_at": "2025-01-02"},
        {"external_id": "D2", "owner": "Eva Roth", "stage": "Angebot", "product": "Real", "created_at": "2025-01-03"},
    ]

    body = client.post(reverse("api_deals"), {"records": records}, format="json").json()

    assert [(error["external_id"], error["field"]) for error in body["rejected"]] == [("D1", "amount")]
    assert body["counts"]["products"]["created"] == 1
    assert product_names(org) == ["Real"]
    assert stage_rows(org) == [("Sales", "Angebot", 1, "open")]
