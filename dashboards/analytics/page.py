"""Reads composed for the pipeline and activity pages: every table with its drill-down links."""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.translation import gettext as _

from dashboards import charts
from dashboards.analytics import activities, funnel, snapshots, stages, velocity, waterfall, winloss
from dashboards.analytics.base import Window, deal_universe
from dashboards.analytics.tables import WATERFALL_LABELS
from pipelines.models import Pipeline
from spm.fiscal import Period
from spm.models import Membership, Organization

ACTIVITY_FEED_PER_PAGE = 25


def analysis_url(deals_url: str, *, analysis: str, key: str = "", period: Period | None = None) -> str:
    """Build the deal-list URL that lists the deals behind one pipeline analytics number."""
    query = {"analysis": analysis}
    if key:
        query["key"] = key
    if period is not None:
        query["period"] = period.label
    return f"{deals_url}?{urlencode(query)}"


@dataclass(frozen=True)
class PipelinePage:
    period: Period
    pipeline: Pipeline | None
    funnel_rows: list
    time_rows: list
    velocity_rows: list
    trend: list
    stalled_rows: list
    stalled_url: str
    slipped_count: int
    slipped_url: str
    waterfall: waterfall.Waterfall
    waterfall_urls: dict
    as_of: snapshots.PipelineAsOf
    first_snapshot_on: dt.date | None
    dimension: str
    winloss_rows: list
    deals_url: str
    funnel_chart: dict
    time_chart: dict
    waterfall_chart: dict
    trend_chart: dict

    def url(self, analysis: str, key="") -> str:
        return analysis_url(self.deals_url, analysis=analysis, key=str(key), period=self.period)


def pipeline_page(
    *,
    organization: Organization,
    membership: Membership,
    visible_member_ids: set[int] | None,
    period: Period,
    pipeline: Pipeline | None,
    as_of_day: dt.date,
    dimension: str,
    deals_url: str,
) -> PipelinePage:
    """Read every table of the pipeline page for the deals of the members in `visible_member_ids`."""
    now = timezone.now()
    today = timezone.localdate(now, timezone=organization.tzinfo)
    window = Window.of(period, organization)
    deals = deal_universe(organization=organization, visible_member_ids=visible_member_ids)

    funnel_rows, time_rows, velocity_rows = [], [], []
    if pipeline is not None:
        funnel_rows = funnel.funnel_rows(deals, window=window, pipeline=pipeline, won_label=_("Won"))
        time_rows = stages.time_in_stage_rows(deals, window=window, pipeline=pipeline)
        velocity_rows = velocity.stage_velocity_rows(deals, window=window, pipeline=pipeline)
    trend = velocity.velocity_trend(
        organization=organization, membership=membership, months=velocity.velocity_trend_months(period)
    )
    slipped_count = waterfall.slipped_deals(deals, window=window, today=today).count()
    steps = waterfall.waterfall(deals, window=window, today=today)
    bars = [(waterfall.START, 1, "absolute"), (waterfall.CREATED, 1, "relative"), (waterfall.WON, -1, "relative")]
    bars += [(waterfall.LOST, -1, "relative"), (waterfall.OTHER, -1, "relative"), (waterfall.END, 1, "total")]
    waterfall_bars = [(str(WATERFALL_LABELS[key]), sign * steps.count(key), measure) for key, sign, measure in bars]
    return PipelinePage(
        period=period,
        pipeline=pipeline,
        funnel_rows=funnel_rows,
        time_rows=time_rows,
        velocity_rows=velocity_rows,
        trend=trend,
        stalled_rows=stages.stalled_rows(deals, now=now),
        stalled_url=analysis_url(deals_url, analysis="stalled"),
        slipped_count=slipped_count,
        slipped_url=analysis_url(deals_url, analysis="slipped", period=period),
        waterfall=steps,
        waterfall_urls={key: analysis_url(deals_url, analysis="waterfall", key=key, period=period) for key in waterfall.STEPS},
        as_of=snapshots.pipeline_as_of(deals, organization=organization, day=as_of_day),
        first_snapshot_on=snapshots.snapshot_first_day(),
        dimension=dimension,
        winloss_rows=winloss.winloss_rows(deals, window=window, dimension=dimension),
        deals_url=deals_url,
        funnel_chart=charts.funnel_chart(funnel_rows),
        time_chart=charts.time_in_stage_chart(time_rows),
        waterfall_chart=charts.waterfall_chart(waterfall_bars),
        trend_chart=charts.velocity_trend_chart(trend, currency=organization.currency),
    )


@dataclass(frozen=True)
class ActivityPage:
    period: Period
    weekly_rows: list
    result_rows: list
    result_total: activities.ActivityResultRow
    mix_rows: list
    feed: object
    won_url: str


def activity_page(
    *,
    organization: Organization,
    visible_member_ids: set[int] | None,
    period: Period,
    feed_page: str | None,
    deals_url: str,
) -> ActivityPage:
    """Read the activity tables of the period and one page of the activity feed."""
    window = Window.of(period, organization)
    deals = deal_universe(organization=organization, visible_member_ids=visible_member_ids)
    items = activities.activity_universe(organization=organization, visible_member_ids=visible_member_ids)
    result_rows, result_total = activities.activity_result_rows(items, deals, window=window)
    return ActivityPage(
        period=period,
        weekly_rows=activities.activity_weekly_rows(items, window=window, organization=organization),
        result_rows=result_rows,
        result_total=result_total,
        mix_rows=activities.activity_mix_rows(items, deals, window=window),
        feed=Paginator(activities.activity_feed(items), ACTIVITY_FEED_PER_PAGE).get_page(feed_page),
        won_url=f"{deals_url}?{urlencode({'period': period.label, 'metric': 'won'})}",
    )
