"""CRM importers by source name; `pipelines.services.crm_import` runs them in one transaction.

Each importer is called as `importer(organization=, path=, currency=, today=, options=,
progress=)` and returns a `pipelines.importers.base.ImportResult`. `path` is a folder with
the export's files. `options` holds source-specific choices (`date_order` "dmy"/"mdy",
`mapping` for generic files), and `progress(done, total)` receives row counts.
"""

from pipelines.importers.generic import generic_import
from pipelines.importers.hubspot import hubspot_import
from pipelines.importers.maven import maven_import
from pipelines.importers.pipedrive import pipedrive_import
from pipelines.importers.salesforce import salesforce_import


def maven_import_with_options(*, organization, path, currency, today, options=None, progress=None):
    """Run the Maven importer with the `date_order` option; it reports no progress until it ends."""
    date_order = (options or {}).get("date_order", "")
    result = maven_import(organization=organization, path=path, currency=currency, today=today, date_order=date_order)
    if progress is not None:
        progress(1, 1)
    return result


IMPORTERS = {
    "maven": maven_import_with_options,
    "pipedrive": pipedrive_import,
    "hubspot": hubspot_import,
    "salesforce": salesforce_import,
    "generic": generic_import,
}
