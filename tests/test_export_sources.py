"""Every CSV and XLSX download is built by spm/exports.py, so formula escaping and numeric cells cannot be forgotten.

The test reads the source of the app packages and looks for the tools that
write spreadsheets or mark a response as one. A hit outside spm/exports.py
fails unless ALLOWED lists the file and the marker with the reason it is not
a download.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("spm", "pipelines", "goals", "coaching", "dashboards")
MARKERS = ("text/csv", "csv.writer(", "csv.DictWriter(", "openpyxl", "spreadsheetml", "StreamingHttpResponse")

# (file, marker) → why it is no download response.
ALLOWED = {
    ("spm/exports.py", "text/csv"): "the module that builds every CSV download",
    ("spm/exports.py", "csv.writer("): "the module that builds every CSV download",
    ("spm/exports.py", "openpyxl"): "the module that builds every XLSX download",
    ("spm/exports.py", "spreadsheetml"): "the XLSX content type of its downloads",
    ("spm/exports.py", "StreamingHttpResponse"): "streams the CSV downloads",
    ("pipelines/importers/formats.py", "openpyxl"): "reads uploaded XLSX files for the importers",
    ("goals/parsing.py", "openpyxl"): "reads uploaded XLSX quota files",
    ("pipelines/importers/upload_checks.py", "openpyxl"): "checks that an uploaded XLSX file has data rows",
    ("pipelines/import_files.py", "openpyxl"): "reads the header of uploaded XLSX files to tell which files an import uses",
    ("pipelines/upload_limits.py", "openpyxl"): "names openpyxl in the docs of the unpacked-size check of uploads",
    ("goals/attainment_report.py", "csv.writer("): "text that `manage.py kpi_report` prints, not an HTTP response",
    ("dashboards/management/commands/kpi_report.py", "csv.writer("): "the command's CSV output on stdout",
}


def marker_hits() -> set[tuple[str, str]]:
    hits = set()
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if "/migrations/" in relative:
                continue
            text = path.read_text(encoding="utf-8")
            hits.update((relative, marker) for marker in MARKERS if marker in text)
    return hits


def test_spreadsheets_written_only_in_exports_module():
    unexpected = sorted(marker_hits() - ALLOWED.keys())

    assert unexpected == [], "build CSV and XLSX downloads with spm.exports.csv_response or xlsx_response"


def test_export_allow_list_has_no_stale_entries():
    stale = sorted(ALLOWED.keys() - marker_hits())

    assert stale == [], "remove allow-list entries whose file no longer contains the marker"
