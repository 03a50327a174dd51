"""Labels and definitions of the pipeline page's numbers, shown one click away beside each table."""

from django.utils.translation import gettext_lazy as _

from dashboards.display import COUNT, DAYS, MONEY, MONEY_PER_DAY, PERCENT, KpiDisplay

PIPELINE_KPIS = {
    kpi.key: kpi
    for kpi in (
        KpiDisplay(
            "funnel",
            _("Stage conversion"),
            _(
                "Cohort: deals created in the period. A deal reached a stage when the highest open stage it ever "
                "entered is at or beyond it; won deals reached every stage, skipped stages count as reached, and "
                "moving back does not undo it. Conversion = reached(next step) ÷ reached(this step)."
            ),
            PERCENT,
            _("Nobody in the cohort reached this stage."),
        ),
        KpiDisplay(
            "time_in_stage",
            _("Time in stage"),
            _(
                "Mean and median days from entering a stage to the next stage change, over stays that ended in "
                "the period. A deal that returns to a stage has one stay per visit; the stay in its current stage "
                "has not ended and does not count."
            ),
            DAYS,
            _("No stay in this stage ended in the period."),
        ),
        KpiDisplay(
            "velocity",
            _("Stage velocity"),
            _(
                "Mean days from a deal's first entry into the stage to its first later entry into a stage further "
                "on (or won), over deals that moved on in the period."
            ),
            DAYS,
            _("No deal moved on from this stage in the period."),
        ),
        KpiDisplay(
            "velocity_trend",
            _("Pipeline velocity"),
            _("Open deals × win rate × average deal size ÷ sales cycle days, per month, from the KPI snapshots."),
            MONEY_PER_DAY,
            _("Needs won deals and a sales cycle longer than zero in this month."),
        ),
        KpiDisplay(
            "stalled",
            _("Stalled deals"),
            _(
                "Open deals with no stage change and no done activity for longer than their stage's threshold, "
                "now. Deals with a planned activity due in the future are not stalled; stages without a "
                "threshold never stall."
            ),
            COUNT,
        ),
        KpiDisplay(
            "slipped",
            _("Slipped deals"),
            _(
                "Deals whose expected close date lay in the period at an earlier daily snapshot and that were "
                "not won or lost in it: now expected later, or still open after the period."
            ),
            COUNT,
        ),
        KpiDisplay(
            "waterfall",
            _("Pipeline waterfall"),
            _(
                "Open at the start + created − won − lost − other exits = open at the end. Advanced and pushed "
                "out are deals that stayed open. Amounts are each deal's current amount."
            ),
            MONEY,
        ),
        KpiDisplay(
            "as_of",
            _("Pipeline as of a date"),
            _(
                "Open deals by stage at the start of the chosen day, from that day's snapshot; without one, "
                "reconstructed from creation, close and stage history with today's amounts. Deals whose first "
                "recorded stage came later are listed as \"No stage recorded yet\", so the total is every open deal."
            ),
            MONEY,
        ),
        KpiDisplay(
            "winloss",
            _("Win and loss analysis"),
            _("Deals won and lost in the period, grouped; win rate = won ÷ (won + lost)."),
            PERCENT,
            _("No deal closed in this group."),
        ),
        KpiDisplay(
            "activity_ratio",
            _("Activity-to-result ratio"),
            _("Done activities in the period ÷ deals won in the period."),
            COUNT,
            _("No deal won in the period."),
        ),
        KpiDisplay(
            "activity_mix",
            _("Activity types on won deals"),
            _(
                "For deals won or lost in the period: each type's share of the activities on won deals ÷ its "
                "share on all those deals. Above 1 the type is over-represented on won deals."
            ),
            COUNT,
            _("No activities on won deals of the period."),
        ),
    )
}
