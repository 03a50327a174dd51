"""The Maven loader script, which uses only the documented API, against a file import of the same slice."""

import shutil
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django_scopes import scope

from dashboards.analytics.periods import parse_period_or_range
from dashboards.management.commands.kpi_report import kpi_report_data, metric_report_data
from integrations.api.services import api_token_create
from pipelines.services import crm_import
from spm.models import Organization

sys.path.insert(0, str(Path(settings.BASE_DIR) / "scripts"))
import api_load_maven  # noqa: E402

MAVEN = Path(settings.BASE_DIR) / "demo" / "data" / "maven-crm"
SLICE = 300


def without_names(report: dict) -> dict:
    """Drop what differs between two organizations by name only: the slug and the organization row's subject."""
    report = {key: value for key, value in report.items() if key != "organization"}
    report["rows"] = [{key: value for key, value in row.items() if key != "subject"} for row in report["rows"]]
    return report


@pytest.fixture
def maven_slice(tmp_path) -> Path:
    """The Maven folder with only the first SLICE opportunities."""
    for name in ("sales_teams.csv", "accounts.csv", "products.csv"):
        shutil.copy(MAVEN / name, tmp_path / name)
    lines = (MAVEN / "sales_pipeline.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "sales_pipeline.csv").write_text("".join(lines[: SLICE + 1]), encoding="utf-8")
    return tmp_path


@pytest.mark.django_db(transaction=True)
def test_api_load_matches_file_import(live_server, maven_slice):
    by_file = Organization.objects.create(name="By file", slug="by-file", currency="USD")
    by_api = Organization.objects.create(name="By API", slug="by-api", currency="USD")
    with scope(organization=by_file):
        crm_import(organization=by_file, source="maven", path=maven_slice, currency="USD")
    with scope(organization=by_api):
        _token, plain = api_token_create(organization=by_api, name="loader", scope="write", actor=None)

    rejected = api_load_maven.load(base_url=f"{live_server.url}/api/v1", token=plain, folder=maven_slice)

    assert rejected == []
    client = api_load_maven.ApiClient(f"{live_server.url}/api/v1", plain)
    read_back = client.request("GET", "/kpi-report/?period=2017&by=organization")
    period = parse_period_or_range("2017", 1)
    for grain in ("organization", "rep", "team", "territory"):
        assert without_names(kpi_report_data(by_api, period, grain)) == without_names(kpi_report_data(by_file, period, grain)), grain
    for metric in ("funnel", "time_in_stage"):
        assert without_names(metric_report_data(by_api, period, metric, None)) == without_names(
            metric_report_data(by_file, period, metric, None)
        ), metric
    assert without_names(read_back) == without_names(kpi_report_data(by_file, period, "organization"))
    assert read_back["rows"][0]["won_count"] > 0
