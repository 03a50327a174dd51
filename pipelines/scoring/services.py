"""Writes of the win-probability model: start a training run, train and evaluate it, score open deals.

A run goes queued → training → trained (or "too little history", or failed). Training
splits the organization's closed deals in time at a cut date: the earlier 80 % by close
date train, and the rest test. The model is fit on the training deals' snapshots and
measured on the test deals' snapshots (Brier score, AUC, calibration). Then the same
recipe is fit again on all closed deals, and that refit scores every open deal.

A run with `as_of` is point-in-time, as a backtest needs. Only deals closed by that
moment train, and their features use only the stage changes and activities recorded by
then. The deals open at that moment are scored.
"""

import datetime as dt
import logging
import math
import zoneinfo
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from pipelines.models import Deal, DealScore, DealStatus, WinModel, WinModelStatus
from pipelines.scoring import features, model
from spm.audit import audit_record
from spm.fiscal import local_midnight
from spm.models import Organization, User

logger = logging.getLogger(__name__)

# Below these counts the product shows no score: with fewer closed deals the held-out
# split is too small to tell a useful model from noise.
MIN_CLOSED_DEALS = 200
MIN_DEALS_PER_CLASS = 30
TEST_SHARE = Decimal("0.2")
# Training reads about this many most recently closed deals (more when several closed at the
# same instant as the last one kept), which bounds memory and time.
MAX_TRAINING_DEALS = 50_000
TRAINING_STEPS = 5
# A queued or running run older than this is taken as abandoned (worker stopped).
STALE_RUN_AFTER = dt.timedelta(hours=2)
RUNS_KEPT = 30
SCORE_BATCH_SIZE = 2000
# Codes stored in WinModel.message for failures the page explains in the reader's language;
# any other message is an exception's text.
FAILURE_ABANDONED = "abandoned"
FAILURE_BROKER = "broker-unreachable"


@dataclass(frozen=True)
class TimeSplit:
    cut_on: dt.date | None
    train: list[features.DealFacts]
    test: list[features.DealFacts]


def win_model_enqueue(*, organization: Organization, actor: User | None) -> WinModel:
    """Create a queued training run and send its task after commit; return the busy run if one exists."""
    with transaction.atomic():
        run, created = win_model_run_create(organization=organization, actor=actor)
        if created:
            run_id = run.pk
            transaction.on_commit(lambda: _task_send(organization_id=organization.pk, win_model_id=run_id))
    return run


def win_model_run_create(*, organization: Organization, actor: User | None) -> tuple[WinModel, bool]:
    """Create a queued training run; return (run, True), or (the busy run, False) when one is queued or training.

    A run still queued or training after STALE_RUN_AFTER is marked failed first, so a
    stopped worker does not block training for good.
    """
    now = timezone.now()
    with transaction.atomic():
        busy = WinModel.objects.filter(status__in=(WinModelStatus.QUEUED, WinModelStatus.RUNNING))
        busy.filter(created_at__lt=now - STALE_RUN_AFTER).update(
            status=WinModelStatus.FAILED, trained_at=now, message=FAILURE_ABANDONED
        )
        existing = busy.filter(created_at__gte=now - STALE_RUN_AFTER).first()
        # Already training: a second click must not start a second run.
        if existing is not None:
            return existing, False

        version = (WinModel.objects.aggregate(latest=Max("version"))["latest"] or 0) + 1
        run = WinModel.objects.create(
            organization=organization, version=version, requested_by=actor, progress_total=TRAINING_STEPS
        )
        if actor is not None:
            audit_record(
                organization=organization,
                actor=actor,
                action="win_model.train_requested",
                object_type="win_model",
                object_id=run.pk,
                after={"version": version},
            )
    logger.info("Win model training queued organization_id=%s win_model_id=%s", organization.pk, run.pk)
    return run, True


def _task_send(*, organization_id: int, win_model_id: int) -> None:
    from pipelines.tasks import win_model_train

    try:
        win_model_train.delay(organization_id=organization_id, win_model_id=win_model_id)
    except BrokerOperationalError:
        WinModel.objects.filter(pk=win_model_id, status=WinModelStatus.QUEUED).update(
            status=WinModelStatus.FAILED, trained_at=timezone.now(), message=FAILURE_BROKER
        )
        logger.warning(
            "Win model task not queued, broker unreachable organization_id=%s win_model_id=%s",
            organization_id,
            win_model_id,
        )


def win_model_train(*, run: WinModel, as_of: dt.datetime | None = None) -> WinModel:
    """Train, evaluate and store the run, then score the open deals; returns the run as stored.

    `as_of` makes the run point-in-time (see the module docstring). Without it, every
    closed deal trains and the deals open now are scored at the current time. Only a
    queued run is trained, so a redelivered task changes nothing. An error marks the run
    failed and keeps the previous model and its scores.
    """
    now = as_of or timezone.now()
    claimed = WinModel.objects.filter(pk=run.pk, status=WinModelStatus.QUEUED).update(
        status=WinModelStatus.RUNNING, started_at=timezone.now(), progress_done=0, progress_total=TRAINING_STEPS
    )
    # Redelivered or already finished: nothing to do.
    if not claimed:
        run.refresh_from_db()
        return run

    logger.info("Win model training started organization_id=%s win_model_id=%s", run.organization_id, run.pk)
    try:
        _train(run, now=now, as_of=as_of)
    except Exception as error:
        logger.exception("Win model training failed organization_id=%s win_model_id=%s", run.organization_id, run.pk)
        WinModel.objects.filter(pk=run.pk).update(
            status=WinModelStatus.FAILED, trained_at=timezone.now(), message=f"{type(error).__name__}: {error}"[:2000]
        )
    run.refresh_from_db()
    logger.info(
        "Win model training finished organization_id=%s win_model_id=%s status=%s n_train=%s n_test=%s scored=%s",
        run.organization_id,
        run.pk,
        run.status,
        run.n_train,
        run.n_test,
        run.scored_count,
    )
    return run


def _progress(run: WinModel, done: int, **fields) -> None:
    # Written outside any transaction, so a reloaded admin page shows the step at once.
    WinModel.objects.filter(pk=run.pk).update(progress_done=done, **fields)


def _train(run: WinModel, *, now: dt.datetime, as_of: dt.datetime | None) -> None:
    organization = run.organization
    facts = training_facts_load(as_of=as_of)
    won_count = sum(1 for deal in facts if deal.outcome == 1)
    lost_count = len(facts) - won_count
    _progress(run, 1, closed_won_count=won_count, closed_lost_count=lost_count)
    if not history_is_sufficient(won=won_count, lost=lost_count):
        _finish_insufficient(run)
        return

    split = time_split(facts, time_zone=zoneinfo.ZoneInfo(organization.time_zone))
    owners = features.OwnerHistory([(deal.owner_id, deal.closed_at, deal.outcome == 1) for deal in facts])
    anchor = local_midnight(
        min(deal.created_at for deal in facts).astimezone(zoneinfo.ZoneInfo(organization.time_zone)).date(),
        zoneinfo.ZoneInfo(organization.time_zone),
    )
    train_rows = features.training_snapshots(split.train, owners, anchor=anchor)
    test_rows = features.training_snapshots(split.test, owners, anchor=anchor)
    _progress(
        run,
        2,
        cut_on=split.cut_on,
        n_train=len(split.train),
        n_test=len(split.test),
        n_train_rows=len(train_rows),
        n_test_rows=len(test_rows),
    )
    # Both outcomes must occur on both sides of the cut, or neither fit nor AUC is defined.
    if len({row.outcome for row in train_rows}) < 2 or len({row.outcome for row in test_rows}) < 2:
        _finish_insufficient(run)
        return

    held_out = model.model_fit(train_rows)
    predicted = [float(p) for p in model.probabilities(test_rows, held_out)]
    outcomes = [row.outcome for row in test_rows]
    _progress(
        run,
        3,
        brier_score=model.brier_score(predicted, outcomes),
        auc=model.auc_score(predicted, outcomes),
        calibration=[band.as_json() for band in model.calibration_bands(predicted, outcomes)],
    )

    final = model.model_fit(train_rows + test_rows)
    _progress(run, 4, parameters=final.as_json())

    scored = deal_scores_replace(run=run, parameters=final, now=now, as_of=as_of)
    WinModel.objects.filter(pk=run.pk).update(
        status=WinModelStatus.SUCCEEDED, progress_done=TRAINING_STEPS, trained_at=timezone.now(), scored_count=scored
    )
    _runs_prune(keep=run)


def closed_deals(*, as_of: dt.datetime | None = None) -> QuerySet[Deal]:
    """Return the won and lost deals with a close time that training may read; with `as_of`, those closed by then."""
    closed = Deal.objects.filter(
        status__in=(DealStatus.WON, DealStatus.LOST), closed_at__isnull=False, deleted_at__isnull=True
    )
    if as_of is not None:
        closed = closed.filter(closed_at__lte=as_of)
    return closed


def history_is_sufficient(*, won: int, lost: int) -> bool:
    """Return whether `won` and `lost` closed deals reach MIN_CLOSED_DEALS and MIN_DEALS_PER_CLASS."""
    return won + lost >= MIN_CLOSED_DEALS and min(won, lost) >= MIN_DEALS_PER_CLASS


def closed_deal_counts(*, as_of: dt.datetime | None = None) -> tuple[int, int]:
    """Return (won, lost) among `closed_deals(as_of=as_of)`, without the MAX_TRAINING_DEALS bound."""
    counts = closed_deals(as_of=as_of).aggregate(
        won=Count("pk", filter=Q(status=DealStatus.WON)), lost=Count("pk", filter=Q(status=DealStatus.LOST))
    )
    return counts["won"], counts["lost"]


def as_of_end(day: dt.date, time_zone: dt.tzinfo) -> dt.datetime:
    """Return the last second of `day` in `time_zone`: the moment a run "as of `day`" uses."""
    return local_midnight(day + dt.timedelta(days=1), time_zone) - dt.timedelta(seconds=1)


def earliest_sufficient_day(time_zone: dt.tzinfo) -> dt.date | None:
    """Return the first local day by whose end the closed deals reach the training minimums; None if they never do.

    Reads the closed deals in close order until the minimums are met, so a run as of
    this day or later passes `history_is_sufficient`.
    """
    won = lost = 0
    rows = closed_deals().order_by("closed_at", "pk").values_list("closed_at", "status")
    for closed_at, status in rows.iterator(chunk_size=5000):
        if status == DealStatus.WON:
            won += 1
        else:
            lost += 1
        if history_is_sufficient(won=won, lost=lost):
            day = closed_at.astimezone(time_zone).date()
            # A close in the last second of a day only counts for a run as of the next day.
            return day if closed_at <= as_of_end(day, time_zone) else day + dt.timedelta(days=1)
    return None


def training_facts_load(*, as_of: dt.datetime | None = None) -> list[features.DealFacts]:
    """Load the closed deals training reads, at most about MAX_TRAINING_DEALS, as known at `as_of`."""
    closed = closed_deals(as_of=as_of)
    # A close-time bound rather than a list of ids, which SQLite rejects beyond 32,766 parameters.
    oldest_kept = closed.order_by("-closed_at").values_list("closed_at", flat=True)[MAX_TRAINING_DEALS - 1 : MAX_TRAINING_DEALS]
    if oldest_kept:
        closed = closed.filter(closed_at__gte=oldest_kept[0])
    return features.deal_facts_load(closed, known_at=as_of)


def time_split(facts: list[features.DealFacts], *, time_zone: dt.tzinfo) -> TimeSplit:
    """Split closed deals at a local close date: deals closed before it train, the others test.

    The cut date is the local close date of the deal at position ⌊n × 0.8⌋ in close
    order (0-based), so about the latest 20 % test. Deals sharing that date all test.
    """
    ordered = sorted(facts, key=lambda deal: (deal.closed_at, deal.pk))
    if not ordered:
        return TimeSplit(cut_on=None, train=[], test=[])
    position = math.floor(len(ordered) * (1 - TEST_SHARE))
    cut_on = ordered[min(position, len(ordered) - 1)].closed_at.astimezone(time_zone).date()
    train = [deal for deal in ordered if deal.closed_at.astimezone(time_zone).date() < cut_on]
    test = [deal for deal in ordered if deal.closed_at.astimezone(time_zone).date() >= cut_on]
    return TimeSplit(cut_on=cut_on, train=train, test=test)


def _finish_insufficient(run: WinModel) -> None:
    with transaction.atomic():
        # No current model any more: scores of an earlier model would be shown as if current.
        DealScore.objects.all().delete()
        WinModel.objects.filter(pk=run.pk).update(
            status=WinModelStatus.INSUFFICIENT, progress_done=TRAINING_STEPS, trained_at=timezone.now(), scored_count=0
        )
    _runs_prune(keep=run)


def deal_scores_replace(
    *, run: WinModel, parameters: model.ModelParameters, now: dt.datetime, as_of: dt.datetime | None = None
) -> int:
    """Score every open deal at `now` and replace the organization's scores in one transaction; return the count.

    With `as_of` (`now` is then the same moment), the deals open at that moment are
    scored as recorded by then. A deal whose stage at `now` is not an open stage
    (inconsistent history, or closed then and reopened since) gets no score.
    """
    open_deals = Deal.objects.filter(status=DealStatus.OPEN, deleted_at__isnull=True)
    if as_of is not None:
        # Created by then and not closed by then. deal_facts_load sets them back to their state then.
        open_deals = Deal.objects.filter(created_at__lte=as_of, deleted_at__isnull=True).filter(
            Q(status=DealStatus.OPEN) | Q(closed_at__gt=as_of)
        )
    all_closed = closed_deals(as_of=as_of).values_list("owner_id", "closed_at", "status")
    owners = features.OwnerHistory([(owner, closed_at, status == DealStatus.WON) for owner, closed_at, status in all_closed])
    snapshots = [
        snapshot
        for facts in features.deal_facts_load(open_deals, known_at=as_of)
        if (snapshot := features.snapshot_at(facts, now, owners)) is not None
    ]
    predicted = model.probabilities(snapshots, parameters)
    explanations = model.factors_explain(snapshots, parameters)

    scores = [
        DealScore(
            organization_id=run.organization_id,
            deal_id=snapshot.deal_id,
            model=run,
            probability=_probability_decimal(probability),
            factors=[factor.as_json() for factor in factors],
            scored_at=now,
        )
        for snapshot, probability, factors in zip(snapshots, predicted, explanations, strict=True)
    ]
    with transaction.atomic():
        DealScore.objects.all().delete()
        DealScore.objects.bulk_create(scores, batch_size=SCORE_BATCH_SIZE)
    _progress(run, TRAINING_STEPS)
    return len(scores)


def _probability_decimal(probability: float) -> Decimal:
    value = Decimal(repr(float(probability))).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return min(Decimal("1"), max(Decimal("0"), value))


def _runs_prune(*, keep: WinModel) -> None:
    """Delete finished runs beyond the newest RUNS_KEPT, never `keep` nor the run whose scores are shown."""
    stale = list(
        WinModel.objects.exclude(pk=keep.pk)
        .exclude(status__in=(WinModelStatus.QUEUED, WinModelStatus.RUNNING))
        .exclude(scores__isnull=False)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[RUNS_KEPT:]
    )
    if stale:
        WinModel.objects.filter(pk__in=stale).delete()


def win_model_train_all() -> int:
    """Queue a training run for every organization with closed deals; return how many were queued.

    Runs across tenants from the daily beat job, so it lists organizations without a
    scope and opens each one's scope in turn.
    """
    from django_scopes import scope, scopes_disabled

    # Cross-tenant scheduler: it only reads which organizations have closed deals.
    with scopes_disabled():
        organization_ids = set(
            Deal.objects.filter(status__in=(DealStatus.WON, DealStatus.LOST), deleted_at__isnull=True)
            .values_list("organization_id", flat=True)
            .distinct()
        )
        organizations = list(Organization.objects.filter(pk__in=organization_ids).order_by("pk"))
    for organization in organizations:
        with scope(organization=organization):
            win_model_enqueue(organization=organization, actor=None)
    return len(organizations)
