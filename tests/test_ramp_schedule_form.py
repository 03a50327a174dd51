"""Ramp schedules typed on the structure page: separators and messages."""

import pytest
from django.utils import translation
from django_scopes import scopes_disabled

from goals.forms import RampScheduleForm
from goals.models import RampSchedule


def percentages_result(text: str, language: str = "en"):
    with translation.override(language):
        form = RampScheduleForm({"name": "New hire", "percentages": text})
        if form.is_valid():
            return form.cleaned_data["percentages"]
        return [str(message) for message in form.errors["percentages"]]


@pytest.mark.parametrize(
    "text", ["25/50/75", "25, 50, 75", "25;50;75", "25; 50; 75", "25 50 75", "25 % / 50 % / 75 %", "25 ,50 ,75"]
)
def test_ramp_separators_accepted(text):
    assert percentages_result(text) == [25, 50, 75]


def test_ramp_fraction_named_in_english():
    assert percentages_result("25/50.5/75") == [
        "50.5 in 25/50.5/75 is not a whole percentage; write whole numbers from 0 to 100 separated by slashes, "
        "commas or spaces, e.g. 25/50/75/100."
    ]


def test_ramp_fraction_named_in_german():
    assert percentages_result("25/50.5/75", "de") == [
        "50.5 in 25/50.5/75 ist kein ganzer Prozentwert; geben Sie ganze Zahlen von 0 bis 100 an, getrennt durch "
        "Schrägstriche, Kommas oder Leerzeichen, z. B. 25/50/75/100."
    ]


@pytest.mark.parametrize(("text", "part"), [("25,5, 50", "25,5"), ("10 / 25,5 %", "25,5")])
def test_ramp_decimal_comma_rejected(text, part):
    assert percentages_result(text) == [
        f"{part} in {text} is read as a number with a decimal comma, but a ramp takes whole percentages only. "
        "Separate the months with semicolons, slashes, spaces or a comma and a space, e.g. 25; 50; 75 or 25/50/75."
    ]


@pytest.mark.parametrize("text", ["25,5", "25,50,75", " 25,50,75 "])
def test_ramp_whole_input_with_decimal_comma_named_once(text):
    assert percentages_result(text) == [
        f"{text.strip()} is read as a number with a decimal comma, but a ramp takes whole percentages only. "
        "Separate the months with semicolons, slashes, spaces or a comma and a space, e.g. 25; 50; 75 or 25/50/75."
    ]


def test_ramp_decimal_comma_rejected_in_german():
    assert percentages_result("25,5, 50", "de") == [
        "25,5 in 25,5, 50 wird als Zahl mit Dezimalkomma gelesen, eine Rampe nimmt aber nur ganze Prozentwerte an. "
        "Trennen Sie die Monate durch Semikolons, Schrägstriche, Leerzeichen oder ein Komma mit Leerzeichen, "
        "z. B. 25; 50; 75 oder 25/50/75."
    ]


def test_ramp_structure_page_rejects_decimal_comma(admin_client, org):
    response = admin_client.post("/o/acme/structure/", {"kind": "ramp", "ramp-name": "New hire", "ramp-percentages": "25,5, 50"})

    assert response.status_code == 400
    assert "25,5 in 25,5, 50 is read as a number with a decimal comma" in response.content.decode()
    with scopes_disabled():
        assert RampSchedule.objects.filter(organization=org).count() == 0


def test_ramp_structure_page_saves_comma_list(admin_client, org):
    response = admin_client.post("/o/acme/structure/", {"kind": "ramp", "ramp-name": "New hire", "ramp-percentages": "25, 50, 75"})

    assert response.status_code == 302
    with scopes_disabled():
        assert RampSchedule.objects.get(organization=org).month_percentages == [25, 50, 75]


def test_ramp_created_message_and_list(admin_client, org):
    response = admin_client.post(
        "/o/acme/structure/", {"kind": "ramp", "ramp-name": "New hire", "ramp-percentages": "25; 50; 75"}, follow=True
    )

    assert response.redirect_chain == [("/o/acme/structure/", 302)]
    assert [str(message) for message in response.context["messages"]] == [
        "Ramp schedule New hire created: 25% / 50% / 75%."
    ]
    with scopes_disabled():
        schedule = RampSchedule.objects.get(organization=org)
    assert response.context["ramp_schedules"] == [(schedule, "25% / 50% / 75%")]
    assert f'<li data-ramp="{schedule.pk}">New hire · <span class="text-body-secondary">25% / 50% / 75%</span></li>' in (
        response.content.decode()
    )


def test_ramp_list_in_german(admin_client, org):
    with scopes_disabled():
        RampSchedule.objects.create(organization=org, name="Neu", month_percentages=[30, 60])

    with translation.override("de"):
        response = admin_client.get("/o/acme/structure/", HTTP_ACCEPT_LANGUAGE="de")

    assert response.context["ramp_schedules"][0][1] == "30\xa0% / 60\xa0%"
    assert "Ramp-up-Pläne" in response.content.decode()


def test_ramp_list_empty(admin_client):
    response = admin_client.get("/o/acme/structure/")

    assert response.context["ramp_schedules"] == []
    assert "No ramp schedules yet." in response.content.decode()


def test_person_ramp_choices_show_percentages(admin_client, org, admin_member):
    with scopes_disabled():
        RampSchedule.objects.create(organization=org, name="New hire", month_percentages=[25, 50, 75, 100])

    response = admin_client.get(f"/o/acme/people/{admin_member.pk}/")

    choices = [label for _value, label in response.context["member_form"].fields["ramp_schedule"].choices]
    assert choices == ["– no ramp (full quota) –", "New hire (25% / 50% / 75% / 100%)"]
