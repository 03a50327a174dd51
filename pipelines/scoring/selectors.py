"""Reads of the win-probability model: the current model, deal scores and the model's status for pages."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.utils.formats import date_format
from django.utils.translation import gettext

from dashboards.templatetags.spm_format import format_number
from pipelines.models import DealScore, DealStatus, WinModel, WinModelStatus
from pipelines.scoring.wording import column_description, factors_text_many
from spm.models import Organization

FINISHED = (WinModelStatus.SUCCEEDED, WinModelStatus.INSUFFICIENT)


def win_model_latest() -> WinModel | None:
    """Return the organization's newest run in any status (the admin page shows its progress)."""
    return WinModel.objects.select_related("requested_by").order_by("-created_at", "-id").first()


def win_model_current() -> WinModel | None:
    """Return the run that decides what pages show: the newest trained or "too little history" run.

    None when no run has finished yet. Failed, queued and running runs never replace it.
    """
    return WinModel.objects.filter(status__in=FINISHED).order_by("-created_at", "-id").first()


def win_probabilities(*, organization: Organization, deal_ids: Iterable[int]) -> dict[int, Decimal]:
    """Return {deal id: win probability 0..1} for those of `deal_ids` that are open and have a current score.

    Deals without a score (closed, deleted in the CRM, too little history, or not scored
    yet) are missing from the result, so callers fall back to the stage default. Runs in
    the caller's organization scope; `organization` guards against a mismatched scope.
    """
    ids = list(deal_ids)
    if not ids:
        return {}
    rows = DealScore.objects.filter(
        organization=organization,
        deal_id__in=ids,
        deal__status=DealStatus.OPEN,
        deal__deleted_at__isnull=True,
    ).values_list("deal_id", "probability")
    return dict(rows)


def deal_score_get(*, deal_id: int) -> DealScore | None:
    """Return the deal's current score, or None."""
    return DealScore.objects.select_related("model").filter(deal_id=deal_id, deal__status=DealStatus.OPEN).first()


@dataclass(frozen=True)
class WinModelPage:
    latest: WinModel | None
    current: WinModel | None
    insufficient_reason: str
    failure_text: str
    calibration_chart: dict | None
    calibration_rows: list[dict]
    weights: list[tuple[str, float]]


def win_model_page(*, organization: Organization) -> WinModelPage:
    """Collect what the admin page shows: the newest run's progress and the current model's metrics."""
    from pipelines.scoring.charts import calibration_chart

    latest = win_model_latest()
    current = win_model_current()
    is_trained = current is not None and current.status == WinModelStatus.SUCCEEDED
    return WinModelPage(
        latest=latest,
        current=current,
        insufficient_reason=win_model_insufficient_reason(current) if current is not None else "",
        failure_text=win_model_failure_text(latest) if latest is not None else "",
        calibration_chart=calibration_chart(current.calibration) if is_trained and current.calibration else None,
        calibration_rows=current.calibration if is_trained else [],
        weights=win_model_weights(run=current, currency=organization.currency) if is_trained else [],
    )


def win_model_insufficient_reason(run: WinModel) -> str:
    """Say why a "too little history" run trained no model, with the counts and the minimums; "" otherwise."""
    from pipelines.scoring import services

    if run.status != WinModelStatus.INSUFFICIENT:
        return ""
    closed = run.closed_won_count + run.closed_lost_count
    if closed < services.MIN_CLOSED_DEALS or min(run.closed_won_count, run.closed_lost_count) < services.MIN_DEALS_PER_CLASS:
        return gettext(
            "Too little history for a win probability: %(won)s won and %(lost)s lost deals are closed. "
            "The model needs at least %(minimum)s closed deals, with at least %(per_class)s won and %(per_class)s lost."
        ) % {
            "won": format_number(run.closed_won_count),
            "lost": format_number(run.closed_lost_count),
            "minimum": format_number(services.MIN_CLOSED_DEALS),
            "per_class": format_number(services.MIN_DEALS_PER_CLASS),
        }
    return gettext(
        "Too little history for a win probability: the deals closed before or after %(date)s are all won or all lost, "
        "so the model cannot be trained and tested on both outcomes."
    ) % {"date": date_format(run.cut_on, "SHORT_DATE_FORMAT") if run.cut_on else "–"}


def win_model_failure_text(run: WinModel) -> str:
    """Explain a failed run in the reader's language; "" for any other status."""
    from pipelines.scoring import services

    if run.status != WinModelStatus.FAILED:
        return ""
    if run.message == services.FAILURE_ABANDONED:
        return gettext("The training stopped without finishing, probably because the worker was restarted. Start it again.")
    if run.message == services.FAILURE_BROKER:
        return gettext("The training could not be queued because the task queue is unreachable. Start it again later.")
    return gettext("The training failed: %(error)s. The previous model stays in use.") % {"error": run.message}


def deal_scores_attach(deals: Iterable, *, currency: str, max_reasons: int | None = None) -> None:
    """Set `win_probability` (Decimal or None) and `win_reasons` (texts) on each deal; one query.

    `max_reasons` words only each score's largest factors, for pages that show fewer than all.
    """
    deals = list(deals)
    for deal in deals:
        deal.win_probability = None
        deal.win_reasons = []
    if not deals:
        return

    # The score and its factors only, without building DealScore instances.
    scores = {
        deal_id: (probability, factors)
        for deal_id, probability, factors in DealScore.objects.filter(
            deal_id__in=[deal.pk for deal in deals], deal__status=DealStatus.OPEN
        ).values_list("deal_id", "probability", "factors")
    }
    scored = [deal for deal in deals if deal.pk in scores]
    reasons = factors_text_many([scores[deal.pk][1] for deal in scored], currency=currency, limit=max_reasons)
    for deal, texts in zip(scored, reasons, strict=True):
        deal.win_probability = scores[deal.pk][0]
        deal.win_reasons = texts


MODEL_WEIGHTS_LISTED = 12


def win_model_weights(*, run: WinModel, currency: str, limit: int = MODEL_WEIGHTS_LISTED) -> list[tuple[str, float]]:
    """Return (column in words, coefficient) for the model's `limit` largest coefficients by size.

    Coefficients are in log-odds per standard deviation of the column, so their sizes
    compare across features; a positive one raises the probability.
    """
    from pipelines.models import Product, Stage

    columns = run.parameters.get("columns", [])
    names = {
        "stage": {str(pk): name for pk, name in Stage.objects.values_list("pk", "name")},
        "product": {str(pk): name for pk, name in Product.objects.values_list("pk", "name")},
    }
    ranked = sorted(columns, key=lambda column: -abs(column["coefficient"]))[:limit]
    edges = run.parameters.get("amount_edges", [])
    return [
        (column_description(column, names=names, edges=edges, currency=currency), column["coefficient"])
        for column in ranked
    ]
