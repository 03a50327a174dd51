"""Leaderboards of reps and teams: ranking, ties, reps without a quota, privacy.

Three rankings, all descending:
- percent (default): attainment, credited ÷ prorated quota, which is fair
  across territories of different size and for ramping reps. Subjects without
  a quota (or with a quota of 0) are listed apart and not ranked.
- absolute: the credited value itself.
- improvement: credited in the period minus credited in the period before it
  (same kind and length), in the metric's unit.
Equal values share a rank and the next rank skips (competition ranking:
1, 1, 3). Equal ranks are listed by name.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from goals.attainment import Attainment, attainment_list, credited_values, custom_period
from goals.models import QuotaLevel
from goals.privacy import NamePolicy, is_group_hidden, team_sizes
from spm.fiscal import Period, period_containing
from spm.models import Organization

PERCENT, ABSOLUTE, IMPROVEMENT = "percent", "absolute", "improvement"
RANKINGS = {
    # xgettext:no-python-format
    PERCENT: _("% of prorated quota"),
    ABSOLUTE: _("Absolute value"),
    IMPROVEMENT: _("Improvement over the previous period"),
}
LEVELS = (QuotaLevel.REP, QuotaLevel.TEAM)


@dataclass
class LeaderboardEntry:
    """One row of a leaderboard as the viewer may see it."""

    attainment: Attainment
    name: str
    value: Decimal | None
    rank: int | None = None
    is_self: bool = False
    # False when the privacy mode shows a pseudonym instead of the name.
    is_named: bool = True
    badges: list = field(default_factory=list)

    @property
    def subject_id(self) -> int:
        return self.attainment.subject_id


@dataclass
class Leaderboard:
    """A ranked list, the subjects listed apart, and what privacy left out."""

    level: str
    ranking: str
    metric: str
    period: Period
    ranked: list
    # Subjects without a quota in the percent ranking.
    unranked: list
    # Teams below the minimum group size: names only, no figures.
    hidden_groups: list
    # How many subjects were ranked before own_rank privacy left rows out.
    ranked_count: int
    own_entry: LeaderboardEntry | None


def competition_ranks(values: list[Decimal]) -> list[int]:
    """Return the rank of each value in a list sorted descending: equal values share, the next skips."""
    ranks = []
    for index, value in enumerate(values):
        if index and value == values[index - 1]:
            ranks.append(ranks[-1])
        else:
            ranks.append(index + 1)
    return ranks


def previous_period(period: Period, fiscal_year_start_month: int) -> Period:
    """Return the period before `period`: the previous fiscal period, or the same number of days before a custom one."""
    if period.kind == "custom":
        days = period.end - period.start
        return custom_period(period.start - days, period.start - dt.timedelta(days=1))
    return period_containing(period.start - dt.timedelta(days=1), period.kind, fiscal_year_start_month)


def ranking_values(
    rows: list[Attainment], *, organization: Organization, period: Period, ranking: str
) -> dict[int, Decimal | None]:
    """Return {subject id: the value ranked}; None for a subject that cannot be ranked this way."""
    if ranking == PERCENT:
        return {row.subject_id: row.attainment for row in rows}
    if ranking == ABSOLUTE:
        return {row.subject_id: row.credited for row in rows}
    if ranking == IMPROVEMENT:
        if not rows:
            return {}
        before = credited_values(
            organization=organization,
            period=previous_period(period, organization.fiscal_year_start_month),
            metric=rows[0].metric,
            level=rows[0].level,
        )
        return {row.subject_id: row.credited - before.get(row.subject_id, Decimal(0)) for row in rows}
    raise ValueError(
        gettext("Invalid ranking %(ranking)r; use one of: %(choices)s.")
        % {"ranking": ranking, "choices": ", ".join(RANKINGS)}
    )


def entries_ranked(
    rows: list[Attainment], values: dict[int, Decimal | None], *, policy: NamePolicy | None, level: str
) -> tuple[list[LeaderboardEntry], list[LeaderboardEntry]]:
    """Rank the rows by value; return (ranked, unranked) entries, names already passed through `policy`.

    `policy` applies to reps only; teams keep their names.
    """
    ranked, unranked = [], []
    for row in rows:
        if level == QuotaLevel.REP and policy is not None:
            name, is_named = policy.name_for(row.subject_id, row.subject), policy.is_named(row.subject_id)
            is_self = row.subject_id == policy.viewer_id
        else:
            name, is_named, is_self = row.subject, True, False
        entry = LeaderboardEntry(
            attainment=row, name=name, value=values.get(row.subject_id), is_self=is_self, is_named=is_named
        )
        (unranked if entry.value is None else ranked).append(entry)

    # Sort by name first, then stably by value, so equal values list alphabetically.
    ranked.sort(key=lambda entry: (entry.attainment.subject.casefold(), entry.subject_id))
    ranked.sort(key=lambda entry: entry.value, reverse=True)
    for entry, rank in zip(ranked, competition_ranks([entry.value for entry in ranked]), strict=True):
        entry.rank = rank
    unranked.sort(key=lambda entry: (entry.attainment.subject.casefold(), entry.subject_id))
    return ranked, unranked


def leaderboard_build(
    *,
    organization: Organization,
    policy: NamePolicy,
    period: Period,
    metric: str,
    level: str,
    ranking: str,
    today: dt.date,
    subject_ids: set[int] | None = None,
) -> Leaderboard:
    """Read attainment and build the leaderboard `policy`'s viewer sees.

    Reps are every rep active in the period plus members with a quota or
    credit; `subject_ids` narrows them (a contest's participants). Teams below
    the minimum group size are taken out before ranking, so their rank does
    not hint at their figures.
    """
    rows = attainment_list(
        organization=organization, period=period, metric=metric, level=level, today=today, subject_ids=subject_ids
    )
    hidden_groups = []
    if level == QuotaLevel.TEAM and organization.minimum_group_size:
        sizes = team_sizes()
        hidden_groups = [row for row in rows if is_group_hidden(organization=organization, size=sizes.get(row.subject_id, 0))]
        hidden_ids = {row.subject_id for row in hidden_groups}
        rows = [row for row in rows if row.subject_id not in hidden_ids]

    values = ranking_values(rows, organization=organization, period=period, ranking=ranking)
    ranked, unranked = entries_ranked(rows, values, policy=policy, level=level)
    ranked_count = len(ranked)
    own_entry = next((entry for entry in ranked + unranked if entry.is_self), None)
    if level == QuotaLevel.REP:
        ranked = [entry for entry in ranked if policy.is_listed(entry.subject_id)]
        unranked = [entry for entry in unranked if policy.is_listed(entry.subject_id)]
    return Leaderboard(
        level=level,
        ranking=ranking,
        metric=metric,
        period=period,
        ranked=ranked,
        unranked=unranked,
        hidden_groups=hidden_groups,
        ranked_count=ranked_count,
        own_entry=own_entry,
    )
