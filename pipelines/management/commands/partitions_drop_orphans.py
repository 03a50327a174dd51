"""Drop the empty deal and stage-change partitions of deleted organizations (PostgreSQL)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import translation
from django.utils.translation import gettext, ngettext

from pipelines import partitions


class Command(BaseCommand):
    help = (
        "Detach and drop the empty deal and stage-change partitions left by deleted organizations. "
        "A partition that still has rows is kept and listed, and the command then exits with status 1. "
        "PostgreSQL only; run it outside a transaction. Other sessions do not wait for it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--language", choices=["de", "en"], help="Language of the output (default: German).")

    def handle(self, *args, **options):
        with translation.override(options["language"] or translation.get_language()):
            self.partitions_drop()

    def partitions_drop(self) -> None:
        if connection.vendor != "postgresql":
            raise CommandError(gettext("Partitions exist on PostgreSQL only; this database has none to drop."))
        if not connection.get_autocommit():
            raise CommandError(
                gettext("DETACH PARTITION CONCURRENTLY cannot run in a transaction; run the command outside one.")
            )
        kept_with_rows: list[str] = []
        dropped = partitions.orphans_drop(connection, kept_with_rows=kept_with_rows)
        for name in dropped:
            self.stdout.write(gettext("Dropped %(table)s") % {"table": name})
        self.stdout.write(
            ngettext("%(count)d partition dropped.", "%(count)d partitions dropped.", len(dropped))
            % {"count": len(dropped)}
        )
        for name in kept_with_rows:
            self.stdout.write(
                gettext("Kept %(table)s: it still has rows of the deleted organization. Check them before dropping it.")
                % {"table": name}
            )
        if kept_with_rows:
            raise CommandError(
                ngettext(
                    "%(count)d partition of a deleted organization still has rows and was kept.",
                    "%(count)d partitions of deleted organizations still have rows and were kept.",
                    len(kept_with_rows),
                )
                % {"count": len(kept_with_rows)},
                returncode=1,
            )
