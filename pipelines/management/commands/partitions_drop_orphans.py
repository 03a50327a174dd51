"""Drop the empty deal and stage-change partitions of deleted organizations (PostgreSQL)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils.translation import gettext, ngettext

from pipelines import partitions


class Command(BaseCommand):
    help = (
        "Detach and drop the empty deal and stage-change partitions left by deleted organizations. "
        "PostgreSQL only; run it outside a transaction. Other sessions do not wait for it."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(gettext("Partitions exist on PostgreSQL only; this database has none to drop."))
        if not connection.get_autocommit():
            raise CommandError(
                gettext("DETACH PARTITION CONCURRENTLY cannot run in a transaction; run the command outside one.")
            )
        dropped = partitions.orphans_drop(connection)
        for name in dropped:
            self.stdout.write(gettext("Dropped %(table)s") % {"table": name})
        self.stdout.write(
            ngettext("%(count)d partition dropped.", "%(count)d partitions dropped.", len(dropped))
            % {"count": len(dropped)}
        )
