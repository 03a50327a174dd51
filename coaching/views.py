"""1:1 pages under /o/<org-slug>/coaching/: the list, scheduling, and one 1:1 with agenda, notes and action items.

Every view that names a 1:1 first fetches it through
`selectors.one_on_one_get_visible` (404 for 1:1s the member may not see),
then checks the role, then the method, so an id of another tenant or rep is
a 404 for every method. The
agenda, notes and action-item sections are partials of the detail page: an
htmx request gets the changed section, any other request a redirect back.
"""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from coaching import selectors, services
from coaching.forms import (
    ActionItemForm,
    AgendaItemEditForm,
    AgendaItemForm,
    NoteDeleteForm,
    NoteForm,
    OneOnOneEditForm,
    OneOnOneForm,
)
from coaching.models import OneOnOne
from coaching.signals import (
    DEFAULT_THRESHOLDS,
    Signal,
    rep_signals_and_comparisons,
    team_median_min_values,
)
from goals.attainment import organization_today
from pipelines.models import Deal
from spm.fiscal import parse_period
from spm.http import lookup_then_post_only
from spm.models import Role

ONE_ON_ONES_PER_PAGE = 25
# Deals listed under one signal on the page; the rest are counted, and the deal-list link lists all.
DEALS_PER_SIGNAL = 20
AGENDA, NOTES, ACTION_ITEMS = "agenda", "notes", "action-items"


@dataclass(frozen=True)
class SignalRow:
    signal: Signal
    deals: list[Deal]
    hidden_deal_count: int
    deal_list_url: str


def coaching_home(request, org_slug):
    membership = request.membership
    page = Paginator(selectors.one_on_one_list_visible(membership=membership), ONE_ON_ONES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    open_counts = selectors.open_action_item_counts(one_on_one_ids=[one_on_one.pk for one_on_one in page])
    context = {
        "page": page,
        "rows": [(one_on_one, open_counts.get(one_on_one.pk, 0)) for one_on_one in page],
        "my_action_items": selectors.action_items_open_owned(membership=membership),
        "can_schedule": membership.role != Role.REP,
    }
    return render(request, "coaching/home.html", context)


def one_on_one_new(request, org_slug):
    organization, membership = request.organization, request.membership
    if membership.role == Role.REP:
        raise Http404("Only managers and admins schedule 1:1s.")
    form = OneOnOneForm(
        request.POST or None, organization=organization, today=organization_today(organization), membership=membership
    )
    if request.method == "POST" and form.is_valid():
        try:
            one_on_one = services.one_on_one_create(
                organization=organization,
                manager=membership,
                rep=form.cleaned_data["rep"],
                scheduled_at=form.scheduled_at(),
                period=form.cleaned_data["period"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("1:1 scheduled; its agenda was generated from the rep's numbers."))
            return redirect("coaching_one_on_one", org_slug=org_slug, one_on_one_id=one_on_one.pk)
    return render(request, "coaching/one_on_one_form.html", {"form": form}, status=400 if form.errors else 200)


def one_on_one_detail(request, org_slug, one_on_one_id):
    one_on_one = selectors.one_on_one_get_visible(membership=request.membership, one_on_one_id=one_on_one_id)
    return render(request, "coaching/one_on_one_detail.html", _detail_context(request, one_on_one))


def one_on_one_edit(request, org_slug, one_on_one_id):
    organization = request.organization
    one_on_one = _managed_one_on_one(request, one_on_one_id)
    form = OneOnOneEditForm.for_instance(
        one_on_one, organization=organization, today=organization_today(organization), data=request.POST or None
    )
    if request.method == "POST" and form.is_valid():
        services.one_on_one_update(
            one_on_one=one_on_one,
            actor=request.membership,
            scheduled_at=form.scheduled_at(),
            period=form.cleaned_data["period"],
            status=form.cleaned_data["status"],
        )
        return redirect("coaching_one_on_one", org_slug=org_slug, one_on_one_id=one_on_one.pk)
    context = {"form": form, "one_on_one": one_on_one}
    return render(request, "coaching/one_on_one_form.html", context, status=400 if form.errors else 200)


# --- agenda ---------------------------------------------------------------------------------------


def _managed_lookup(request, one_on_one_id):
    return {"one_on_one": _managed_one_on_one(request, one_on_one_id)}


@lookup_then_post_only(_managed_lookup)
def agenda_add(request, org_slug, one_on_one):
    form = AgendaItemForm(request.POST)
    if form.is_valid():
        services.agenda_item_add(one_on_one=one_on_one, actor=request.membership, title=form.cleaned_data["title"])
        form = None
    return _section_response(request, one_on_one, AGENDA, agenda_form=form)


@lookup_then_post_only(_managed_lookup)
def agenda_refresh(request, org_slug, one_on_one):
    added = services.agenda_refresh(one_on_one=one_on_one, actor=request.membership)
    notice = "" if added else _("The agenda already lists every open action item and current concern.")
    return _section_response(request, one_on_one, AGENDA, notice=notice)


def _agenda_item_lookup(request, one_on_one_id, item_id):
    one_on_one = _managed_one_on_one(request, one_on_one_id)
    return {"one_on_one": one_on_one, "item": selectors.agenda_item_get(one_on_one=one_on_one, item_id=item_id)}


@lookup_then_post_only(_agenda_item_lookup)
def agenda_item(request, org_slug, one_on_one, item):
    """Save, move (`op=up` or `op=down`) or remove (`op=delete`) one agenda item."""
    operation, actor, notice = request.POST.get("op", "save"), request.membership, ""
    if operation in ("up", "down"):
        services.agenda_item_move(item=item, actor=actor, offset=-1 if operation == "up" else 1)
    elif operation == "delete":
        services.agenda_item_delete(item=item, actor=actor)
    else:
        form = AgendaItemEditForm(request.POST)
        if form.is_valid():
            services.agenda_item_update(item=item, actor=actor, **form.cleaned_data)
        else:
            notice = _("The topic was not saved: %(errors)s") % {"errors": _errors_text(form)}
    return _section_response(request, one_on_one, AGENDA, notice=notice)


# --- notes ----------------------------------------------------------------------------------------


@lookup_then_post_only(_managed_lookup)
def note_add(request, org_slug, one_on_one):
    form = NoteForm(request.POST)
    if form.is_valid():
        services.note_add(one_on_one=one_on_one, author=request.membership, **form.cleaned_data)
        form = None
    return _section_response(request, one_on_one, NOTES, note_form=form)


def _note_lookup(request, one_on_one_id, note_id):
    one_on_one = _managed_one_on_one(request, one_on_one_id)
    coaching_note = selectors.note_get_visible(one_on_one=one_on_one, membership=request.membership, note_id=note_id)
    return {"one_on_one": one_on_one, "coaching_note": coaching_note}


@lookup_then_post_only(_note_lookup)
def note(request, org_slug, one_on_one, coaching_note):
    """Save (`op=save`) or delete (`op=delete` with the `confirm` box ticked) a note; only its author reaches it."""
    if coaching_note.author_id != request.membership.pk:
        raise Http404("Only the author changes a note.")
    notice = ""
    if request.POST.get("op") == "delete":
        form = NoteDeleteForm(request.POST)
        if form.is_valid():
            services.note_delete(note=coaching_note, actor=request.membership)
        else:
            notice = _("The note was not deleted: %(errors)s") % {"errors": _errors_text(form)}
    else:
        form = NoteForm(request.POST)
        if form.is_valid():
            services.note_update(note=coaching_note, actor=request.membership, **form.cleaned_data)
        else:
            notice = _("The note was not saved: %(errors)s") % {"errors": _errors_text(form)}
    return _section_response(request, one_on_one, NOTES, notice=notice)


# --- action items ---------------------------------------------------------------------------------


@lookup_then_post_only(_managed_lookup)
def action_item_add(request, org_slug, one_on_one):
    form = ActionItemForm(request.POST, one_on_one=one_on_one)
    if form.is_valid():
        services.action_item_add(
            one_on_one=one_on_one,
            actor=request.membership,
            title=form.cleaned_data["title"],
            owner=form.owner_membership(),
            due_on=form.cleaned_data["due_on"],
        )
        form = None
    return _section_response(request, one_on_one, ACTION_ITEMS, action_item_form=form)


def _action_item_lookup(request, one_on_one_id, action_item_id):
    membership = request.membership
    one_on_one = selectors.one_on_one_get_visible(membership=membership, one_on_one_id=one_on_one_id)
    item = selectors.action_item_get(one_on_one=one_on_one, action_item_id=action_item_id)
    if not selectors.may_tick_off(membership=membership, action_item=item, shown_in=one_on_one):
        raise Http404("Only the owner or the 1:1's manager ticks off an action item.")
    return {"one_on_one": one_on_one, "item": item}


@lookup_then_post_only(_action_item_lookup)
def action_item(request, org_slug, one_on_one, item):
    """Mark an action item done (`op=done`) or open again (`op=reopen`); its owner or the 1:1's managers."""
    services.action_item_set_done(
        item=item, actor=request.membership, is_done=request.POST.get("op") != "reopen", shown_in=one_on_one
    )
    if request.POST.get("next") == "home":
        return redirect("coaching_home", org_slug=org_slug)
    return _section_response(request, one_on_one, ACTION_ITEMS)


# --- helpers --------------------------------------------------------------------------------------


def _managed_one_on_one(request, one_on_one_id: int) -> OneOnOne:
    """Fetch a visible 1:1 that the member may change; Http404 otherwise, also for reps."""
    one_on_one = selectors.one_on_one_get_visible(membership=request.membership, one_on_one_id=one_on_one_id)
    if not selectors.may_manage(membership=request.membership, one_on_one=one_on_one):
        raise Http404("Only the 1:1's manager and admins change it.")
    return one_on_one


def _section_response(request, one_on_one: OneOnOne, section: str, *, notice: str = "", **forms):
    """Render the changed section for htmx; redirect to it otherwise, or show the page with the form's errors.

    `notice` is shown in the section for htmx and as a message after the redirect.
    """
    invalid = any(form is not None and form.errors for form in forms.values())
    if request.htmx:
        context = {**_section_context(request, one_on_one, section, **forms), "section_notice": notice}
        response = render(request, f"coaching/one_on_one_detail.html#{section}", context)
        patch_vary_headers(response, ("HX-Request",))
        return response
    if invalid:
        return render(request, "coaching/one_on_one_detail.html", _detail_context(request, one_on_one, **forms), status=400)
    if notice:
        messages.info(request, notice)
    url = reverse("coaching_one_on_one", kwargs={"org_slug": request.organization.slug, "one_on_one_id": one_on_one.pk})
    return redirect(f"{url}#{section}")


def _section_context(request, one_on_one: OneOnOne, section: str, **forms) -> dict:
    membership = request.membership
    context = {"one_on_one": one_on_one, "can_manage": selectors.may_manage(membership=membership, one_on_one=one_on_one)}
    if section == AGENDA:
        context.update(
            agenda_items=selectors.agenda_item_list(one_on_one=one_on_one),
            agenda_form=forms.get("agenda_form") or AgendaItemForm(auto_id="id_agenda_%s"),
        )
    elif section == NOTES:
        context.update(
            notes=selectors.note_list_visible(one_on_one=one_on_one, membership=membership),
            note_form=forms.get("note_form") or NoteForm(auto_id="id_note_%s"),
        )
    else:
        agreed, carried = selectors.action_items_of(one_on_one=one_on_one)
        context.update(
            agreed_items=agreed,
            carried_items=carried,
            action_item_form=forms.get("action_item_form") or ActionItemForm(one_on_one=one_on_one, auto_id="id_action_%s"),
        )
    return context


def _detail_context(request, one_on_one: OneOnOne, **forms) -> dict:
    """Everything the detail page shows: the rep's current signals with their deals, and every section."""
    organization, membership = request.organization, request.membership
    period = parse_period(one_on_one.period_label, organization.fiscal_year_start_month)
    signals, comparisons = rep_signals_and_comparisons(organization=organization, membership=one_on_one.rep, period=period)
    shown_ids = {deal_id for signal in signals for deal_id in signal.deal_ids[:DEALS_PER_SIGNAL]}
    deals = selectors.deals_by_id(deal_ids=shown_ids, membership=membership)
    deal_list_url = reverse("deal_list", kwargs={"org_slug": organization.slug})
    rows = [
        SignalRow(
            signal=signal,
            deals=[deals[deal_id] for deal_id in signal.deal_ids[:DEALS_PER_SIGNAL] if deal_id in deals],
            hidden_deal_count=max(len(signal.deal_ids) - DEALS_PER_SIGNAL, 0),
            deal_list_url=f"{deal_list_url}?{urlencode(signal.deal_list_params)}" if signal.deal_list_params else "",
        )
        for signal in signals
    ]
    context = {
        "period": period,
        "signal_rows": rows,
        "comparisons": comparisons,
        "thresholds": DEFAULT_THRESHOLDS,
        "min_team_values": team_median_min_values(organization),
    }
    for section in (AGENDA, NOTES, ACTION_ITEMS):
        context.update(_section_context(request, one_on_one, section, **forms))
    return context


def _errors_text(form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)
