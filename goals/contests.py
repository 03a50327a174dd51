"""Sales contests: creation, standings, winners and badges.

A contest runs over the inclusive days `[starts_on, ends_on]`, which need not
be a fiscal period. Its values use the credit rules of goals.attainment over
those days. Normalization:
- percent_of_quota: credited ÷ the quota share of the contest's days. The
  share of each fiscal period the contest overlaps is target × overlapping
  days ÷ days of that period; monthly quotas are used where a subject has one
  for every month touched, else quarterly, else yearly.
- absolute: the credited value.
- improvement: credited minus credited over the same number of days just before.
Winners are the rank-1 entries once the contest's last day has passed.

The contest form accepts at most CONTEST_MAX_DAYS days between
spm.date_limits.EARLIEST_DATE and PLANNING_YEARS after today. Contests stored
before that check may have days that cannot be computed, because year 1 or 9999
overflows the UTC conversion. They get empty standings and no badges instead of
an error.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from goals.attainment import Attainment, credited_values, custom_period, elapsed_share
from goals.leaderboards import ABSOLUTE, IMPROVEMENT, PERCENT, entries_ranked, ranking_values
from goals.models import Contest, ContestNormalization, QuotaLevel, Team
from goals.privacy import NamePolicy, is_group_hidden, team_sizes
from goals.quotas import quota_targets_for_period
from pipelines.selectors import team_list_visible
from spm.audit import audit_record
from spm.date_limits import EARLIEST_DATE, LATEST_COMPUTABLE_DATE
from spm.fiscal import MONTH, QUARTER, YEAR, Period, periods_covering
from spm.models import Membership, Organization, Role
from spm.tenancy import membership_ids_visible

logger = logging.getLogger(__name__)

# The leaderboard ranking that implements each normalization.
NORMALIZATION_RANKING = {
    ContestNormalization.PERCENT_OF_QUOTA: PERCENT,
    ContestNormalization.ABSOLUTE: ABSOLUTE,
    ContestNormalization.IMPROVEMENT: IMPROVEMENT,
}
# Maximum length of a contest in days: a year with its leap day. It also bounds the percent
# ranking's quota lookups, one query per month, quarter and fiscal year that a contest touches.
CONTEST_MAX_DAYS = 366
CONTEST_DELETED = "contest.deleted"


def has_computable_days(contest: Contest) -> bool:
    """Return whether the contest's days lie within the range that standings can be computed for.

    That is EARLIEST_DATE to LATEST_COMPUTABLE_DATE, in order, and at most CONTEST_MAX_DAYS long.
    """
    return (
        EARLIEST_DATE <= contest.starts_on <= contest.ends_on <= LATEST_COMPUTABLE_DATE
        and (contest.ends_on - contest.starts_on).days + 1 <= CONTEST_MAX_DAYS
    )


def contest_period(contest: Contest) -> Period:
    return custom_period(contest.starts_on, contest.ends_on)


def contest_create(
    *,
    organization: Organization,
    created_by: Membership,
    name: str,
    metric: str,
    starts_on: dt.date,
    ends_on: dt.date,
    normalization: str,
    is_team_mode: bool,
    participants: list[Membership],
    teams: list[Team],
) -> Contest:
    """Create a contest among `participants` (or `teams` in team mode).

    Raises PermissionDenied for a rep, or for a manager who picks a member or
    team outside the ones they may see, and ValidationError for an empty
    field of competitors or a last day before the first.
    """
    if created_by.role == Role.REP:
        raise PermissionDenied(_("Only admins and managers can create contests."))
    visible = membership_ids_visible(created_by)
    if visible is not None:
        hidden = [member.pk for member in participants if member.pk not in visible]
        if hidden:
            raise PermissionDenied(_("You can only enter members of your own teams."))
        visible_team_ids = {team.pk for team in team_list_visible(membership=created_by)}
        if any(team.pk not in visible_team_ids for team in teams):
            raise PermissionDenied(_("You can only enter teams you manage."))
    if ends_on < starts_on:
        raise ValidationError(
            _("The last day %(ends_on)s is before the first day %(starts_on)s; swap them.")
            % {
                "ends_on": date_format(ends_on, "SHORT_DATE_FORMAT"),
                "starts_on": date_format(starts_on, "SHORT_DATE_FORMAT"),
            }
        )
    if is_team_mode and not teams:
        raise ValidationError(_("A team contest needs at least one team."))
    if not is_team_mode and not participants:
        raise ValidationError(_("A contest needs at least one participant."))

    with transaction.atomic():
        contest = Contest.objects.create(
            organization=organization,
            name=name,
            metric=metric,
            starts_on=starts_on,
            ends_on=ends_on,
            normalization=normalization,
            is_team_mode=is_team_mode,
            created_by=created_by,
        )
        if is_team_mode:
            contest.teams.set(teams)
        else:
            contest.participants.set(participants)
    logger.info(
        "Contest created: organization_id=%s contest_id=%s created_by_id=%s team_mode=%s competitors=%s",
        organization.pk,
        contest.pk,
        created_by.pk,
        is_team_mode,
        len(teams) if is_team_mode else len(participants),
    )
    return contest


def contest_may_delete(*, contest: Contest, membership: Membership) -> bool:
    """Return whether `membership` may delete `contest`: admins any contest, managers the ones they created."""
    if membership.role == Role.ADMIN:
        return True
    return membership.role == Role.MANAGER and contest.created_by_id == membership.pk


def contest_delete(*, contest: Contest, actor: Membership) -> None:
    """Delete a contest with its participant and team lists, and record it in the audit log.

    Raises PermissionDenied unless contest_may_delete allows it. Badges are
    computed from the contests on each page view, so the contest's badges go too.
    """
    if not contest_may_delete(contest=contest, membership=actor):
        raise PermissionDenied(_("Only admins and the manager who created a contest can delete it."))

    before = {
        "name": contest.name,
        "metric": contest.metric,
        "starts_on": contest.starts_on.isoformat(),
        "ends_on": contest.ends_on.isoformat(),
        "normalization": contest.normalization,
        "is_team_mode": contest.is_team_mode,
        "created_by_id": contest.created_by_id,
    }
    contest_id = contest.pk
    with transaction.atomic():
        contest.delete()
        audit_record(
            organization=actor.organization_id,
            actor=actor.user,
            action=CONTEST_DELETED,
            object_type="contest",
            object_id=contest_id,
            before=before,
        )
    logger.info(
        "Contest deleted: organization_id=%s contest_id=%s actor_id=%s", actor.organization_id, contest_id, actor.pk
    )


def contest_quota_targets(*, organization: Organization, period: Period, metric: str, level: str) -> dict[int, Decimal]:
    """Return {subject id: quota share of the days of `period`}, which may be any range of days.

    Tries monthly, then quarterly, then yearly quotas; a subject takes the
    first kind for which every fiscal period touched has a target for it.
    """
    start_month = organization.fiscal_year_start_month
    targets: dict[int, Decimal] = {}
    for kind in (MONTH, QUARTER, YEAR):
        covering = periods_covering(period.start, period.last_day, kind, start_month)
        per_period = [
            quota_targets_for_period(organization=organization, period=fiscal, metric=metric, level=level)
            for fiscal in covering
        ]
        subject_ids = set.intersection(*(set(found) for found in per_period)) if per_period else set()
        for subject_id in subject_ids - set(targets):
            share = Decimal(0)
            for fiscal, found in zip(covering, per_period, strict=True):
                overlap = (min(fiscal.end, period.end) - max(fiscal.start, period.start)).days
                share += found[subject_id] * Decimal(overlap) / Decimal((fiscal.end - fiscal.start).days)
            targets[subject_id] = share
    return targets


@dataclass
class ContestStandings:
    contest: Contest
    # None when the contest's days cannot be computed.
    period: Period | None
    ranked: list
    unranked: list
    hidden_groups: list
    ranked_count: int
    is_finished: bool
    own_entry: object
    # False for a contest stored with days outside what has_computable_days allows; nothing is ranked then.
    has_computable_days: bool = True
    # Rank-1 entries that the own_rank privacy mode leaves out of `ranked` for this viewer.
    hidden_first_count: int = 0

    @property
    def winners(self) -> list:
        """Return the winners the viewer may see listed; empty until the contest has ended."""
        if not self.is_finished:
            return []
        return [entry for entry in self.ranked if entry.rank == 1]

    @property
    def hidden_winner_count(self) -> int:
        """Count the winners whose names the privacy settings hide from the viewer; 0 until the contest has ended."""
        return self.hidden_first_count if self.is_finished else 0

    @property
    def is_own_win(self) -> bool:
        return self.is_finished and self.own_entry is not None and self.own_entry.rank == 1


def contest_standings(
    *, organization: Organization, contest: Contest, policy: NamePolicy, today: dt.date
) -> ContestStandings:
    """Rank the contest's participants (or teams) as of `today`, with the viewer's privacy applied.

    A contest without computable days (see has_computable_days) gets empty standings.
    """
    if not has_computable_days(contest):
        logger.warning(
            "Contest standings skipped, days out of range: organization_id=%s contest_id=%s starts_on=%s ends_on=%s",
            organization.pk,
            contest.pk,
            contest.starts_on.isoformat(),
            contest.ends_on.isoformat(),
        )
        return ContestStandings(
            contest=contest,
            period=None,
            ranked=[],
            unranked=[],
            hidden_groups=[],
            ranked_count=0,
            is_finished=today > contest.ends_on,
            own_entry=None,
            has_computable_days=False,
        )

    level = QuotaLevel.TEAM if contest.is_team_mode else QuotaLevel.REP
    period = contest_period(contest)
    if contest.is_team_mode:
        competitors = {team.pk: team.name for team in contest.teams.all()}
    else:
        competitors = {member.pk: member.display_name for member in contest.participants.select_related("user")}

    credited = credited_values(
        organization=organization, period=period, metric=contest.metric, level=level, as_of=today
    )
    quotas = {}
    if contest.normalization == ContestNormalization.PERCENT_OF_QUOTA:
        quotas = contest_quota_targets(organization=organization, period=period, metric=contest.metric, level=level)
    share = elapsed_share(period, today)
    rows = [
        Attainment(
            level=level,
            subject_id=subject_id,
            subject=name,
            metric=contest.metric,
            quota=quotas.get(subject_id),
            credited=credited.get(subject_id, Decimal(0)),
            elapsed_share=share,
            open_pipeline=None,
        )
        for subject_id, name in competitors.items()
    ]

    hidden_groups = []
    if level == QuotaLevel.TEAM and organization.minimum_group_size:
        sizes = team_sizes()
        hidden_groups = [row for row in rows if is_group_hidden(organization=organization, size=sizes.get(row.subject_id, 0))]
        rows = [row for row in rows if row not in hidden_groups]

    ranking = NORMALIZATION_RANKING[contest.normalization]
    values = ranking_values(rows, organization=organization, period=period, ranking=ranking)
    ranked, unranked = entries_ranked(rows, values, policy=policy, level=level)
    ranked_count = len(ranked)
    own_entry = next((entry for entry in ranked + unranked if entry.is_self), None)
    hidden_first_count = 0
    if level == QuotaLevel.REP:
        # The winners are counted before the filter, so a hidden winner is still reported as one.
        hidden_first_count = sum(1 for entry in ranked if entry.rank == 1 and not policy.is_listed(entry.subject_id))
        ranked = [entry for entry in ranked if policy.is_listed(entry.subject_id)]
        unranked = [entry for entry in unranked if policy.is_listed(entry.subject_id)]
    return ContestStandings(
        contest=contest,
        period=period,
        ranked=ranked,
        unranked=unranked,
        hidden_groups=hidden_groups,
        ranked_count=ranked_count,
        is_finished=today > contest.ends_on,
        own_entry=own_entry,
        hidden_first_count=hidden_first_count,
    )


def contest_list() -> list[Contest]:
    """Return the current organization's contests, the latest first day first."""
    return list(Contest.objects.order_by("-starts_on", "-id"))


def contest_get(*, contest_id: int) -> Contest | None:
    return Contest.objects.filter(pk=contest_id).first()


def contest_badges(
    *, organization: Organization, policy: NamePolicy, period: Period, today: dt.date
) -> dict[tuple[str, int], list[Contest]]:
    """Return {(level, subject id): contests won} for contests that ended inside `period` before `today`.

    Costs a few queries per such contest, so it looks only at contests that
    ended in the period shown. A contest without computable days wins nothing.
    """
    contests = Contest.objects.filter(ends_on__gte=period.start, ends_on__lt=min(period.end, today)).order_by("ends_on")
    badges: dict[tuple[str, int], list[Contest]] = {}
    for contest in contests:
        standings = contest_standings(organization=organization, contest=contest, policy=policy, today=today)
        level = QuotaLevel.TEAM if contest.is_team_mode else QuotaLevel.REP
        for entry in standings.winners:
            badges.setdefault((level, entry.subject_id), []).append(contest)
    return badges
