"""Reads of 1:1s, notes and action items, narrowed to what the viewing member may see.

Who sees what:
- a 1:1: its rep, its manager, every manager who may see the rep (spm.tenancy)
  and every admin. Anyone else gets 404.
- a private note: its author only; a shared note: everyone who sees the 1:1.
- agenda and action items: everyone who sees the 1:1.
- changing agenda, notes and action items: the 1:1's manager and admins
  (`may_manage`); a member may also tick off an action item they own.
"""

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from coaching.models import (
    ActionItem,
    AgendaItem,
    CoachingNote,
    NoteVisibility,
    OneOnOne,
)
from pipelines.models import Deal
from spm.models import Membership, Role
from spm.tenancy import membership_ids_visible


def one_on_one_list_visible(*, membership: Membership) -> QuerySet[OneOnOne]:
    """Return the 1:1s `membership` may see, newest first, with rep and manager loaded."""
    one_on_ones = OneOnOne.objects.select_related("rep__user", "manager__user").order_by("-scheduled_at", "-id")
    if membership.role == Role.ADMIN:
        return one_on_ones
    if membership.role == Role.REP:
        return one_on_ones.filter(rep=membership)
    visible_ids = membership_ids_visible(membership)
    return one_on_ones.filter(Q(rep_id__in=visible_ids) | Q(manager=membership))


def one_on_one_get_visible(*, membership: Membership, one_on_one_id: int) -> OneOnOne:
    """Fetch one 1:1 the member may see; Http404 for anything else, including other tenants' rows."""
    one_on_one = one_on_one_list_visible(membership=membership).filter(pk=one_on_one_id).first()
    if one_on_one is None:
        raise Http404("No 1:1 with this id for this member.")
    return one_on_one


def may_manage(*, membership: Membership, one_on_one: OneOnOne) -> bool:
    """True for the 1:1's manager and for admins: they edit its agenda, notes and action items."""
    return membership.role == Role.ADMIN or membership.pk == one_on_one.manager_id


def may_tick_off(*, membership: Membership, action_item: ActionItem, shown_in: OneOnOne | None = None) -> bool:
    """True when `membership` may mark the action item done or open again.

    That is its owner, or whoever may manage the 1:1 it was agreed in or the
    later 1:1 `shown_in` it was carried into.
    """
    if membership.pk == action_item.owner_id or may_manage(membership=membership, one_on_one=action_item.one_on_one):
        return True
    return shown_in is not None and may_manage(membership=membership, one_on_one=shown_in)


def rep_choices_visible(*, membership: Membership) -> QuerySet[Membership]:
    """Return the reps `membership` may schedule a 1:1 with: visible reps other than itself, by name."""
    reps = Membership.objects.filter(role=Role.REP).exclude(pk=membership.pk).select_related("user")
    visible_ids = membership_ids_visible(membership)
    if visible_ids is not None:
        reps = reps.filter(pk__in=visible_ids)
    return reps.order_by("user__name", "user__email")


def agenda_item_list(*, one_on_one: OneOnOne) -> list[AgendaItem]:
    return list(one_on_one.agenda_items.select_related("action_item__owner__user").order_by("position", "id"))


def agenda_item_get(*, one_on_one: OneOnOne, item_id: int) -> AgendaItem:
    item = AgendaItem.objects.filter(one_on_one=one_on_one, pk=item_id).first()
    if item is None:
        raise Http404("No agenda item with this id in this 1:1.")
    return item


def note_list_visible(*, one_on_one: OneOnOne, membership: Membership) -> list[CoachingNote]:
    """Return the notes of the 1:1 that `membership` may read, oldest first: shared ones and its own."""
    notes = one_on_one.notes.select_related("author__user").order_by("created_at", "id")
    return list(notes.filter(Q(visibility=NoteVisibility.SHARED) | Q(author=membership)))


def note_get_visible(*, one_on_one: OneOnOne, membership: Membership, note_id: int) -> CoachingNote:
    """Fetch one note of the 1:1 that the member may read; Http404 for another author's private note."""
    note = (
        CoachingNote.objects.filter(one_on_one=one_on_one, pk=note_id)
        .filter(Q(visibility=NoteVisibility.SHARED) | Q(author=membership))
        .first()
    )
    if note is None:
        raise Http404("No note with this id that this member may read.")
    return note


def action_items_of(*, one_on_one: OneOnOne) -> tuple[list[ActionItem], list[ActionItem]]:
    """Return (items agreed in this 1:1, items carried over into it).

    Carried over are the items of the rep's earlier 1:1s that were still open
    when this one took place: not done, or done after its start. Both lists
    are ordered by due date (items without one last), then id.
    """
    items = ActionItem.objects.select_related("owner__user", "done_by__user", "one_on_one")
    agreed = list(items.filter(one_on_one=one_on_one))
    carried = list(
        items.filter(_earlier_one_on_ones_of_rep(one_on_one))
        .filter(Q(done_at__isnull=True) | Q(done_at__gte=one_on_one.scheduled_at))
    )
    return _by_due_date(agreed), _by_due_date(carried)


def action_items_open_carried(*, one_on_one: OneOnOne) -> list[ActionItem]:
    """Return the rep's action items from 1:1s before this one that are open now, by due date then id."""
    items = ActionItem.objects.select_related("owner__user").filter(_earlier_one_on_ones_of_rep(one_on_one))
    return _by_due_date(list(items.filter(done_at__isnull=True)))


def action_item_get(*, one_on_one: OneOnOne, action_item_id: int) -> ActionItem:
    """Fetch an action item agreed in or carried into `one_on_one`; Http404 for any other."""
    item = (
        ActionItem.objects.select_related("one_on_one", "owner__user")
        .filter(pk=action_item_id)
        .filter(Q(one_on_one=one_on_one) | _earlier_one_on_ones_of_rep(one_on_one))
        .first()
    )
    if item is None:
        raise Http404("No action item with this id in this 1:1.")
    return item


def action_items_open_owned(*, membership: Membership) -> list[ActionItem]:
    """Return the open action items `membership` owns, by due date, with their 1:1 loaded."""
    items = ActionItem.objects.select_related("one_on_one__manager__user", "one_on_one__rep__user")
    return _by_due_date(list(items.filter(owner=membership, done_at__isnull=True)))


def open_action_item_counts(*, one_on_one_ids: list[int]) -> dict[int, int]:
    """Return {1:1 id: open action items agreed in it}; one query."""
    rows = (
        ActionItem.objects.filter(one_on_one_id__in=one_on_one_ids, done_at__isnull=True)
        .values("one_on_one_id")
        .annotate(open_count=Count("id"))
        .order_by()
    )
    return {row["one_on_one_id"]: row["open_count"] for row in rows}


def deals_by_id(*, deal_ids: set[int], membership: Membership) -> dict[int, Deal]:
    """Return the deals of `deal_ids` that `membership` may see, with stage loaded; one query."""
    deals = Deal.objects.filter(pk__in=deal_ids).select_related("stage")
    visible_ids = membership_ids_visible(membership)
    if visible_ids is not None:
        deals = deals.filter(owner_id__in=visible_ids)
    return {deal.pk: deal for deal in deals}


def _earlier_one_on_ones_of_rep(one_on_one: OneOnOne) -> Q:
    """Match rows of the rep's 1:1s that took place before `one_on_one` (ties on the time by id)."""
    earlier = Q(one_on_one__scheduled_at__lt=one_on_one.scheduled_at) | Q(
        one_on_one__scheduled_at=one_on_one.scheduled_at, one_on_one_id__lt=one_on_one.pk
    )
    return Q(one_on_one__rep_id=one_on_one.rep_id) & earlier


def _by_due_date(items: list[ActionItem]) -> list[ActionItem]:
    return sorted(items, key=lambda item: (item.due_on is None, item.due_on or dt.date.min, item.pk))
