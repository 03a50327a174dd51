"""The downloadable tables of the pipeline and activity pages, as spm.exports.Table.

Each builder reads the same page object the HTML table shows, so a download
has the page's numbers. Money is in the organization's base currency; rates
are fractions (0.375), days fractional days.
"""

from types import SimpleNamespace

from django.utils.translation import gettext_lazy as _

from dashboards.analytics import waterfall, winloss
from dashboards.analytics.snapshots import NO_STAGE_LABEL
from pipelines.models import ActivityKind
from spm.exports import DATE, DAYS, DECIMAL, INTEGER, MONEY, PERCENT, TEXT, Column, Table

PIPELINE_TABLES = {
    "funnel": _("Funnel"),
    "time_in_stage": _("Time in stage"),
    "velocity": _("Stage velocity"),
    "velocity_trend": _("Pipeline velocity per month"),
    "stalled": _("Stalled deals"),
    "waterfall": _("Waterfall"),
    "as_of": _("Pipeline as of a date"),
    "winloss": _("Win/loss"),
}
ACTIVITY_TABLES = {
    "activity_weekly": _("Activities per rep and week"),
    "activity_result": _("Activity-to-result ratio"),
    "activity_mix": _("Activity types on won and lost deals"),
    "activity_feed": _("Activity feed"),
}
WATERFALL_LABELS = {
    waterfall.START: _("Open at the start"),
    waterfall.CREATED: _("Created"),
    waterfall.ADVANCED: _("Advanced a stage"),
    waterfall.WON: _("Won"),
    waterfall.LOST: _("Lost"),
    waterfall.PUSHED_OUT: _("Pushed out"),
    waterfall.OTHER: _("Other exits"),
    waterfall.END: _("Open at the end"),
}


def dimension_choices() -> list[tuple[str, str]]:
    return [(key, label) for key, label in winloss.DIMENSIONS.items()]


def _funnel(page):
    columns = [Column(_("Stage")), Column(_("Deals reached"), INTEGER), Column(_("Conversion to next step"), PERCENT)]
    rows = [[row.label, row.reached, row.conversion] for row in page.funnel_rows]
    return columns, rows


def _time_in_stage(page):
    columns = [
        Column(_("Stage")),
        Column(_("Stays"), INTEGER),
        Column(_("Deals"), INTEGER),
        Column(_("Mean days"), DAYS),
        Column(_("Median days"), DAYS),
    ]
    rows = [[row.stage.name, row.stay_count, row.deal_count, row.days_mean, row.days_median] for row in page.time_rows]
    return columns, rows


def _velocity(page):
    columns = [Column(_("From stage")), Column(_("Deals moved on"), INTEGER), Column(_("Mean days"), DAYS)]
    return columns, [[row.stage.name, row.deal_count, row.days_mean] for row in page.velocity_rows]


def _velocity_trend(page):
    columns = [Column(_("Month"), DATE), Column(_("Pipeline velocity per day"), MONEY)]
    rows = [[month.start, row.pipeline_velocity if row is not None else None] for month, row in page.trend]
    return columns, rows


def _stalled(page):
    columns = [Column(_("Pipeline")), Column(_("Stage")), Column(_("Stalled deals"), INTEGER), Column(_("Amount"), MONEY)]
    rows = [[row.stage.pipeline.name, row.stage.name, row.deal_count, row.base_amount] for row in page.stalled_rows]
    return columns, rows


def _waterfall(page):
    columns = [Column(_("Step")), Column(_("Deals"), INTEGER), Column(_("Amount"), MONEY)]
    rows = [
        [str(WATERFALL_LABELS[step.key]), step.deal_count, step.base_amount] for step in page.waterfall.steps.values()
    ]
    return columns, rows


def _as_of(page):
    columns = [Column(_("Pipeline")), Column(_("Stage")), Column(_("Deals"), INTEGER), Column(_("Amount"), MONEY)]
    rows = [
        [row.stage.pipeline.name, row.stage.name, row.deal_count, row.base_amount]
        if row.stage is not None
        else ["", str(NO_STAGE_LABEL), row.deal_count, row.base_amount]
        for row in page.as_of.rows
    ]
    return columns, rows


def _winloss(page):
    columns = [
        Column(winloss.DIMENSIONS[page.dimension]),
        Column(_("Won deals"), INTEGER),
        Column(_("Lost deals"), INTEGER),
        Column(_("Win rate"), PERCENT),
        Column(_("Won amount"), MONEY),
        Column(_("Lost amount"), MONEY),
    ]
    rows = [
        [row.label, row.won_count, row.lost_count, row.win_rate, row.won_amount, row.lost_amount]
        for row in page.winloss_rows
    ]
    return columns, rows


def _activity_weekly(page):
    columns = [Column(_("Rep")), Column(_("Week starting"), DATE)]
    columns += [Column(label, INTEGER) for _kind, label in ActivityKind.choices]
    columns.append(Column(_("Total"), INTEGER))
    rows = [
        [row.owner_name, row.week_start, *[row.counts.get(kind, 0) for kind in ActivityKind.values], row.total]
        for row in page.weekly_rows
    ]
    return columns, rows


def _activity_result(page):
    columns = [
        Column(_("Rep")),
        Column(_("Activities"), INTEGER),
        Column(_("Won deals"), INTEGER),
        Column(_("Activities per won deal"), DECIMAL),
    ]
    rows = [[row.owner_name, row.activity_count, row.won_count, row.activities_per_won_deal] for row in page.result_rows]
    total = page.result_total
    rows.append([str(_("Total")), total.activity_count, total.won_count, total.activities_per_won_deal])
    return columns, rows


def _activity_mix(page):
    columns = [
        Column(_("Type")),
        Column(_("On won deals"), INTEGER),
        Column(_("On lost deals"), INTEGER),
        Column(_("Share on won deals"), PERCENT),
        Column(_("Share on lost deals"), PERCENT),
        Column(_("Lift"), DECIMAL),
    ]
    rows = [
        [row.label, row.on_won, row.on_lost, row.share_on_won, row.share_on_lost, row.lift] for row in page.mix_rows
    ]
    return columns, rows


def _activity_feed(page):
    columns = [
        Column(_("Occurred at"), TEXT),
        Column(_("Type")),
        Column(_("Owner")),
        Column(_("Subject")),
        Column(_("Deal")),
        Column(_("Done")),
    ]
    activities = page.feed.paginator.object_list

    def rows():
        for activity in activities.iterator(chunk_size=2000):
            yield [
                activity.occurred_at.isoformat(),
                activity.get_kind_display(),
                activity.owner.display_name,
                activity.subject,
                str(activity.deal) if activity.deal is not None else "",
                str(_("yes")) if activity.is_done else str(_("no")),
            ]

    return columns, rows()


_BUILDERS = {
    "funnel": _funnel,
    "time_in_stage": _time_in_stage,
    "velocity": _velocity,
    "velocity_trend": _velocity_trend,
    "stalled": _stalled,
    "waterfall": _waterfall,
    "as_of": _as_of,
    "winloss": _winloss,
    "activity_weekly": _activity_weekly,
    "activity_result": _activity_result,
    "activity_mix": _activity_mix,
    "activity_feed": _activity_feed,
}


def _empty_page():
    """Return a page without rows, for the header-only download when there is no KPI data yet."""
    from pipelines.models import Activity

    return SimpleNamespace(
        funnel_rows=[],
        time_rows=[],
        velocity_rows=[],
        trend=[],
        stalled_rows=[],
        waterfall=SimpleNamespace(steps={}),
        as_of=SimpleNamespace(rows=[]),
        dimension=winloss.PRODUCT,
        winloss_rows=[],
        weekly_rows=[],
        result_rows=[],
        result_total=SimpleNamespace(activity_count=0, won_count=0, activities_per_won_deal=None),
        mix_rows=[],
        feed=SimpleNamespace(paginator=SimpleNamespace(object_list=Activity.objects.none())),
    )


def table_build(name: str, page, *, organization) -> Table:
    """Build the download of table `name` from the page object (None: no data, header only).

    Raises KeyError for an unknown name.
    """
    label = page.period.label if page is not None else "empty"
    columns, rows = _BUILDERS[name](page if page is not None else _empty_page())
    return Table(name=f"{name}-{label}", columns=columns, rows=rows, organization=organization)
