"""Privacy rules for works councils: who appears under which name, small groups, the scorecard view log.

The organization's `leaderboard_privacy` decides how other people appear on
leaderboards and contest standings:
- names: everyone by name.
- pseudonyms: a person the viewer may not see (spm.tenancy) appears as
  "Rep 7". The numbers are drawn anew for each period (and each contest),
  see `pseudonym_numbers`.
- own_rank: people the viewer may not see are left out. The viewer still
  sees their own rank and how many were ranked.
The viewer's own row and the rows of people the viewer may see anyway (a
manager's reps, everyone for an admin) always carry the name.

`minimum_group_size` hides the figures of a team with fewer members than
that, so a team of one cannot stand in for a person.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from goals.models import ScorecardView
from spm.exports import Column, Table
from spm.models import LeaderboardPrivacy, Membership, Organization, Role

logger = logging.getLogger(__name__)

# Salt of the HMAC that orders pseudonym numbers, so the digest differs from other HMACs made with SECRET_KEY.
PSEUDONYM_SALT = "goals.privacy.pseudonym_numbers"


def pseudonym_numbers(*, period_key: str) -> dict[int, int]:
    """Return {membership id: pseudonym number} for the current organization, numbered 1, 2, … in a keyed order.

    Numbering by membership id would let anyone who has seen the order in which
    people were added (an import file, the demo data) name every pseudonym.
    So the memberships are sorted by an HMAC of `period_key` and their id,
    keyed with SECRET_KEY, which viewers do not have. `period_key` is the
    label of the period shown (or a contest's key). Every page of one period
    shows the same numbers, and each other period gets an independent order,
    so a number cannot be followed from period to period. A member who joins
    during a period can shift others' numbers, and a new SECRET_KEY changes all of them.
    """
    ids = Membership.objects.values_list("pk", flat=True)
    order = {membership_id: salted_hmac(PSEUDONYM_SALT, f"{period_key}:{membership_id}").hexdigest() for membership_id in ids}
    ranked = sorted(order, key=order.__getitem__)
    return {membership_id: position for position, membership_id in enumerate(ranked, start=1)}


def contest_period_key(contest) -> str:
    """Return the `period_key` of a contest's standings; a contest runs over its own dates, not a fiscal period."""
    return f"contest-{contest.pk}"


def pseudonym(number: int) -> str:
    return gettext("Rep %(number)s") % {"number": number}


@dataclass(frozen=True)
class NamePolicy:
    """Name display rules for one viewer in one organization."""

    mode: str
    viewer_id: int
    # None: the viewer may see everyone (admin).
    visible_ids: frozenset | None
    numbers: dict

    def may_see(self, membership_id: int) -> bool:
        return self.visible_ids is None or membership_id in self.visible_ids

    def is_listed(self, membership_id: int) -> bool:
        """False for a row that the own_rank mode leaves out for this viewer."""
        return self.mode != LeaderboardPrivacy.OWN_RANK or self.may_see(membership_id)

    def name_for(self, membership_id: int, real_name: str) -> str:
        if self.mode == LeaderboardPrivacy.NAMES or self.may_see(membership_id):
            return real_name
        return pseudonym(self.numbers.get(membership_id, 0))

    def is_named(self, membership_id: int) -> bool:
        return self.mode == LeaderboardPrivacy.NAMES or self.may_see(membership_id)


def name_policy_for(
    *, organization: Organization, viewer: Membership, visible_ids: set[int] | None, period_key: str
) -> NamePolicy:
    """Build the name policy of `viewer` for one page.

    `visible_ids` is spm.tenancy.membership_ids_visible(viewer). `period_key`
    chooses the pseudonym numbers: the label of the period shown, or
    `contest_period_key(contest)` on a contest's page.
    """
    mode = organization.leaderboard_privacy
    numbers = pseudonym_numbers(period_key=period_key) if mode == LeaderboardPrivacy.PSEUDONYMS else {}
    return NamePolicy(
        mode=mode,
        viewer_id=viewer.pk,
        visible_ids=None if visible_ids is None else frozenset(visible_ids),
        numbers=numbers,
    )


def team_sizes() -> dict[int, int]:
    """Return {team id: number of members whose current team it is}; one query."""
    rows = Membership.objects.filter(team__isnull=False).values("team_id").annotate(size=Count("id"))
    return dict(rows.values_list("team_id", "size"))


def is_group_hidden(*, organization: Organization, size: int) -> bool:
    """True when a group of `size` members is below the organization's minimum group size (0: never)."""
    return bool(organization.minimum_group_size) and size < organization.minimum_group_size


# --- scorecard view log ---------------------------------------------------------------------------


def scorecard_view_record(*, organization: Organization, viewer: Membership, subject: Membership) -> ScorecardView | None:
    """Log that `viewer` opened `subject`'s scorecard; opening one's own is not logged (returns None)."""
    if viewer.pk == subject.pk:
        return None
    view = ScorecardView.objects.create(organization=organization, viewer=viewer, subject=subject)
    logger.info(
        "Scorecard viewed: organization_id=%s viewer_id=%s subject_id=%s view_id=%s",
        organization.pk,
        viewer.pk,
        subject.pk,
        view.pk,
    )
    return view


# An htmx period switch on an opened scorecard is not logged again within this window.
SCORECARD_VIEW_REPEAT_WINDOW = dt.timedelta(minutes=30)


def scorecard_view_record_fragment(
    *, organization: Organization, viewer: Membership, subject: Membership
) -> ScorecardView | None:
    """Log an htmx fragment of `subject`'s scorecard unless `viewer` opened it within SCORECARD_VIEW_REPEAT_WINDOW.

    Switching the period on an opened scorecard loads only a fragment, and
    logging each switch would bury the openings in the log. A fragment with no
    recent view is still logged, because a client can request fragments without
    ever loading the full page. Returns the new view, or None when none was logged.
    """
    since = timezone.now() - SCORECARD_VIEW_REPEAT_WINDOW
    if ScorecardView.objects.filter(viewer=viewer, subject=subject, viewed_at__gte=since).exists():
        return None
    return scorecard_view_record(organization=organization, viewer=viewer, subject=subject)


def scorecard_view_list(
    *,
    viewer_id: int | None = None,
    subject_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[ScorecardView]:
    """Return the current organization's scorecard views, newest first, narrowed by the given filters.

    `since` is inclusive and `until` exclusive. Viewer and subject come with their users loaded.
    """
    views = ScorecardView.objects.select_related("viewer__user", "subject__user").order_by("-viewed_at", "-id")
    if viewer_id is not None:
        views = views.filter(viewer_id=viewer_id)
    if subject_id is not None:
        views = views.filter(subject_id=subject_id)
    if since is not None:
        views = views.filter(viewed_at__gte=since)
    if until is not None:
        views = views.filter(viewed_at__lt=until)
    return views


# --- the register of personal metrics -------------------------------------------------------------

# Who sees a metric, in the words of the roles in spm.models.Role.
SEEN_BY_SELF_MANAGER_ADMIN = _("The person, their managers (direct and higher up) and admins.")
SEEN_BY_LEADERBOARD = _(
    "Everyone in the organization on the leaderboard, subject to the organization's privacy mode "
    "(names, pseudonyms or only one's own rank)."
)
SEEN_BY_ADMIN = _("Admins only.")


@dataclass(frozen=True)
class PersonalMetric:
    """One thing the product computes about a person, why, and who sees it."""

    key: str
    name: str
    definition: str
    purpose: str
    seen_by: str


PERSONAL_METRICS = (
    PersonalMetric(
        "won_revenue",
        _("Won revenue"),
        _("Sum of the amounts of the person's deals won in the period, in the base currency."),
        _("Quota attainment, commission planning and the leaderboard."),
        SEEN_BY_LEADERBOARD,
    ),
    PersonalMetric(
        "won_deals",
        _("Won deals"),
        _("Number of the person's deals won in the period."),
        _("Quota attainment for count-based quotas and the leaderboard."),
        SEEN_BY_LEADERBOARD,
    ),
    PersonalMetric(
        "attainment",
        _("Quota attainment"),
        _("Credited value in the period ÷ the prorated quota."),
        _("Progress against the agreed target; the leaderboard ranks by it by default."),
        SEEN_BY_LEADERBOARD,
    ),
    PersonalMetric(
        "pacing",
        _("Pacing and projected attainment"),
        _("Attainment compared with the elapsed share of the period, and its linear projection to the period end."),
        _("Early warning so that a manager can offer help in time."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "pipeline_coverage",
        _("Pipeline coverage"),
        _("Open pipeline expected to close in the period ÷ the quota still to reach."),
        _("Planning whether enough deals are in progress."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "pipeline_created",
        _("New pipeline"),
        _("Sum of the amounts of deals the person created in the period."),
        _("Leading indicator on the scorecard; quotas for new pipeline."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "activities",
        _("Activities and meetings"),
        _("Number of done activities (calls, e-mails, meetings, tasks, notes) and of meetings in the period."),
        _("Leading indicators on the scorecard and the gap-to-goal planner."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "win_rate",
        _("Win rate, average deal size, sales cycle"),
        _("Won ÷ closed deals, won amount ÷ won deals, and days from creation to close, per period."),
        _("Scorecard, manager dashboard and the gap-to-goal planner."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "stage_conversion",
        _("Cohort win conversion"),
        _("Share of the deals the person created in the period that are won now, beside the team's."),
        _("Coaching: where deals get stuck."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "coaching_signals",
        _("Coaching signals"),
        _(
            "Where the person's stage conversion, time in stage, win rate, average deal size, activities per won "
            "deal, stalled and slipped deals and pacing differ from their team's median in a period, with the "
            "deals behind each."
        ),
        _("Agenda of the person's 1:1s with their manager."),
        SEEN_BY_SELF_MANAGER_ADMIN,
    ),
    PersonalMetric(
        "coaching_notes",
        _("1:1 notes and action items"),
        _("Notes a manager writes in a 1:1, private or shared with the person, and the action items agreed there."),
        _("Preparing and following up 1:1s."),
        _(
            "Private notes: their author only; an admin answering the person's data access request exports them "
            "with the rest of their data. Shared notes and action items: the person, their managers (direct and "
            "higher up) and admins."
        ),
    ),
    PersonalMetric(
        "contest_standing",
        _("Contest standings and badges"),
        _("Rank in sales contests the person takes part in, and badges for contests won."),
        _("Recognition in contests the person was entered in."),
        SEEN_BY_LEADERBOARD,
    ),
    PersonalMetric(
        "scorecard_views",
        _("Scorecard view log"),
        _("Who opened whose scorecard and when."),
        _("Oversight of access to personal performance data."),
        SEEN_BY_ADMIN,
    ),
)

CSV_COLUMNS = ("key", "name", "definition", "purpose", "seen_by")


def personal_metrics_table() -> Table:
    """Return the register of personal metrics as a download table; headers and texts follow the active language."""
    columns = [
        Column(_("Key")),
        Column(_("Metric")),
        Column(_("Definition")),
        Column(_("Purpose")),
        Column(_("Who can see it")),
    ]
    rows = [[str(getattr(metric, column)) for column in CSV_COLUMNS] for metric in PERSONAL_METRICS]
    return Table(name="personal-metrics", columns=columns, rows=rows)


def viewer_choices() -> list[Membership]:
    """Return the members a view-log filter can pick, by name: managers and admins first, as they view others."""
    members = Membership.objects.select_related("user").order_by("user__name", "user__email")
    return sorted(members, key=lambda member: (member.role == Role.REP, member.display_name.casefold()))

