"""The Maven importer matches deal_stage ignoring case and surrounding spaces, as every other source does."""

import io
import shutil
from pathlib import Path

from django.core.management import call_command
from django_scopes import scope

from pipelines.models import Deal

SMALL_EXPORT = Path(__file__).parent / "data" / "maven_small"


def test_import_crm_maven_stage_case_and_spaces(org, tmp_path):
    folder = tmp_path / "maven"
    shutil.copytree(SMALL_EXPORT, folder)
    pipeline = folder / "sales_pipeline.csv"
    text = pipeline.read_text(encoding="utf-8")
    text = text.replace("Cancity,Won,", "Cancity,WON ,").replace("Codehow,Lost,", "Codehow, lost,")
    pipeline.write_text(text, encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command("import_crm", str(folder), org="acme", source="maven", language="en", stdout=stdout, stderr=stderr)

    assert stderr.getvalue() == ""
    with scope(organization=org):
        stages = dict(Deal.objects.filter(external_id__in=["WON00001", "LOST0001"]).values_list("external_id", "stage__name"))
    assert stages == {"WON00001": "Won", "LOST0001": "Lost"}
