"""Deal-list drill-down of every pipeline analytics number: `analysis` and `key` query parameters.

The deal list (pipelines.selectors.deal_list_visible) passes these through
`analysis_deals`, which calls the same function the page counted with, so the
list's count equals the number that linked to it.

| analysis | key | period |
| --- | --- | --- |
| funnel | open stage id, or `won:<pipeline id>` | cohort: created in the period |
| time_in_stage | stage id | stays that ended in the period |
| velocity | stage id | moved on in the period |
| stalled | stage id, or empty for every stage | none: stalled now |
| slipped | empty | expected in the period, did not close in it |
| waterfall | start, created, advanced, won, lost, pushed_out, other_exits, end | the period |
| winloss | `<dimension>:<won, lost or closed>:<value>` | closed in the period |
| as_of | `<YYYY-MM-DD>:<stage id>` | none: the pipeline at the start of that day |
"""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dashboards.analytics import funnel, snapshots, stages, velocity, waterfall, winloss
from dashboards.analytics.base import Window
from pipelines.models import Deal, DealStatus, Pipeline, Stage
from spm.date_limits import COMPUTABLE_RANGE
from spm.fiscal import Period
from spm.ids import id_parse
from spm.models import Organization

ANALYSES = {
    "funnel": gettext_lazy("Funnel"),
    "time_in_stage": gettext_lazy("Time in stage"),
    "velocity": gettext_lazy("Stage velocity"),
    "stalled": gettext_lazy("Stalled"),
    "slipped": gettext_lazy("Slipped"),
    "waterfall": gettext_lazy("Waterfall"),
    "winloss": gettext_lazy("Win/loss"),
    "as_of": gettext_lazy("Pipeline as of a date"),
}
# Analyses that read the state now or on a day named in the key, not a period.
WITHOUT_PERIOD = {"stalled", "as_of"}
WINLOSS_STATUSES = (DealStatus.WON, DealStatus.LOST, "closed")


@dataclass(frozen=True)
class Analysis:
    """A validated drill-down: what to list and the objects its key names."""

    name: str
    key: str
    stage: Stage | None = None
    pipeline: Pipeline | None = None
    day: dt.date | None = None
    dimension: str = ""
    status: str = ""
    value: str = ""


def _stage(text: str) -> Stage:
    stage_id = id_parse(text)
    if stage_id is None:
        raise ValueError(_("Invalid key %(key)r; use a stage id, e.g. key=12.") % {"key": text})
    stage = Stage.objects.select_related("pipeline").filter(pk=stage_id).first()
    if stage is None:
        raise ValueError(_("No stage with id %(key)s in this organization.") % {"key": text})
    return stage


def analysis_parse(name: str, key: str, period: Period | None) -> Analysis:
    """Validate `analysis`, `key` and the period; raises ValueError with a message naming the bad value.

    Runs inside the organization's scope, so a stage or pipeline id of another
    organization is "not found".
    """
    if name not in ANALYSES:
        raise ValueError(
            _("Invalid analysis %(value)r; use one of: %(choices)s.") % {"value": name, "choices": ", ".join(ANALYSES)}
        )
    if period is None and name not in WITHOUT_PERIOD:
        raise ValueError(
            _("The analysis %(analysis)r needs a period; add e.g. period=2017-Q2.") % {"analysis": name}
        )
    key = key.strip()

    if name == "funnel" and key.startswith("won:"):
        pipeline_id = key.removeprefix("won:")
        pipeline_pk = id_parse(pipeline_id)
        pipeline = Pipeline.objects.filter(pk=pipeline_pk).first() if pipeline_pk is not None else None
        if pipeline is None:
            raise ValueError(_("No pipeline with id %(key)s in this organization.") % {"key": pipeline_id})
        return Analysis(name=name, key=key, pipeline=pipeline)
    if name in ("funnel", "time_in_stage", "velocity") or (name == "stalled" and key):
        stage = _stage(key)
        return Analysis(name=name, key=key, stage=stage, pipeline=stage.pipeline)
    if name == "waterfall":
        if key not in waterfall.STEPS:
            raise ValueError(
                _("Invalid waterfall step %(key)r; use one of: %(choices)s.")
                % {"key": key, "choices": ", ".join(waterfall.STEPS)}
            )
        return Analysis(name=name, key=key)
    if name == "winloss":
        parts = key.split(":", 2)
        if len(parts) != 3 or parts[0] not in winloss.DIMENSIONS or parts[1] not in WINLOSS_STATUSES:
            raise ValueError(
                _("Invalid win/loss key %(key)r; use <dimension>:<won, lost or closed>:<value>, e.g. product:won:12.")
                % {"key": key}
            )
        return Analysis(name=name, key=key, dimension=parts[0], status=parts[1], value=parts[2])
    if name == "as_of":
        day_text, _separator, stage_text = key.partition(":")
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            raise ValueError(
                _("Invalid key %(key)r; use <YYYY-MM-DD>:<stage id>, e.g. 2017-04-01:12.") % {"key": key}
            ) from None
        # The day becomes a local midnight in UTC, which fails for days near date.min and date.max.
        try:
            COMPUTABLE_RANGE.check(day)
        except ValidationError as error:
            raise ValueError(" ".join(error.messages)) from None
        if stage_text == snapshots.NO_STAGE_KEY:
            return Analysis(name=name, key=key, day=day, value=snapshots.NO_STAGE_KEY)
        return Analysis(name=name, key=key, day=day, stage=_stage(stage_text))
    return Analysis(name=name, key=key)


def analysis_deals(
    deals: QuerySet[Deal], *, organization: Organization, analysis: Analysis, period: Period | None
) -> QuerySet[Deal]:
    """Return the deals of `deals` behind one pipeline analytics number, as the page counted them."""
    now = timezone.now()
    today = timezone.localdate(now, timezone=organization.tzinfo)
    window = Window.of(period, organization) if period is not None else None

    if analysis.name == "funnel":
        return funnel.funnel_deals_reached(deals, window=window, pipeline=analysis.pipeline, stage=analysis.stage)
    if analysis.name == "time_in_stage":
        return stages.time_in_stage_deals(deals, window=window, stage=analysis.stage)
    if analysis.name == "velocity":
        return velocity.stage_velocity_deals(deals, window=window, stage=analysis.stage)
    if analysis.name == "stalled":
        stalled = stages.stalled_deals(deals, now=now)
        return stalled.filter(stage=analysis.stage) if analysis.stage is not None else stalled
    if analysis.name == "slipped":
        return waterfall.slipped_deals(deals, window=window, today=today)
    if analysis.name == "waterfall":
        return waterfall.waterfall_deals(deals, window=window, today=today, step=analysis.key)
    if analysis.name == "winloss":
        return winloss.winloss_deals(
            deals, window=window, dimension=analysis.dimension, key=analysis.value, status=analysis.status
        )
    stage_id = analysis.stage.pk if analysis.stage is not None else None
    return snapshots.pipeline_as_of_deals(deals, organization=organization, day=analysis.day, stage_id=stage_id)


def analysis_label(analysis: Analysis) -> str:
    """Return the chip text of a drill-down, e.g. "Funnel: Qualified"."""
    title = str(ANALYSES[analysis.name])
    if analysis.stage is not None:
        detail = analysis.stage.name
        if analysis.day is not None:
            detail = f"{analysis.stage.name}, {analysis.day.isoformat()}"
        return f"{title}: {detail}"
    if analysis.name == "as_of":
        return f"{title}: {snapshots.NO_STAGE_LABEL}, {analysis.day.isoformat()}"
    if analysis.name == "funnel":
        return f"{title}: {_('Won')}"
    if analysis.name == "waterfall":
        return f"{title}: {analysis.key}"
    if analysis.name == "winloss":
        return f"{title}: {winloss.DIMENSIONS[analysis.dimension]} {analysis.value} ({analysis.status})"
    return title
