"""CRM importers by source name; `pipelines.services.crm_import` runs them in one transaction.

Each importer is called as `importer(organization=, path=, currency=, today=)` and
returns a `pipelines.importers.base.ImportResult`.
"""

from pipelines.importers.maven import maven_import

IMPORTERS = {
    "maven": maven_import,
}
