"""Date and time inputs render ISO values in every language, because browsers reject any other value.

Chromium shows a `<input type="date" value="01.10.2016">` as empty, so saving
the form posts the field as empty and clears the stored date.
"""

import datetime as dt
from pathlib import Path

import pytest
from django import forms
from django.conf import settings
from django.urls import get_resolver
from django.utils import translation
from django_scopes import scopes_disabled

# Input types whose value attribute browsers parse in one fixed format.
ISO_VALUES = {
    "date": (dt.date(2016, 10, 1), 'value="2016-10-01"'),
    "datetime-local": (dt.datetime(2016, 10, 1, 9, 30), 'value="2016-10-01T09:30"'),
    "time": (dt.time(9, 30), 'value="09:30"'),
}


def project_form_classes() -> list[type[forms.BaseForm]]:
    """Return every form class defined in the project's own modules (views included, through the URLconf)."""
    get_resolver().url_patterns  # noqa: B018 (imports every view module and the forms it defines)
    found, pending = [], [forms.BaseForm]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        module = __import__(cls.__module__, fromlist=["_"])
        path = Path(getattr(module, "__file__", None) or "/")
        # `make test` installs packages into .venv below BASE_DIR, so site-packages is excluded by name.
        is_project = path.is_relative_to(settings.BASE_DIR) and "site-packages" not in path.parts
        if is_project and not cls.__module__.startswith("tests"):
            found.append(cls)
    return found


def browser_typed_fields() -> list[tuple[str, str, forms.Widget]]:
    """Return (form field label, input type, widget) for each date, datetime-local or time input of the project."""
    fields = []
    for form_class in project_form_classes():
        for name, field in form_class.base_fields.items():
            widget = field.widget
            input_type = widget.attrs.get("type", getattr(widget, "input_type", None))
            if input_type in ISO_VALUES:
                fields.append((f"{form_class.__module__}.{form_class.__name__}.{name}", input_type, widget))
    return fields


def test_discovery_finds_known_date_fields():
    names = {name for name, _input_type, _widget in browser_typed_fields()}

    assert "goals.forms.MemberForm.active_from" in names
    assert "goals.forms.AssignmentForm.valid_from" in names
    assert "goals.views_contests.ContestForm.starts_on" in names
    assert "spm.views_audit.AuditFilterForm.created_from" in names
    assert "coaching.forms.OneOnOneForm.scheduled_time" in names


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_date_input_renders_iso(language):
    wrong = []
    with translation.override(language):
        for name, input_type, widget in browser_typed_fields():
            value, expected = ISO_VALUES[input_type]
            html = widget.render("day", value)
            if expected not in html:
                wrong.append(f"{name}: {html}")

    assert wrong == []


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


def test_person_page_german_dates_iso(admin_client, member):
    member.active_from = dt.date(2016, 10, 1)
    member.active_to = dt.date(2017, 3, 31)
    with scopes_disabled():
        member.save(update_fields=["active_from", "active_to"])

    page = admin_client.get(f"/o/acme/people/{member.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert 'name="member-active_from" value="2016-10-01"' in page
    assert 'name="member-active_to" value="2017-03-31"' in page
    assert f'name="assignment-valid_from" value="{dt.date.today().isoformat()}"' in page
