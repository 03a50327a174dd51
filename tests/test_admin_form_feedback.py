"""Admin forms that report their outcome: quota templates keep the grid and input, structure saves confirm, leave overlaps."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django_scopes import scopes_disabled

from goals.models import LeavePeriod, Quota, QuotaTemplate, Team, Territory
from tests.factories import TerritoryFactory

CREATE = "/o/acme/quotas/templates/"
APPLY = "/o/acme/quotas/templates/apply/"
GRID_QUERY = "year=2017&granularity=month&level=team&metric=won_deals"
EDITOR_2017 = f"/o/acme/quotas/?{GRID_QUERY}"


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def standard_template(org):
    with scopes_disabled():
        return QuotaTemplate.objects.create(
            organization=org, name="Standard", metric="won_revenue", period_kind="quarter", target=Decimal(30000)
        )


# --- quota templates ---


def test_empty_template_errors_keyed_by_field(admin_client):
    response = admin_client.post(f"{CREATE}?{GRID_QUERY}", {"name": "Q1 reps"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    errors = response.context["template_form"].errors
    assert sorted(errors) == ["metric", "period_kind", "target"]
    assert errors["metric"] == ["This field is required."]
    assert errors["target"] == ["This field is required."]
    assert messages_of(response) == []
    body = response.content.decode()
    assert re.search(r'<select name="metric" class="[^"]*is-invalid"[^>]*aria-invalid="true"[^>]*id="id_template_metric"', body)
    assert re.search(r'<input type="text" name="name" value="Q1 reps"[^>]*id="id_template_name"', body)
    assert 'aria-invalid="true" id="id_template_name"' not in body


def test_rejected_template_keeps_input_and_grid(admin_client):
    response = admin_client.post(
        f"{CREATE}?{GRID_QUERY}", {"name": "Q1 reps", "metric": "won_revenue", "target": "12.500"}, HTTP_ACCEPT_LANGUAGE="de"
    )

    assert response.status_code == 400
    assert response.context["values"] == {"year": 2017, "granularity": "month", "level": "team", "metric": "won_deals"}
    page = response.content.decode()
    assert 'value="Q1 reps"' in page
    assert 'value="12.500"' in page
    escaped_query = GRID_QUERY.replace("&", "&amp;")
    assert f'action="/o/acme/quotas/templates/?{escaped_query}"' in page
    assert f'action="/o/acme/quotas/templates/apply/?{escaped_query}"' in page


def test_saved_template_returns_to_same_grid(admin_client, org):
    data = {"name": "Q1 reps", "metric": "won_revenue", "period_kind": "quarter", "target": "12500"}

    response = admin_client.post(f"{CREATE}?{GRID_QUERY}", data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    assert response["Location"] == EDITOR_2017
    assert messages_of(response) == ["Template Q1 reps saved."]
    with scopes_disabled():
        assert QuotaTemplate.objects.filter(organization=org, name="Q1 reps").count() == 1


def test_empty_apply_errors_keyed_by_field(admin_client):
    response = admin_client.post(f"{APPLY}?{GRID_QUERY}", {"period": "2017-Q2"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    errors = response.context["apply_form"].errors
    assert sorted(errors) == ["members", "template"]
    assert response.context["values"]["year"] == 2017
    assert 'value="2017-Q2"' in response.content.decode()


def test_apply_period_error_keyed_to_period(admin_client, org, member, standard_template):
    data = {"template": standard_template.pk, "period": "2017-05", "members": [member.pk]}

    response = admin_client.post(f"{APPLY}?{GRID_QUERY}", data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.context["apply_form"].errors["period"] == [
        "2017-05 is not a Quarter; the template Standard sets Quarter quotas."
    ]
    assert response.context["values"]["year"] == 2017
    with scopes_disabled():
        assert not Quota.objects.filter(membership=member).exists()


def test_applied_template_returns_to_same_grid(admin_client, org, member, standard_template):
    data = {"template": standard_template.pk, "period": "2017-Q2", "members": [member.pk]}

    response = admin_client.post(f"{APPLY}?{GRID_QUERY}", data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    assert response["Location"] == EDITOR_2017
    assert messages_of(response) == ["Template applied: 1 created, 0 changed, 0 unchanged."]


def test_apply_without_query_uses_default_grid(admin_client, member, standard_template):
    data = {"template": standard_template.pk, "period": "2017-Q2", "members": [member.pk]}

    response = admin_client.post(APPLY, data)

    assert response.status_code == 302
    assert response["Location"].startswith("/o/acme/quotas/?year=")
    assert response["Location"].endswith("&granularity=quarter&level=rep&metric=won_revenue")


# --- teams and territories ---


def test_team_create_confirmed(admin_client, org):
    response = admin_client.post("/o/acme/structure/", {"kind": "team", "team-name": "West"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    assert messages_of(response) == ["Team West created."]
    with scopes_disabled():
        assert Team.objects.filter(organization=org, name="West").count() == 1


def test_team_rename_confirmed(admin_client, team):
    response = admin_client.post(
        "/o/acme/structure/", {"kind": "team", "pk": team.pk, "team-name": "North-East"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 302
    assert messages_of(response) == ["Team North-East saved."]
    team.refresh_from_db()
    assert team.name == "North-East"


def test_territory_create_confirmed(admin_client, org):
    response = admin_client.post(
        "/o/acme/structure/", {"kind": "territory", "territory-name": "DACH"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 302
    assert messages_of(response) == ["Territory DACH created."]
    with scopes_disabled():
        assert Territory.objects.filter(organization=org, name="DACH").count() == 1


def test_territory_move_confirmed(admin_client, org):
    with scopes_disabled():
        europe = TerritoryFactory(organization=org, name="Europe")
        dach = TerritoryFactory(organization=org, name="DACH")

    response = admin_client.post(
        "/o/acme/structure/",
        {"kind": "territory", "pk": dach.pk, "territory-name": "DACH", "territory-parent": europe.pk},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    assert messages_of(response) == ["Territory DACH saved."]
    dach.refresh_from_db()
    assert dach.parent_id == europe.pk


def new_form_input(body: str, element_id: str) -> str:
    """Return the <input> tag of the new-team or new-territory form's name field."""
    return re.search(rf'<input[^>]*id="{element_id}"[^>]*>', body)[0]


def test_rejected_team_edit_shown_at_the_team(admin_client, team):
    response = admin_client.post(
        "/o/acme/structure/", {"kind": "team", "pk": team.pk, "team-name": ""}, HTTP_ACCEPT_LANGUAGE="en"
    )

    body = " ".join(response.content.decode().split())
    assert response.status_code == 400
    # The edited team's section is open with the error, and the new-team form stays empty.
    assert f'<details open> <summary>{team.name}' in body
    assert '<div class="text-danger small" role="alert">Name: This field is required.</div>' in body
    assert "value=" not in new_form_input(body, "id_team-name")
    team.refresh_from_db()
    assert team.name == "North"


def test_rejected_territory_move_shown_at_the_territory(admin_client, org):
    with scopes_disabled():
        europe = TerritoryFactory(organization=org, name="Europe")
        dach = TerritoryFactory(organization=org, name="DACH", parent=europe)

    response = admin_client.post(
        "/o/acme/structure/",
        {"kind": "territory", "pk": europe.pk, "territory-name": "Europe", "territory-parent": dach.pk},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    body = " ".join(response.content.decode().split())
    assert response.status_code == 400
    assert "<details open> <summary>Europe</summary>" in body
    assert "value=" not in new_form_input(body, "id_territory-name")
    europe.refresh_from_db()
    assert europe.parent_id is None


# --- leave ---


def add_leave(client, member, starts_on, ends_on, language="en"):
    data = {"kind": "leave", "leave-starts_on": starts_on, "leave-ends_on": ends_on}
    return client.post(f"/o/acme/people/{member.pk}/", data, HTTP_ACCEPT_LANGUAGE=language)


def leave_days(member):
    with scopes_disabled():
        return list(LeavePeriod.objects.filter(membership=member).order_by("starts_on").values_list("starts_on", "ends_on"))


@pytest.mark.parametrize(
    ("starts_on", "ends_on"),
    [
        ("2017-05-05", "2017-05-20"),  # starts inside
        ("2017-04-20", "2017-05-01"),  # ends on the first day
        ("2017-05-10", "2017-05-10"),  # the last day only
        ("2017-04-01", "2017-06-30"),  # covers it
        ("2017-05-03", "2017-05-04"),  # lies inside
    ],
)
def test_overlapping_leave_rejected(admin_client, member, starts_on, ends_on):
    assert add_leave(admin_client, member, "2017-05-01", "2017-05-10").status_code == 302

    response = add_leave(admin_client, member, starts_on, ends_on)

    assert response.status_code == 400
    first, last = dt.date.fromisoformat(starts_on), dt.date.fromisoformat(ends_on)
    expected = (
        f"The leave from {first:%m/%d/%Y} to {last:%m/%d/%Y} overlaps the recorded leave from 05/01/2017 "
        "to 05/10/2017; choose days outside it or delete that leave first."
    )
    # The first leave's confirmation is still unread, because the test does not follow its redirect.
    assert messages_of(response) == [f"Leave of {member.display_name} added.", expected]
    assert leave_days(member) == [(dt.date(2017, 5, 1), dt.date(2017, 5, 10))]


def test_overlapping_leave_named_in_german_dates(admin_client, member):
    add_leave(admin_client, member, "2017-05-01", "2017-05-10")

    response = add_leave(admin_client, member, "2017-05-05", "2017-05-20", language="de")

    assert response.status_code == 400
    [_first_added, message] = messages_of(response)
    assert "05.05.2017" in message
    assert "20.05.2017" in message
    assert "01.05.2017" in message
    assert "10.05.2017" in message


def test_adjacent_leave_accepted(admin_client, member, other_rep):
    add_leave(admin_client, member, "2017-05-01", "2017-05-10")

    after = add_leave(admin_client, member, "2017-05-11", "2017-05-20")
    before = add_leave(admin_client, member, "2017-04-20", "2017-04-30")
    other_member = add_leave(admin_client, other_rep, "2017-05-05", "2017-05-20")

    assert (after.status_code, before.status_code, other_member.status_code) == (302, 302, 302)
    assert leave_days(member) == [
        (dt.date(2017, 4, 20), dt.date(2017, 4, 30)),
        (dt.date(2017, 5, 1), dt.date(2017, 5, 10)),
        (dt.date(2017, 5, 11), dt.date(2017, 5, 20)),
    ]


# --- person page confirmations ---


def test_person_saves_confirmed(admin_client, member):
    name = member.display_name
    url = f"/o/acme/people/{member.pk}/"

    def shown(data) -> str:
        # Following the redirect shows the message on the person page and uses it up.
        return admin_client.post(url, data, HTTP_ACCEPT_LANGUAGE="en", follow=True).content.decode()

    added = shown({"kind": "leave", "leave-starts_on": "2017-05-01", "leave-ends_on": "2017-05-10"})
    with scopes_disabled():
        leave = LeavePeriod.objects.get(membership=member)
    deleted = shown({"kind": "leave_delete", "leave": leave.pk})
    kept_manager = member.manager_id or ""
    unchanged = shown({"kind": "member", "member-role": "rep", "member-manager": kept_manager})
    promoted = shown({"kind": "member", "member-role": "manager", "member-manager": kept_manager})

    assert f"Leave of {name} added." in added
    assert f"Leave of {name} deleted." in deleted
    assert f"Nothing changed for {name}." in unchanged
    assert f"{name} saved." in promoted
    assert "Nothing changed" not in promoted
