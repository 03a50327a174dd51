"""Writes of the 1:1 workflow: scheduling with a generated agenda, agenda edits, notes, action items.

Every change is audit-logged with the acting user. Note texts are never copied
into the audit log, because admins read it and a private note is for its
author only. The entry records the note's id and visibility instead.
"""

import datetime as dt
import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from coaching import selectors
from coaching.models import (
    ActionItem,
    AgendaItem,
    AgendaItemKind,
    CoachingNote,
    NoteVisibility,
    OneOnOne,
    OneOnOneStatus,
)
from coaching.signals import Signal, rep_signals
from spm.audit import audit_record
from spm.fiscal import Period, parse_period
from spm.models import Membership, Organization, Role
from spm.tenancy import membership_ids_visible

logger = logging.getLogger(__name__)

ONE_ON_ONE_CREATED = "coaching.one_on_one_created"
ONE_ON_ONE_CHANGED = "coaching.one_on_one_changed"
AGENDA_CHANGED = "coaching.agenda_changed"
NOTE_ADDED = "coaching.note_added"
NOTE_CHANGED = "coaching.note_changed"
NOTE_DELETED = "coaching.note_deleted"
ACTION_ITEM_ADDED = "coaching.action_item_added"
ACTION_ITEM_CHANGED = "coaching.action_item_changed"


# --- 1:1s -----------------------------------------------------------------------------------------


def one_on_one_create(
    *,
    organization: Organization,
    manager: Membership,
    rep: Membership,
    scheduled_at: dt.datetime,
    period: Period,
    now: dt.datetime | None = None,
) -> OneOnOne:
    """Schedule a 1:1 of `manager` with `rep` and generate its agenda from the rep's signals.

    The agenda lists the rep's action items from earlier 1:1s that are still
    open, then the rep's concerns in `period` by severity (see
    coaching.signals). Raises PermissionDenied when `manager` is a rep or may
    not see `rep`, ValidationError when `rep` is `manager`.
    """
    if manager.role not in (Role.ADMIN, Role.MANAGER):
        raise PermissionDenied("Only managers and admins schedule 1:1s.")
    visible_ids = membership_ids_visible(manager)
    if visible_ids is not None and rep.pk not in visible_ids:
        raise PermissionDenied("The manager may not see this rep.")
    if rep.pk == manager.pk:
        raise ValidationError(_("A 1:1 needs two people; pick one of your reps."))

    signals = rep_signals(organization=organization, membership=rep, period=period, now=now)

    with transaction.atomic():
        one_on_one = OneOnOne.objects.create(
            organization=organization, rep=rep, manager=manager, scheduled_at=scheduled_at, period_label=period.label
        )
        items = _agenda_items_generated(one_on_one=one_on_one, signals=signals, first_position=1)
        AgendaItem.objects.bulk_create(items)
        audit_record(
            organization=organization,
            actor=manager.user,
            action=ONE_ON_ONE_CREATED,
            object_type="one_on_one",
            object_id=one_on_one.pk,
            after={**_one_on_one_state(one_on_one), "agenda": [_agenda_audit_entry(item) for item in items]},
        )

    logger.info(
        "1:1 scheduled organization_id=%s one_on_one_id=%s manager_id=%s rep_id=%s agenda_items=%s",
        organization.pk,
        one_on_one.pk,
        manager.pk,
        rep.pk,
        len(items),
    )
    return one_on_one


def one_on_one_update(
    *, one_on_one: OneOnOne, actor: Membership, scheduled_at: dt.datetime, period: Period, status: str
) -> bool:
    """Change the date, period or status of a 1:1; return False when nothing changed."""
    _require_manage(actor, one_on_one)
    before = _one_on_one_state(one_on_one)
    one_on_one.scheduled_at = scheduled_at
    one_on_one.period_label = period.label
    one_on_one.status = OneOnOneStatus(status)
    after = _one_on_one_state(one_on_one)
    if after == before:
        # Saving the form unchanged writes no row and no audit entry.
        return False

    with transaction.atomic():
        one_on_one.save(update_fields=["scheduled_at", "period_label", "status", "updated_at"])
        _audit(actor, ONE_ON_ONE_CHANGED, "one_on_one", one_on_one.pk, before=before, after=after)
    logger.info(
        "1:1 changed organization_id=%s one_on_one_id=%s actor_id=%s",
        one_on_one.organization_id,
        one_on_one.pk,
        actor.pk,
    )
    return True


# --- agenda ---------------------------------------------------------------------------------------


def agenda_refresh(*, one_on_one: OneOnOne, actor: Membership, now: dt.datetime | None = None) -> int:
    """Append the open action items and current concerns that the agenda does not list yet; return how many.

    Items the manager removed come back if they still apply, because the
    agenda keeps no record of removals.
    """
    _require_manage(actor, one_on_one)
    period = _period_of(one_on_one)
    signals = rep_signals(organization=one_on_one.organization, membership=one_on_one.rep, period=period, now=now)

    with transaction.atomic():
        _lock_agenda(one_on_one.pk)
        existing = list(AgendaItem.objects.filter(one_on_one=one_on_one))
        listed_codes = {item.signal_code for item in existing if item.signal_code}
        listed_action_ids = {item.action_item_id for item in existing if item.action_item_id}
        new_signals = [signal for signal in signals if signal.code not in listed_codes]
        items = _agenda_items_generated(
            one_on_one=one_on_one,
            signals=new_signals,
            first_position=max((item.position for item in existing), default=0) + 1,
            skip_action_item_ids=listed_action_ids,
        )
        if not items:
            return 0
        AgendaItem.objects.bulk_create(items)
        _audit(actor, AGENDA_CHANGED, "one_on_one", one_on_one.pk, after={"added": [_agenda_audit_entry(item) for item in items]})
    logger.info(
        "1:1 agenda refreshed organization_id=%s one_on_one_id=%s added=%s", one_on_one.organization_id, one_on_one.pk, len(items)
    )
    return len(items)


def agenda_item_add(*, one_on_one: OneOnOne, actor: Membership, title: str) -> AgendaItem:
    """Append a topic typed by the manager to the end of the agenda."""
    _require_manage(actor, one_on_one)
    with transaction.atomic():
        _lock_agenda(one_on_one.pk)
        last = AgendaItem.objects.filter(one_on_one=one_on_one).aggregate(last=Max("position"))
        item = AgendaItem.objects.create(
            organization_id=one_on_one.organization_id,
            one_on_one=one_on_one,
            position=(last["last"] or 0) + 1,
            kind=AgendaItemKind.TOPIC,
            title=title.strip(),
        )
        _audit(actor, AGENDA_CHANGED, "agenda_item", item.pk, after={"one_on_one": one_on_one.pk, "title": item.title})
    return item


def agenda_item_update(*, item: AgendaItem, actor: Membership, title: str, is_discussed: bool) -> bool:
    """Change an agenda item's text or its discussed mark; return False when nothing changed.

    `title` is compared with the text the reader saw (`display_title`). When it
    is unchanged, a generated item keeps its label in every reader's language;
    a changed text is stored as typed.
    """
    _require_manage(actor, item.one_on_one)
    before = {"title": item.display_title, "is_discussed": item.is_discussed}
    after = {"title": title.strip(), "is_discussed": is_discussed}
    if before == after:
        return False
    with transaction.atomic():
        if after["title"] != before["title"]:
            item.title = after["title"]
        item.is_discussed = after["is_discussed"]
        item.save(update_fields=["title", "is_discussed"])
        _audit(actor, AGENDA_CHANGED, "agenda_item", item.pk, before=before, after=after)
    return True


def agenda_item_delete(*, item: AgendaItem, actor: Membership) -> None:
    """Remove an item from the agenda; a linked action item stays as it is."""
    _require_manage(actor, item.one_on_one)
    with transaction.atomic():
        _audit(
            actor, AGENDA_CHANGED, "agenda_item", item.pk, before={"one_on_one": item.one_on_one_id, "title": item.display_title}
        )
        item.delete()


def agenda_item_move(*, item: AgendaItem, actor: Membership, offset: int) -> bool:
    """Move an item `offset` places (−1 up, +1 down) and renumber the agenda 1, 2, …; False at either end."""
    _require_manage(actor, item.one_on_one)
    with transaction.atomic():
        _lock_agenda(item.one_on_one_id)
        items = list(AgendaItem.objects.filter(one_on_one_id=item.one_on_one_id).order_by("position", "id"))
        index = next(index for index, other in enumerate(items) if other.pk == item.pk)
        target = index + offset
        if not 0 <= target < len(items):
            # Already first or last: nothing to move.
            return False
        before = [other.pk for other in items]
        items.insert(target, items.pop(index))
        for position, other in enumerate(items, start=1):
            other.position = position
        AgendaItem.objects.bulk_update(items, ["position"])
        _audit(
            actor, AGENDA_CHANGED, "one_on_one", item.one_on_one_id, before={"order": before}, after={"order": [other.pk for other in items]}
        )
    return True


# --- notes ----------------------------------------------------------------------------------------


def note_add(*, one_on_one: OneOnOne, author: Membership, text: str, visibility: str) -> CoachingNote:
    """Add a note to a 1:1; a private one is readable by `author` only."""
    _require_manage(author, one_on_one)
    with transaction.atomic():
        note = CoachingNote.objects.create(
            organization_id=one_on_one.organization_id,
            one_on_one=one_on_one,
            author=author,
            text=text.strip(),
            visibility=NoteVisibility(visibility),
        )
        _audit(author, NOTE_ADDED, "coaching_note", note.pk, after={"one_on_one": one_on_one.pk, "visibility": note.visibility})
    logger.info(
        "Coaching note added organization_id=%s one_on_one_id=%s note_id=%s", one_on_one.organization_id, one_on_one.pk, note.pk
    )
    return note


def note_update(*, note: CoachingNote, actor: Membership, text: str, visibility: str) -> bool:
    """Change a note's text or visibility; only its author may. Return False when nothing changed."""
    _require_author(actor, note)
    text, visibility = text.strip(), NoteVisibility(visibility)
    if note.text == text and note.visibility == visibility:
        return False
    before = {"visibility": note.visibility, "text_changed": False}
    with transaction.atomic():
        text_changed = note.text != text
        note.text, note.visibility = text, visibility
        note.save(update_fields=["text", "visibility", "updated_at"])
        _audit(actor, NOTE_CHANGED, "coaching_note", note.pk, before=before, after={"visibility": visibility, "text_changed": text_changed})
    return True


def note_delete(*, note: CoachingNote, actor: Membership) -> None:
    """Delete a note; only its author may."""
    _require_author(actor, note)
    with transaction.atomic():
        _audit(actor, NOTE_DELETED, "coaching_note", note.pk, before={"one_on_one": note.one_on_one_id, "visibility": note.visibility})
        note.delete()


# --- action items ---------------------------------------------------------------------------------


def action_item_add(
    *, one_on_one: OneOnOne, actor: Membership, title: str, owner: Membership, due_on: dt.date | None
) -> ActionItem:
    """Record an action item agreed in the 1:1; its owner is the 1:1's rep or manager."""
    _require_manage(actor, one_on_one)
    if owner.pk not in (one_on_one.rep_id, one_on_one.manager_id):
        raise ValidationError(_("The owner of an action item is the rep or the manager of this 1:1."))
    with transaction.atomic():
        item = ActionItem.objects.create(
            organization_id=one_on_one.organization_id, one_on_one=one_on_one, owner=owner, title=title.strip(), due_on=due_on
        )
        _audit(actor, ACTION_ITEM_ADDED, "action_item", item.pk, after=_action_item_state(item))
    logger.info(
        "Action item added organization_id=%s one_on_one_id=%s action_item_id=%s", one_on_one.organization_id, one_on_one.pk, item.pk
    )
    return item


def action_item_set_done(
    *, item: ActionItem, actor: Membership, is_done: bool, shown_in: OneOnOne | None = None
) -> bool:
    """Mark an action item done (or open again); return False when it already was.

    Its owner, admins, the manager of the 1:1 it was agreed in and the manager
    of `shown_in`, a later 1:1 it was carried into, may. A done item no longer
    carries over.
    """
    if not selectors.may_tick_off(membership=actor, action_item=item, shown_in=shown_in):
        raise PermissionDenied("Only the owner or the 1:1's manager ticks off an action item.")
    done_at = timezone.now() if is_done else None
    with transaction.atomic():
        # A conditional update, so two clicks at once record one change.
        changed = ActionItem.objects.filter(pk=item.pk, done_at__isnull=is_done).update(
            done_at=done_at, done_by=actor if is_done else None
        )
        if not changed:
            return False
        before = _action_item_state(item)
        item.done_at, item.done_by = done_at, actor if is_done else None
        _audit(actor, ACTION_ITEM_CHANGED, "action_item", item.pk, before=before, after=_action_item_state(item))
    return True


# --- helpers --------------------------------------------------------------------------------------


def _agenda_items_generated(
    *, one_on_one: OneOnOne, signals: list[Signal], first_position: int, skip_action_item_ids: set[int] = frozenset()
) -> list[AgendaItem]:
    """Build (unsaved) agenda items: open carried-over action items first, then the concern signals."""
    items = []
    for action_item in selectors.action_items_open_carried(one_on_one=one_on_one):
        if action_item.pk in skip_action_item_ids:
            continue
        items.append(
            AgendaItem(
                organization_id=one_on_one.organization_id,
                one_on_one=one_on_one,
                kind=AgendaItemKind.ACTION_ITEM,
                title=action_item.title,
                action_item=action_item,
            )
        )
    for signal in signals:
        if not signal.is_concern:
            continue
        # No label text is stored: AgendaItem.display_title renders it from the metric and
        # `label_params` in each reader's language.
        stored_signal = signal.as_dict()
        del stored_signal["label"]
        items.append(
            AgendaItem(
                organization_id=one_on_one.organization_id,
                one_on_one=one_on_one,
                kind=AgendaItemKind.SIGNAL,
                title="",
                signal=stored_signal,
            )
        )
    for position, item in enumerate(items, start=first_position):
        item.position = position
    return items


def _lock_agenda(one_on_one_id: int) -> None:
    """Lock the 1:1's row until the transaction ends, so two agenda edits do not hand out one position twice."""
    list(OneOnOne.objects.select_for_update().filter(pk=one_on_one_id).values_list("pk", flat=True))


def _period_of(one_on_one: OneOnOne) -> Period:
    return parse_period(one_on_one.period_label, one_on_one.organization.fiscal_year_start_month)


def _require_manage(actor: Membership, one_on_one: OneOnOne) -> None:
    if not selectors.may_manage(membership=actor, one_on_one=one_on_one):
        raise PermissionDenied("Only the 1:1's manager and admins change it.")


def _require_author(actor: Membership, note: CoachingNote) -> None:
    if note.author_id != actor.pk:
        raise PermissionDenied("Only the author changes a note.")


def _one_on_one_state(one_on_one: OneOnOne) -> dict:
    return {
        "rep": one_on_one.rep_id,
        "manager": one_on_one.manager_id,
        "scheduled_at": one_on_one.scheduled_at.isoformat(),
        "period": one_on_one.period_label,
        "status": str(one_on_one.status),
    }


def _agenda_audit_entry(item: AgendaItem) -> str | dict:
    """Return an agenda item for the audit log: the typed text, or a signal's label parameters.

    The audit page renders a signal's label in the reader's language from `metric` and
    `label_params`. `title` is the label in the language of the person who wrote the row.
    """
    if item.title or not item.signal or "label_params" not in item.signal:
        return item.title
    return {"metric": item.signal.get("metric", ""), "label_params": item.signal["label_params"], "title": item.display_title}


def _action_item_state(item: ActionItem) -> dict:
    return {
        "one_on_one": item.one_on_one_id,
        "title": item.title,
        "owner": item.owner_id,
        "due_on": item.due_on.isoformat() if item.due_on else None,
        "done_at": item.done_at.isoformat() if item.done_at else None,
    }


def _audit(actor: Membership, action: str, object_type: str, object_id, *, before=None, after=None) -> None:
    audit_record(
        organization=actor.organization_id,
        actor=actor.user,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )
