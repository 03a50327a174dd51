"""Keep a deleted organization's partitions and check deletes that name a deal partition.

Dropping a partition locked the partitioned parent ACCESS EXCLUSIVE until the deleting
transaction ended, so deleting one organization made every other organization's deal
queries wait (see pipelines.partitions). The partitions of deleted organizations are
now dropped by the `partitions_drop_orphans` command.

Going back is not supported, as for migration 0011: a reverse that did nothing would mark
the migration unapplied while its functions stay.
"""

from django.db import migrations

from pipelines.partitions import functions_replace


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0011_deal_partitions"),
    ]

    operations = [
        migrations.RunPython(functions_replace),
    ]
