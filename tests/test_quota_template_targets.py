"""Quota template targets: localized numbers, the maximum, and templates stored above it."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django_scopes import scopes_disabled

from goals.models import Quota, QuotaTemplate

EDITOR = "/o/acme/quotas/"
CREATE = "/o/acme/quotas/templates/"
APPLY = "/o/acme/quotas/templates/apply/"


def create_template(client, target, *, language="en"):
    data = {"name": "Standard", "metric": "won_revenue", "period_kind": "quarter", "target": target, "is_prorated": "on"}
    return client.post(CREATE, data, HTTP_ACCEPT_LANGUAGE=language)


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def target_errors(response):
    assert response.status_code == 400
    return response.context["template_form"].errors["target"]


def stored_targets(org):
    with scopes_disabled():
        return list(QuotaTemplate.objects.filter(organization=org).values_list("target", flat=True))


@pytest.mark.parametrize(("text", "expected"), [("1.234,56", Decimal("1234.56")), ("12.500", Decimal("12500.00")),
                                                ("12,500.00", Decimal("12500.00"))])  # fmt: skip
def test_template_target_german_numbers(admin_client, org, text, expected):
    response = create_template(admin_client, text, language="de")

    assert messages_of(response) == ["Vorlage Standard gespeichert."]
    assert stored_targets(org) == [expected]


def test_template_target_maximum_in_english(admin_client, org):
    response = create_template(admin_client, "9999999999999999.99")

    assert target_errors(response) == [
        "Target: '9999999999999999.99' is not valid (number too large; the maximum is 9,999,999,999,999.99)."
    ]
    assert stored_targets(org) == []


def test_template_target_maximum_in_german(admin_client, org):
    response = create_template(admin_client, "9999999999999999.99", language="de")

    assert target_errors(response) == [
        "Zielwert: '9999999999999999.99' ist ungültig (Zahl zu groß; der Höchstwert ist 9.999.999.999.999,99)."
    ]
    assert stored_targets(org) == []


def test_template_target_exponent_rejected(admin_client, org):
    response = create_template(admin_client, "1e15")

    assert target_errors(response) == ["Target: '1e15' is not valid (invalid number; expected for example 12,500.00)."]
    assert stored_targets(org) == []


def test_template_target_at_maximum_accepted(admin_client, org):
    create_template(admin_client, "9,999,999,999,999.99")

    assert stored_targets(org) == [Decimal("9999999999999.99")]


@pytest.fixture
def oversized_template(org):
    """A template saved before the form checked the maximum; SQLite cannot read its target back."""
    with scopes_disabled():
        return QuotaTemplate.objects.create(organization=org, name="Huge", metric="won_revenue", period_kind="quarter",
                                            target=Decimal("9999999999999999.99"))  # fmt: skip


def test_editor_shows_with_oversized_template(admin_client, oversized_template):
    response = admin_client.get(EDITOR, {"year": 2025})

    assert response.status_code == 200
    assert f'<option value="{oversized_template.pk}">Huge</option>' in response.content.decode()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "The template Huge has a target above the maximum of 9,999,999,999,999.99, so it was not applied. "
               "Create a template with a smaller target and apply that one."),
        ("de", "Die Vorlage Huge hat einen Zielwert über dem Höchstwert von 9.999.999.999.999,99 und wurde daher nicht "
               "angewendet. Legen Sie eine Vorlage mit kleinerem Zielwert an und wenden Sie diese an."),
    ],
)  # fmt: skip
def test_oversized_template_apply_rejected(admin_client, org, member, oversized_template, language, expected):
    data = {"template": oversized_template.pk, "period": "2025-Q1", "members": [member.pk]}
    response = admin_client.post(APPLY, data, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 400
    assert response.context["apply_form"].errors["template"] == [expected]
    with scopes_disabled():
        assert not Quota.objects.filter(membership=member).exists()
