"""1:1s: agenda generation with carried-over action items, editing, notes, permissions and audit entries."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django_scopes import scope, scopes_disabled

from coaching import services
from coaching.forms import OneOnOneEditForm
from coaching.models import (
    ActionItem,
    AgendaItem,
    AgendaItemKind,
    CoachingNote,
    NoteVisibility,
    OneOnOne,
)
from coaching.selectors import action_items_of
from goals.attainment import organization_today
from spm.fiscal import parse_period
from spm.models import AuditLog, Role
from tests.factories import MembershipFactory, UserFactory

Q4 = parse_period("2017-Q4", 1)
NOW = dt.datetime(2017, 10, 20, 12, 0, tzinfo=dt.UTC)


def at(month, day, hour=9):
    return dt.datetime(2017, month, day, hour, 0, tzinfo=dt.UTC)


def _schedule(org, manager, rep, when):
    with scope(organization=org):
        return services.one_on_one_create(organization=org, manager=manager, rep=rep, scheduled_at=when, period=Q4, now=NOW)


def _client(membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def _url(name, org, **kwargs):
    return reverse(name, kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def first_one_on_one(org, manager_member, member):
    """A held 1:1 with one open and one done action item, a private and a shared note."""
    one_on_one = _schedule(org, manager_member, member, at(10, 2))
    with scope(organization=org):
        open_item = services.action_item_add(
            one_on_one=one_on_one, actor=manager_member, title="Send two references", owner=member, due_on=dt.date(2017, 10, 13)
        )
        done_item = services.action_item_add(
            one_on_one=one_on_one, actor=manager_member, title="Update the CRM stages", owner=member, due_on=None
        )
        services.action_item_set_done(item=done_item, actor=member, is_done=True)
        # Done before the next 1:1s of these tests take place.
        ActionItem.objects.filter(pk=done_item.pk).update(done_at=at(10, 5))
        services.note_add(one_on_one=one_on_one, author=manager_member, text="Seems tired; ask about workload.", visibility="private")
        services.note_add(one_on_one=one_on_one, author=manager_member, text="Great demo at Kunde AG.", visibility="shared")
    return one_on_one, open_item, done_item


def test_agenda_carries_open_action_item(org, manager_member, member, first_one_on_one):
    _first, open_item, done_item = first_one_on_one

    second = _schedule(org, manager_member, member, at(10, 16))

    with scope(organization=org):
        items = list(AgendaItem.objects.filter(one_on_one=second).order_by("position"))
    assert [(item.position, item.kind, item.title) for item in items] == [
        (1, AgendaItemKind.ACTION_ITEM, "Send two references")
    ]
    assert items[0].action_item_id == open_item.pk
    assert done_item.pk not in {item.action_item_id for item in items}


def test_open_item_carries_until_done(org, manager_member, member, first_one_on_one):
    _first, open_item, _done = first_one_on_one
    second = _schedule(org, manager_member, member, at(10, 16))
    third = _schedule(org, manager_member, member, at(10, 30))

    with scope(organization=org):
        agreed, carried = action_items_of(one_on_one=third)
        services.action_item_set_done(item=open_item, actor=member, is_done=True)
        fourth = _schedule(org, manager_member, member, at(11, 13))
        fourth_items = list(AgendaItem.objects.filter(one_on_one=fourth))
        second_items = list(AgendaItem.objects.filter(one_on_one=second))
        third_carried = AgendaItem.objects.filter(one_on_one=third, action_item=open_item).count()

    assert agreed == []
    assert [item.pk for item in carried] == [open_item.pk]
    assert third_carried == 1
    assert fourth_items == []
    assert len(second_items) == 1


@pytest.fixture
def conversion_deals(org, manager_member, member, other_rep):
    """Deals created in Q4 2017; conversion Qualified → Proposal: A 1 of 5, B 2 of 4, C 3 of 4."""
    from pipelines.models import StageKind
    from tests.factories import DealFactory, PipelineFactory, StageFactory

    with scopes_disabled():
        rep_c = MembershipFactory(
            organization=org, role=Role.REP, team=member.team, manager=manager_member, user=UserFactory(email="c@acme.example")
        )
        pipeline = PipelineFactory(organization=org)
        qualified = StageFactory(pipeline=pipeline, name="Qualified", order=1)
        proposal = StageFactory(pipeline=pipeline, name="Proposal", order=2)
        StageFactory(pipeline=pipeline, name="Won", order=3, kind=StageKind.WON)
        created = dt.datetime(2017, 10, 3, 12, tzinfo=dt.UTC)
        for rep, at_qualified, at_proposal in ((member, 4, 1), (other_rep, 2, 2), (rep_c, 1, 3)):
            for stage, count in ((qualified, at_qualified), (proposal, at_proposal)):
                for _index in range(count):
                    DealFactory(owner=rep, stage=stage, created_at=created)
    return qualified


def test_agenda_lists_rep_signal(org, manager_member, member, conversion_deals):
    """A's agenda gets the conversion concern with its values."""
    one_on_one = _schedule(org, manager_member, member, at(10, 16))

    with scope(organization=org):
        (item,) = AgendaItem.objects.filter(one_on_one=one_on_one)
    assert item.kind == AgendaItemKind.SIGNAL
    assert item.title == ""
    assert item.display_title == "Stage conversion Qualified → Proposal"
    assert item.signal["label_params"] == {"pipeline": "", "stage": "Qualified", "next_stage": "Proposal"}
    assert "label" not in item.signal
    assert item.signal["rep_value"] == "0.2"
    assert item.signal["team_median"] == "0.5"
    assert len(item.signal["deal_ids"]) == 5


def _set_language(membership, language):
    with scopes_disabled():
        membership.user.language = language
        membership.user.save(update_fields=["language"])


def test_generated_item_in_reader_language(org, manager_member, member, conversion_deals):
    """A German manager schedules the 1:1; the English rep reads the signal's label in English."""
    with translation.override("de"):
        one_on_one = _schedule(org, manager_member, member, at(10, 16))
    _set_language(manager_member, "de")
    _set_language(member, "en")
    url = _url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk)

    rep_page = _client(member).get(url).content.decode()
    manager_page = _client(manager_member).get(url).content.decode()

    assert "<span>Stage conversion Qualified → Proposal</span>" in rep_page
    assert "Phasenkonversion" not in rep_page
    assert 'value="Phasenkonversion Qualified → Proposal"' in manager_page


def test_stored_label_of_old_item_still_shown(org, manager_member, member):
    """Items generated before labels were stored as parameters show their stored text."""
    one_on_one = _schedule(org, manager_member, member, at(10, 16))
    with scope(organization=org):
        AgendaItem.objects.create(
            organization=org,
            one_on_one=one_on_one,
            position=1,
            kind=AgendaItemKind.SIGNAL,
            title="Ø Deal-Größe",
            signal={"metric": "average_deal_size", "code": "average_deal_size", "label": "Ø Deal-Größe",
                    "rep_value": "1000", "team_median": "2000", "value_format": "money", "deal_ids": [1, 2, 3]},
        )
    _set_language(member, "en")

    page = _client(member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk)).content.decode()

    assert "<span>Ø Deal-Größe</span>" in page


def test_saving_unchanged_label_keeps_it_generated(org, manager_member, member, conversion_deals):
    one_on_one = _schedule(org, manager_member, member, at(10, 16))
    with scope(organization=org):
        item = AgendaItem.objects.get(one_on_one=one_on_one)
    url = _url("coaching_agenda_item", org, one_on_one_id=one_on_one.pk, item_id=item.pk)

    _client(manager_member).post(url, {"op": "save", "title": "Stage conversion Qualified → Proposal", "is_discussed": "on"})

    with scope(organization=org):
        item.refresh_from_db()
    assert item.title == ""
    assert item.is_discussed is True
    with translation.override("de"):
        assert item.display_title == "Phasenkonversion Qualified → Proposal"


def test_edited_label_stored_as_typed(org, manager_member, member, conversion_deals):
    one_on_one = _schedule(org, manager_member, member, at(10, 16))
    with scope(organization=org):
        item = AgendaItem.objects.get(one_on_one=one_on_one)
    url = _url("coaching_agenda_item", org, one_on_one_id=one_on_one.pk, item_id=item.pk)

    _client(manager_member).post(url, {"op": "save", "title": "Why do deals stop at Qualified?"})

    with scope(organization=org):
        item.refresh_from_db()
    assert item.title == "Why do deals stop at Qualified?"
    with translation.override("de"):
        assert item.display_title == "Why do deals stop at Qualified?"


def test_create_writes_audit_entry(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))

    with scope(organization=org):
        entry = AuditLog.objects.get(action="coaching.one_on_one_created")
    assert entry.object_id == str(one_on_one.pk)
    assert entry.actor == manager_member.user
    assert entry.after["rep"] == member.pk
    assert entry.after["period"] == "2017-Q4"


def test_note_audit_omits_text(org, first_one_on_one):
    with scope(organization=org):
        entries = list(AuditLog.objects.filter(action="coaching.note_added"))
    assert len(entries) == 2
    assert {entry.after["visibility"] for entry in entries} == {"private", "shared"}
    assert all("text" not in entry.after for entry in entries)


def test_manager_cannot_schedule_with_invisible_rep(org, manager_member):
    from django.core.exceptions import PermissionDenied

    with scopes_disabled():
        stranger = MembershipFactory(organization=org, role=Role.REP, user=UserFactory(email="stranger@acme.example"))
    with pytest.raises(PermissionDenied):
        _schedule(org, manager_member, stranger, at(10, 2))


# --- pages ----------------------------------------------------------------------------------------


def test_rep_reads_shared_note_only(org, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one

    response = _client(member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk))

    assert response.status_code == 200
    assert "Great demo at Kunde AG." in response.content.decode()
    assert "ask about workload" not in response.content.decode()


def test_manager_reads_private_note(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one

    response = _client(manager_member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk))

    assert response.status_code == 200
    assert "ask about workload" in response.content.decode()
    assert "Great demo at Kunde AG." in response.content.decode()


def test_admin_cannot_read_manager_private_note(org, admin_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one

    response = _client(admin_member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk))

    assert response.status_code == 200
    assert "ask about workload" not in response.content.decode()


def test_other_rep_gets_404(org, other_rep, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one

    response = _client(other_rep).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk))

    assert response.status_code == 404


def test_other_rep_list_hides_1on1(org, other_rep, first_one_on_one):
    response = _client(other_rep).get(_url("coaching_home", org))

    assert response.status_code == 200
    assert "1:1 with" not in response.content.decode()
    assert response.context["rows"] == []


def test_other_org_1on1_is_404(org, other_org, admin_member, other_org_admin):
    with scopes_disabled():
        foreign_rep = MembershipFactory(organization=other_org, role=Role.REP, user=UserFactory(email="r@globex.example"))
    foreign = _schedule(other_org, other_org_admin, foreign_rep, at(10, 2))

    response = _client(admin_member).get(_url("coaching_one_on_one", org, one_on_one_id=foreign.pk))

    assert response.status_code == 404


def test_rep_cannot_post_note(org, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one

    response = _client(member).post(
        _url("coaching_note_add", org, one_on_one_id=one_on_one.pk), {"text": "Mine", "visibility": "shared"}
    )

    assert response.status_code == 404
    with scope(organization=org):
        assert CoachingNote.objects.filter(text="Mine").count() == 0


def test_rep_cannot_read_private_note_by_id(org, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    with scope(organization=org):
        private = CoachingNote.objects.get(visibility=NoteVisibility.PRIVATE)

    response = _client(member).post(_url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk))

    assert response.status_code == 404


def test_rep_ticks_off_own_action_item(org, member, first_one_on_one):
    one_on_one, open_item, _done = first_one_on_one

    response = _client(member).post(
        _url("coaching_action_item", org, one_on_one_id=one_on_one.pk, action_item_id=open_item.pk), {"op": "done", "next": "home"}
    )

    assert response.status_code == 302
    with scope(organization=org):
        open_item.refresh_from_db()
        assert open_item.done_by_id == member.pk
    assert open_item.done_at is not None


def test_agenda_add_full_page_redirects(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))

    response = _client(manager_member).post(_url("coaching_agenda_add", org, one_on_one_id=one_on_one.pk), {"title": "Pricing"})

    assert response.status_code == 302
    assert response["Location"].endswith(f"/coaching/1on1/{one_on_one.pk}/#agenda")
    with scope(organization=org):
        assert list(AgendaItem.objects.filter(one_on_one=one_on_one).values_list("title", "position")) == [("Pricing", 1)]


def test_agenda_add_fragment(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))

    response = _client(manager_member).post(
        _url("coaching_agenda_add", org, one_on_one_id=one_on_one.pk), {"title": "Pricing"}, HTTP_HX_REQUEST="true"
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="agenda"')
    assert 'value="Pricing"' in content
    assert "<html" not in content
    assert "HX-Request" in response["Vary"]


def test_agenda_empty_topic_rejected(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))

    response = _client(manager_member).post(_url("coaching_agenda_add", org, one_on_one_id=one_on_one.pk), {"title": " "})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_agenda_move_and_remove(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))
    client = _client(manager_member)
    for title in ("First", "Second", "Third"):
        client.post(_url("coaching_agenda_add", org, one_on_one_id=one_on_one.pk), {"title": title})
    with scope(organization=org):
        third = AgendaItem.objects.get(title="Third")
        first = AgendaItem.objects.get(title="First")

    client.post(_url("coaching_agenda_item", org, one_on_one_id=one_on_one.pk, item_id=third.pk), {"op": "up"})
    client.post(_url("coaching_agenda_item", org, one_on_one_id=one_on_one.pk, item_id=first.pk), {"op": "delete"})
    client.post(
        _url("coaching_agenda_item", org, one_on_one_id=one_on_one.pk, item_id=third.pk),
        {"op": "save", "title": "Third, reworded", "is_discussed": "on"},
    )

    with scope(organization=org):
        rows = list(AgendaItem.objects.filter(one_on_one=one_on_one).order_by("position").values_list("title", "is_discussed"))
        assert AuditLog.objects.filter(action="coaching.agenda_changed").count() == 6
    assert rows == [("Third, reworded", True), ("Second", False)]


def _current_quarter(org) -> str:
    from goals.attainment import organization_today
    from spm.fiscal import QUARTER, period_containing

    return period_containing(organization_today(org), QUARTER, 1).label


def test_schedule_page_creates_1on1(org, manager_member, member):
    period = _current_quarter(org)
    response = _client(manager_member).post(
        _url("coaching_one_on_one_new", org),
        {"rep": member.pk, "scheduled_on": "2017-10-16", "scheduled_time": "09:30", "period": period},
    )

    with scope(organization=org):
        one_on_one = OneOnOne.objects.get()
    assert response.status_code == 302
    assert one_on_one.rep_id == member.pk
    assert one_on_one.manager_id == manager_member.pk
    assert one_on_one.period_label == period
    # 09:30 in Europe/Berlin (summer time) is 07:30 UTC.
    assert one_on_one.scheduled_at == dt.datetime(2017, 10, 16, 7, 30, tzinfo=dt.UTC)


def test_schedule_page_offers_quarters_with_data(org, manager_member, member):
    """Without KPI data the form offers the current and the previous quarter; the default is the current one."""
    response = _client(manager_member).get(_url("coaching_one_on_one_new", org))

    form = response.context["form"]
    labels = [label for label, _name in form.fields["period"].choices]
    assert labels[0] == _current_quarter(org)
    assert len(labels) == 2
    assert form.fields["period"].initial == _current_quarter(org)


def test_schedule_page_rejects_other_team_rep(org, manager_member):
    with scopes_disabled():
        stranger = MembershipFactory(organization=org, role=Role.REP, user=UserFactory(email="stranger@acme.example"))

    response = _client(manager_member).post(
        _url("coaching_one_on_one_new", org),
        {"rep": stranger.pk, "scheduled_on": "2017-10-16", "scheduled_time": "09:30", "period": _current_quarter(org)},
    )

    assert response.status_code == 400
    assert "Pick one of your reps from the list" in response.content.decode()
    with scope(organization=org):
        assert OneOnOne.objects.count() == 0


def test_detail_page_german_date(org, manager_member, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    with scopes_disabled():
        manager_member.user.language = "de"
        manager_member.user.save(update_fields=["language"])

    response = _client(manager_member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk))

    # 09:00 UTC is 11:00 in Berlin on 2 October 2017; the due date of the open item is 13.10.2017.
    assert "02.10.2017 11:00" in response.content.decode()
    assert "13.10.2017" in response.content.decode()


def test_action_items_of_lists_done_later_as_carried(org, manager_member, member, first_one_on_one):
    """An item done after a later 1:1 took place still shows as carried into that 1:1."""
    _first, open_item, _done = first_one_on_one
    second = _schedule(org, manager_member, member, at(10, 16))
    with scope(organization=org):
        ActionItem.objects.filter(pk=open_item.pk).update(done_at=at(10, 17))
        _agreed, carried = action_items_of(one_on_one=second)

    assert [item.pk for item in carried] == [open_item.pk]


def test_edit_page_changes_status(org, manager_member, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    client = _client(manager_member)
    url = _url("coaching_one_on_one_edit", org, one_on_one_id=one_on_one.pk)

    form = client.get(url).context["form"]
    response = client.post(
        url,
        {"scheduled_on": "2017-10-02", "scheduled_time": "11:00", "period": form.initial["period"], "status": "held"},
    )

    assert response.status_code == 302
    with scope(organization=org):
        one_on_one.refresh_from_db()
        entry = AuditLog.objects.get(action="coaching.one_on_one_changed")
    assert one_on_one.status == "held"
    # 11:00 in Berlin is 09:00 UTC, the time it already had: only the status changed.
    assert one_on_one.scheduled_at == at(10, 2)
    assert entry.before["status"] == "scheduled"
    assert entry.after["status"] == "held"


def test_edit_page_rejects_future_held(org, manager_member, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    client = _client(manager_member)
    url = _url("coaching_one_on_one_edit", org, one_on_one_id=one_on_one.pk)
    future_day = organization_today(org) + dt.timedelta(days=2)

    form = client.get(url).context["form"]
    response = client.post(
        url,
        {"scheduled_on": future_day.isoformat(), "scheduled_time": "11:00", "period": form.initial["period"], "status": "held"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert response.context["form"].errors["status"] == [
        f"A 1:1 on {future_day:%m/%d/%Y} at 11:00 has not taken place yet, so it cannot be marked as held. "
        "Keep the status Scheduled or enter the date on which it was held."
    ]
    with scope(organization=org):
        one_on_one.refresh_from_db()
    assert one_on_one.status == "scheduled"
    assert one_on_one.scheduled_at == at(10, 2)


@pytest.mark.parametrize(
    ("time", "status", "valid"),
    [
        # NOW is 12:00 UTC, 14:00 in Berlin.
        ("13:59", "held", True),
        ("14:00", "held", True),
        ("14:01", "held", False),
        ("14:01", "scheduled", True),
        ("14:01", "cancelled", True),
    ],
)
def test_edit_form_compares_held_time_in_organization_zone(org, first_one_on_one, time, status, valid):
    one_on_one, _open, _done = first_one_on_one
    data = {"scheduled_on": "2017-10-20", "scheduled_time": time, "period": "2017-Q4", "status": status}

    with scope(organization=org), translation.override("en"):
        form = OneOnOneEditForm.for_instance(one_on_one, organization=org, today=NOW.date(), data=data, now=NOW)
        assert form.is_valid() is valid
        if not valid:
            assert form.errors["status"][0].startswith("A 1:1 on 10/20/2017 at 14:01 has not taken place yet")


def test_edit_page_hidden_from_rep(org, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one

    response = _client(member).get(_url("coaching_one_on_one_edit", org, one_on_one_id=one_on_one.pk))

    assert response.status_code == 404


def test_refresh_adds_missing_items_once(org, manager_member, member, first_one_on_one):
    _first, open_item, _done = first_one_on_one
    second = _schedule(org, manager_member, member, at(10, 16))
    with scope(organization=org):
        AgendaItem.objects.filter(one_on_one=second).delete()
        added_first = services.agenda_refresh(one_on_one=second, actor=manager_member, now=NOW)
        added_again = services.agenda_refresh(one_on_one=second, actor=manager_member, now=NOW)
        items = list(AgendaItem.objects.filter(one_on_one=second))

    assert added_first == 1
    assert added_again == 0
    assert [item.action_item_id for item in items] == [open_item.pk]


def test_refresh_notice_in_fragment(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))

    response = _client(manager_member).post(
        _url("coaching_agenda_refresh", org, one_on_one_id=one_on_one.pk), HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "The agenda already lists every open action item and current concern." in response.content.decode()


def test_note_add_fragment(org, manager_member, member):
    one_on_one = _schedule(org, manager_member, member, at(10, 2))

    response = _client(manager_member).post(
        _url("coaching_note_add", org, one_on_one_id=one_on_one.pk),
        {"text": "Wants more discovery practice.", "visibility": "shared"},
        HTTP_HX_REQUEST="true",
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="notes"')
    assert "Wants more discovery practice." in content
    assert 'data-visibility="shared"' in content


def test_admin_cannot_edit_manager_note(org, admin_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    with scope(organization=org):
        shared = CoachingNote.objects.get(visibility=NoteVisibility.SHARED)

    response = _client(admin_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=shared.pk),
        {"op": "save", "text": "Overwritten", "visibility": "private"},
    )

    assert response.status_code == 404
    with scope(organization=org):
        shared.refresh_from_db()
    assert shared.text == "Great demo at Kunde AG."


def test_manager_edits_own_note(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    with scope(organization=org):
        private = CoachingNote.objects.get(visibility=NoteVisibility.PRIVATE)

    response = _client(manager_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk),
        {"op": "save", "text": "Shared after all.", "visibility": "shared"},
    )

    assert response.status_code == 302
    with scope(organization=org):
        private.refresh_from_db()
        entry = AuditLog.objects.get(action="coaching.note_changed")
    assert private.text == "Shared after all."
    assert private.visibility == NoteVisibility.SHARED
    assert entry.after == {"visibility": "shared", "text_changed": True}


def test_rep_cannot_tick_manager_item(org, manager_member, member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    with scope(organization=org):
        managers_item = services.action_item_add(
            one_on_one=one_on_one, actor=manager_member, title="Book the training", owner=manager_member, due_on=None
        )

    response = _client(member).post(
        _url("coaching_action_item", org, one_on_one_id=one_on_one.pk, action_item_id=managers_item.pk), {"op": "done"}
    )

    assert response.status_code == 404
    with scope(organization=org):
        managers_item.refresh_from_db()
    assert managers_item.done_at is None


def test_action_item_reopen(org, manager_member, first_one_on_one):
    one_on_one, _open, done_item = first_one_on_one

    response = _client(manager_member).post(
        _url("coaching_action_item", org, one_on_one_id=one_on_one.pk, action_item_id=done_item.pk),
        {"op": "reopen"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    with scope(organization=org):
        done_item.refresh_from_db()
    assert done_item.done_at is None
    assert done_item.done_by is None


def test_action_item_done_rolls_back_without_audit(org, member, first_one_on_one, monkeypatch):
    _one_on_one, open_item, _done = first_one_on_one

    def audit_fails(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "_audit", audit_fails)
    with scope(organization=org):
        with pytest.raises(RuntimeError):
            services.action_item_set_done(item=open_item, actor=member, is_done=True)
        stored = ActionItem.objects.get(pk=open_item.pk)

    assert stored.done_at is None
    assert stored.done_by is None


def test_rep_home_lists_own_open_items(org, member, first_one_on_one):
    response = _client(member).get(_url("coaching_home", org))

    assert [item.title for item in response.context["my_action_items"]] == ["Send two references"]
    assert len(response.context["rows"]) == 1


def test_detail_page_shows_signal_and_comparison(org, manager_member, member, conversion_deals):
    one_on_one = _schedule(org, manager_member, member, at(10, 16))
    qualified = conversion_deals

    response = _client(manager_member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk))

    content = response.content.decode()
    (row,) = response.context["signal_rows"]
    assert row.signal.code == f"stage_conversion:{qualified.pk}"
    assert len(row.deals) == 5
    assert row.deal_list_url == (
        f"/o/acme/deals/?analysis=funnel&key={qualified.pk}&period=2017-Q4&owner={member.pk}"
    )
    assert f'data-comparison="stage_conversion:{qualified.pk}"' in content
    assert 'data-comparison="win_rate"' in content


def test_action_item_added_when_member_ids_have_thousands(org, team):
    from tests.factories import MembershipFactory, UserFactory

    with scopes_disabled():
        manager = MembershipFactory(pk=4771, organization=org, role="manager", team=team, user=UserFactory(email="m4771@acme.example"))
        rep = MembershipFactory(pk=4772, organization=org, role="rep", team=team, manager=manager, user=UserFactory(email="r4772@acme.example"))
    one_on_one = _schedule(org, manager, rep, at(10, 2))
    client = _client(manager)
    page = client.get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk)).content.decode()

    # A localized "4,772" in the owner choice would be posted back and rejected as an invalid choice.
    assert '<option value="4772"' in page
    response = client.post(
        _url("coaching_action_item_add", org, one_on_one_id=one_on_one.pk), {"title": "Call back", "owner": "4772"}
    )

    assert response.status_code == 302
    with scope(organization=org):
        assert list(ActionItem.objects.filter(one_on_one=one_on_one).values_list("title", "owner_id")) == [("Call back", 4772)]


# --- deleting a note needs a ticked confirmation box ----------------------------------------------


def _private_note(org):
    with scope(organization=org):
        return CoachingNote.objects.get(visibility=NoteVisibility.PRIVATE)


def _note_exists(org, note) -> bool:
    with scope(organization=org):
        return CoachingNote.objects.filter(pk=note.pk).exists()


def test_note_delete_without_confirmation_keeps_note(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    private = _private_note(org)

    response = _client(manager_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk), {"op": "delete"}, follow=True
    )

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        "The note was not deleted: Tick the box to confirm that the note is deleted for good."
    ]
    assert _note_exists(org, private) is True
    with scope(organization=org):
        assert AuditLog.objects.filter(action="coaching.note_deleted").count() == 0


def test_note_delete_without_confirmation_fragment(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    private = _private_note(org)

    response = _client(manager_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk),
        {"op": "delete"},
        HTTP_HX_REQUEST="true",
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="notes"')
    assert (
        '<div class="alert alert-warning py-2" role="status">'
        "The note was not deleted: Tick the box to confirm that the note is deleted for good.</div>"
    ) in content
    assert f'data-note="{private.pk}"' in content
    assert _note_exists(org, private) is True


def test_note_delete_without_confirmation_in_german(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    private = _private_note(org)
    manager_member.user.language = "de"
    manager_member.user.save(update_fields=["language"])

    response = _client(manager_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk),
        {"op": "delete"},
        HTTP_HX_REQUEST="true",
    )

    assert (
        "Die Notiz wurde nicht gelöscht: Setzen Sie das Häkchen, um zu bestätigen, dass die Notiz endgültig gelöscht wird."
        in response.content.decode()
    )
    assert _note_exists(org, private) is True


def test_note_delete_with_confirmation(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    private = _private_note(org)

    response = _client(manager_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk), {"op": "delete", "confirm": "on"}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/coaching/1on1/{one_on_one.pk}/#notes"
    assert _note_exists(org, private) is False
    with scope(organization=org):
        entry = AuditLog.objects.get(action="coaching.note_deleted")
    assert entry.object_id == str(private.pk)
    assert entry.before == {"one_on_one": one_on_one.pk, "visibility": "private"}


def test_note_delete_with_confirmation_fragment(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    private = _private_note(org)

    response = _client(manager_member).post(
        _url("coaching_note", org, one_on_one_id=one_on_one.pk, note_id=private.pk),
        {"op": "delete", "confirm": "on"},
        HTTP_HX_REQUEST="true",
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="notes"')
    assert f'data-note="{private.pk}"' not in content
    assert "Great demo at Kunde AG." in content
    assert _note_exists(org, private) is False


def test_note_delete_form_has_required_checkbox(org, manager_member, first_one_on_one):
    one_on_one, _open, _done = first_one_on_one
    private = _private_note(org)

    content = _client(manager_member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk)).content.decode()

    assert (
        f'<input class="form-check-input" type="checkbox" name="confirm" id="note-delete-confirm-{private.pk}" required>'
    ) in content
    assert content.count("data-note-delete") == 2
    # Saving the text no longer carries a delete button that skips the box.
    assert content.count('name="op" value="delete"') == 2


def test_action_item_due_date_picker_limited(org, manager_member, first_one_on_one):
    from spm.date_limits import PLANNING_YEARS, years_after

    one_on_one = first_one_on_one[0]
    with scope(organization=org):
        latest = years_after(organization_today(org), PLANNING_YEARS).isoformat()

    page = _client(manager_member).get(_url("coaching_one_on_one", org, one_on_one_id=one_on_one.pk)).content.decode()

    assert f'name="due_on" value="" min="2000-01-01" max="{latest}"' in page
