"""Check only the changed references of updated deals and stage changes.

The UPDATE triggers of migration 0008 checked and locked every reference of every
updated row, so saving a deal's amount ran a few queries and locked its stage, owner
and account. They now read the statement's old rows too and check only the rows whose
references changed, as a foreign key does. See pipelines.reference_checks.
"""

from django.db import migrations

from pipelines.reference_checks import checks_replace


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0008_statement_reference_checks"),
    ]

    # The checks of 0008 work with the same schema, so going back keeps the current ones.
    operations = [migrations.RunPython(checks_replace, migrations.RunPython.noop)]
