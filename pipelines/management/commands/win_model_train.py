"""`manage.py win_model_train`: train an organization's win-probability model now and print its held-out metrics."""

import datetime as dt
import time
import zoneinfo

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext
from django_scopes import scope

from dashboards.templatetags.spm_format import format_fixed, format_number
from pipelines.models import WinModel, WinModelStatus
from pipelines.scoring.services import (
    MIN_CLOSED_DEALS,
    MIN_DEALS_PER_CLASS,
    as_of_end,
    closed_deal_counts,
    earliest_sufficient_day,
    history_is_sufficient,
    win_model_run_create,
    win_model_train,
)
from spm.models import Organization


def training_summary(run: WinModel, seconds: float) -> str:
    """Format the summary of a trained run in the active language, numbers and cut date included."""
    return gettext(
        "Model version %(version)d trained in %(seconds)s s: %(train)s training deals (%(train_rows)s snapshots) "
        "closed before %(cut)s, %(test)s test deals (%(test_rows)s snapshots).\n"
        "Held-out Brier score %(brier)s, AUC %(auc)s; %(scored)s open deals scored."
    ) % {
        "version": run.version,
        "seconds": format_fixed(seconds, 1),
        "train": format_number(run.n_train),
        "train_rows": format_number(run.n_train_rows),
        "cut": date_format(run.cut_on, "SHORT_DATE_FORMAT"),
        "test": format_number(run.n_test),
        "test_rows": format_number(run.n_test_rows),
        "brier": format_fixed(run.brier_score, 4),
        # The AUC is undefined when the test deals are all won or all lost.
        "auc": format_fixed(run.auc, 4) if run.auc is not None else "–",
        "scored": format_number(run.scored_count),
    }


class Command(BaseCommand):
    help = (
        "Train the win-probability model of one organization in this process, score its open deals and "
        "print the Brier score and AUC on the held-out split. Exits with status 1 when no model was trained."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument(
            "--as-of",
            help="Train and score as of the end of this day (YYYY-MM-DD) in the organization's time zone: "
            "only deals closed by then train, only stage changes and activities up to then count, and the "
            "deals open then are scored. Default: now, with every closed deal.",
        )
        parser.add_argument(
            "--language", choices=["de", "en"], help="Language of the output (default: the organization's)."
        )

    def handle(self, *args, **options):
        language = options["language"]
        # Until the organization is known, messages use --language or the default language.
        with translation.override(language or translation.get_language()):
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(
                    gettext("Organization %(slug)s not found; check --org against the slug in the URL /o/<slug>/.")
                    % {"slug": options["org"]}
                )
        time_zone = zoneinfo.ZoneInfo(organization.time_zone)
        as_of_day = as_of = None
        if options["as_of"] is not None:
            # Parsed here rather than by argparse, so the error follows --language or the organization's language.
            with translation.override(language or organization.language):
                as_of_day = _date_option(options["as_of"])
            as_of = as_of_end(as_of_day, time_zone)

        with translation.override(language or organization.language), scope(organization=organization):
            if as_of is not None:
                # Checked before a run exists, because a run with too little history deletes the current scores.
                _history_check(as_of_day, as_of=as_of, time_zone=time_zone)
            run, created = win_model_run_create(organization=organization, actor=None)
            if not created:
                raise CommandError(
                    gettext("Training version %(version)d is already queued or running; try again when it has finished.")
                    % {"version": run.version}
                )
            started = time.monotonic()
            run = win_model_train(run=run, as_of=as_of)
            seconds = time.monotonic() - started
            if run.status != WinModelStatus.SUCCEEDED:
                message = gettext(
                    "No model trained (%(status)s): %(won)s won and %(lost)s lost closed deals. %(message)s"
                ) % {
                    "status": run.get_status_display(),
                    "won": format_number(run.closed_won_count),
                    "lost": format_number(run.closed_lost_count),
                    "message": run.message,
                }
                # A run without a message would end the line in a space.
                raise CommandError(message.strip(), returncode=1)
            self.stdout.write(training_summary(run, seconds))


def _date_option(value: str) -> dt.date:
    """Parse --as-of (YYYY-MM-DD); raise CommandError with a translated message for an invalid date."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            gettext("invalid date %(value)r; use YYYY-MM-DD, e.g. 2017-12-31") % {"value": value}
        ) from None


def _history_check(day: dt.date, *, as_of: dt.datetime, time_zone: dt.tzinfo) -> None:
    """Raise CommandError when too few deals closed by `as_of` to train, naming the earliest day with enough."""
    won, lost = closed_deal_counts(as_of=as_of)
    if history_is_sufficient(won=won, lost=lost):
        return

    problem = gettext(
        "Too few closed deals to train as of %(date)s: %(found)s on or before that day (%(won)s won, %(lost)s lost). "
        "Training needs at least %(minimum)s, with at least %(per_class)s won and %(per_class)s lost."
    ) % {
        "date": date_format(day, "SHORT_DATE_FORMAT"),
        "found": format_number(won + lost),
        "won": format_number(won),
        "lost": format_number(lost),
        "minimum": format_number(MIN_CLOSED_DEALS),
        "per_class": format_number(MIN_DEALS_PER_CLASS),
    }
    earliest = earliest_sufficient_day(time_zone)
    if earliest is None:
        fix = gettext(
            "No later --as-of date has enough either, because all closed deals of the organization together are "
            "too few. Import more closed deals first."
        )
    else:
        # ISO format, because the value goes back into --as-of.
        fix = gettext("Choose a later --as-of date, %(earliest)s at the earliest.") % {"earliest": earliest.isoformat()}
    raise CommandError(f"{problem} {fix}")
