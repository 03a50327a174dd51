"""Rep quotas belong to members with the rep role, and count metrics take whole-number targets."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals import forms, services
from goals.imports import quota_import
from goals.models import Quota, QuotaTemplate

Q1 = dt.date(2025, 1, 1)


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


def rep_quota_set(org, subject, target, metric="won_revenue"):
    with scope(organization=org):
        return services.quota_update(
            organization=org, actor=None, level="rep", subject_id=subject.pk, period_kind="quarter",
            period_start=Q1, metric=metric, target=target,
        )  # fmt: skip


def rep_quotas(org):
    with scopes_disabled():
        return sorted(Quota.objects.filter(organization=org, level="rep").values_list("membership_id", "metric", "target"))


def cell_post(client, subject_id, value, metric="won_revenue"):
    data = {"year": 2025, "granularity": "quarter", "level": "rep", "metric": metric,
            "subject": subject_id, "period": "2025-Q1", "value": value}  # fmt: skip
    return client.post("/o/acme/quotas/cell/", data, follow=True)


@pytest.mark.parametrize("subject_name", ["manager_member", "admin_member"])
def test_service_rejects_new_rep_quota_of_non_rep(org, request, subject_name):
    subject = request.getfixturevalue(subject_name)

    with pytest.raises(ValidationError) as error:
        rep_quota_set(org, subject, Decimal(5))

    assert error.value.code == "quota_subject_role"
    assert rep_quotas(org) == []


def test_existing_quota_of_promoted_rep_stays_changeable(org, member):
    rep_quota_set(org, member, Decimal(5000))
    with scopes_disabled():
        member.role = "manager"
        member.save(update_fields=["role"])

    _quota, changed = rep_quota_set(org, member, Decimal(6000))
    _none, deleted = rep_quota_set(org, member, None)

    assert (changed, deleted) == ("updated", "deleted")
    assert rep_quotas(org) == []


def test_cell_post_for_admin_shows_error(admin_client, org, admin_member):
    response = cell_post(admin_client, admin_member.pk, "5")

    body = response.content.decode()
    assert "5 was not saved: " in body
    assert "has the role Admin, and rep quotas are for members with the rep role." in body
    assert rep_quotas(org) == []


def test_upload_rejects_manager_row_on_name(org, manager_member, member):
    text = (
        "level;name;period;metric;target\n"
        "rep;manager@acme.example;2025-Q1;won_revenue;5\n"
        "rep;rep@acme.example;2025-Q1;won_revenue;5\n"
    )

    with scope(organization=org):
        result = quota_import(organization=org, actor=None, data=text.encode(), file_name="quotas.csv")

    assert (result.created, result.rejected) == (1, 1)
    error = result.errors[0]
    assert (error.line, error.column, error.value) == (2, "name", "manager@acme.example")
    assert rep_quotas(org) == [(member.pk, "won_revenue", Decimal("5.00"))]


@pytest.mark.parametrize("metric", ["won_deals", "activities", "meetings"])
def test_count_metric_rejects_fraction(org, member, metric):
    with pytest.raises(ValidationError) as error:
        rep_quota_set(org, member, Decimal("2.5"), metric=metric)

    assert error.value.code == "quota_target_fraction"
    assert "are counted in whole numbers; enter a whole number instead of 2.5." in error.value.messages[0]
    assert rep_quotas(org) == []


def test_count_metric_accepts_whole_number_with_cents(org, member):
    rep_quota_set(org, member, Decimal("3.00"), metric="won_deals")

    assert rep_quotas(org) == [(member.pk, "won_deals", Decimal("3.00"))]


def test_money_metric_keeps_cents(org, member):
    rep_quota_set(org, member, Decimal("2.5"), metric="won_revenue")

    assert rep_quotas(org) == [(member.pk, "won_revenue", Decimal("2.50"))]


def test_cell_post_german_fraction_of_won_deals(admin_client, org, member):
    response = admin_client.post(
        "/o/acme/quotas/cell/",
        {"year": 2025, "granularity": "quarter", "level": "rep", "metric": "won_deals", "subject": member.pk,
         "period": "2025-Q1", "value": "2,5"},
        follow=True,
    )  # fmt: skip

    assert "Won deals are counted in whole numbers" in response.content.decode()
    assert rep_quotas(org) == []


def test_template_form_rejects_fraction_of_count_metric(org):
    with scope(organization=org):
        form = forms.QuotaTemplateForm(
            {"name": "Deals", "metric": "won_deals", "period_kind": "quarter", "target": "2.5", "is_prorated": "on"}
        )

        assert not form.is_valid()
    assert form.errors["target"] == ["Won deals are counted in whole numbers; enter a whole number instead of 2.5."]


def test_template_apply_lists_only_reps(org, admin_member, manager_member, member, other_rep):
    with scope(organization=org):
        form = forms.QuotaTemplateApplyForm()
        listed = set(form.fields["members"].queryset.values_list("pk", flat=True))

    assert listed == {member.pk, other_rep.pk}


def test_template_apply_rejects_manager(admin_client, org, manager_member, member):
    with scopes_disabled():
        template = QuotaTemplate.objects.create(
            organization=org, name="Standard", metric="won_revenue", period_kind="quarter", target=Decimal(30000)
        )

    response = admin_client.post(
        "/o/acme/quotas/templates/apply/",
        {"template": template.pk, "period": "2025-Q1", "members": [member.pk, manager_member.pk]},
        follow=True,
    )

    assert f"Select a valid choice. {manager_member.pk} is not one of the available choices." in response.content.decode()
    assert rep_quotas(org) == []


def test_template_apply_rejects_far_future_period(admin_client, org, member):
    with scopes_disabled():
        template = QuotaTemplate.objects.create(
            organization=org, name="Standard", metric="won_revenue", period_kind="quarter", target=Decimal(30000)
        )

    response = admin_client.post(
        "/o/acme/quotas/templates/apply/",
        {"template": template.pk, "period": "2099-Q1", "members": [member.pk]},
        follow=True,
    )

    assert "The period 2099-Q1 starts on " in response.content.decode()
    assert "outside the allowed range" in response.content.decode()
    assert rep_quotas(org) == []


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("rep", "Kein/e Vertriebsmitarbeiter/in mit der ID 999999 in dieser Organisation; wählen Sie eine Zeile des Editors."),
        ("team", "Kein Team mit der ID 999999 in dieser Organisation; wählen Sie eine Zeile des Editors."),
        ("territory", "Kein Gebiet mit der ID 999999 in dieser Organisation; wählen Sie eine Zeile des Editors."),
    ],
)
def test_service_unknown_subject_named_by_level_in_german(org, level, expected):
    with scope(organization=org), translation.override("de"), pytest.raises(ValidationError) as error:
        services.quota_update(
            organization=org, actor=None, level=level, subject_id=999999, period_kind="quarter",
            period_start=Q1, metric="won_revenue", target=Decimal(5),
        )  # fmt: skip

    assert error.value.messages == [expected]


def test_service_rounds_target_half_up(org, member):
    # Half-even rounding would store 1,000.125 as 1,000.12.
    quota, outcome = rep_quota_set(org, member, Decimal("1000.125"))

    assert outcome == "created"
    assert quota.target == Decimal("1000.13")
    assert rep_quotas(org) == [(member.pk, "won_revenue", Decimal("1000.13"))]
