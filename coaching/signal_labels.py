"""Names of the coaching signal metrics, rendered in the active language.

A label is built from the metric and language-neutral parameters: the names of a stage,
of the next stage and of the pipeline, which are data and stay as typed. An agenda item
generated from a signal stores these, so every reader sees the label in their own language.
"""

from collections.abc import Mapping

from django.utils.translation import gettext

STAGE_CONVERSION = "stage_conversion"
TIME_IN_STAGE = "time_in_stage"
WIN_RATE = "win_rate"
AVERAGE_DEAL_SIZE = "average_deal_size"
ACTIVITY_RATIO = "activity_ratio"
STALLED_SHARE = "stalled_share"
SLIPPED_SHARE = "slipped_share"
ATTAINMENT_PACING = "attainment_pacing"


def metric_label(metric: str, params: Mapping[str, str | None] | None = None) -> str:
    """Return the label of `metric` in the active language.

    `params` contains `stage` and `next_stage` for the per-stage metrics (a
    `next_stage` of None means the deal was won) and `pipeline` when the
    organization has several pipelines, else an empty name. An unknown metric
    returns its identifier.
    """
    params = params or {}
    if metric == STAGE_CONVERSION:
        next_stage = params.get("next_stage")
        label = gettext("Stage conversion %(stage)s → %(next)s") % {
            "stage": params.get("stage") or "",
            "next": next_stage if next_stage is not None else gettext("Won"),
        }
    elif metric == TIME_IN_STAGE:
        label = gettext("Time in stage %(stage)s") % {"stage": params.get("stage") or ""}
    else:
        label = _fixed_labels().get(metric, metric)
    pipeline = params.get("pipeline")
    return f"{pipeline}: {label}" if pipeline else label


def _fixed_labels() -> dict[str, str]:
    return {
        WIN_RATE: gettext("Win rate"),
        AVERAGE_DEAL_SIZE: gettext("Average deal size"),
        ACTIVITY_RATIO: gettext("Activities per won deal"),
        STALLED_SHARE: gettext("Share of open deals stalled"),
        SLIPPED_SHARE: gettext("Share of due deals slipped"),
        ATTAINMENT_PACING: gettext("Attainment pacing (won revenue)"),
    }
