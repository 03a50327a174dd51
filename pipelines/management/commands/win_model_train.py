"""`manage.py win_model_train`: train an organization's win-probability model now and print its held-out metrics."""

import datetime as dt
import zoneinfo

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_scopes import scope

from pipelines.models import WinModelStatus
from pipelines.scoring.services import win_model_run_create, win_model_train
from spm.fiscal import local_midnight
from spm.models import Organization


class Command(BaseCommand):
    help = (
        "Train the win-probability model of one organization in this process, score its open deals and "
        "print the Brier score and AUC on the held-out split. Exits with status 1 when no model was trained."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            help="Score the open deals as of the end of this day (YYYY-MM-DD) in the organization's time zone; "
            "default: now.",
        )

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']} not found; check the slug.")
        now = None
        if options["as_of"] is not None:
            time_zone = zoneinfo.ZoneInfo(organization.time_zone)
            now = local_midnight(options["as_of"] + dt.timedelta(days=1), time_zone) - dt.timedelta(seconds=1)

        with translation.override(organization.language), scope(organization=organization):
            run, created = win_model_run_create(organization=organization, actor=None)
            if not created:
                raise CommandError(
                    gettext("Training version %(version)d is already queued or running; try again when it has finished.")
                    % {"version": run.version}
                )
            started = timezone.now()
            run = win_model_train(run=run, now=now)
            seconds = (timezone.now() - started).total_seconds()
            if run.status != WinModelStatus.SUCCEEDED:
                raise CommandError(
                    gettext("No model trained (%(status)s): %(won)d won and %(lost)d lost closed deals. %(message)s")
                    % {
                        "status": run.get_status_display(),
                        "won": run.closed_won_count,
                        "lost": run.closed_lost_count,
                        "message": run.message,
                    },
                    returncode=1,
                )
            self.stdout.write(
                gettext(
                    "Model version %(version)d trained in %(seconds).1f s: %(train)d training deals (%(train_rows)d snapshots) "
                    "closed before %(cut)s, %(test)d test deals (%(test_rows)d snapshots).\n"
                    "Held-out Brier score %(brier).4f, AUC %(auc)s; %(scored)d open deals scored."
                )
                % {
                    "version": run.version,
                    "seconds": seconds,
                    "train": run.n_train,
                    "train_rows": run.n_train_rows,
                    "cut": run.cut_on.isoformat(),
                    "test": run.n_test,
                    "test_rows": run.n_test_rows,
                    "brier": run.brier_score,
                    "auc": f"{run.auc:.4f}" if run.auc is not None else "–",
                    "scored": run.scored_count,
                }
            )
