"""Forecast pages: who sees and submits what, per-deal categories, admin settings, htmx fragment."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from goals import services
from goals.forecasts import categories, rollup
from goals.models import DealForecastCategory, ForecastSubmission, StageForecastCategory
from spm.fiscal import period_containing
from spm.models import AuditLog, Role
from tests.factories import DealFactory, PipelineFactory, StageFactory


def _current_quarter(org):
    return period_containing(timezone.localtime(timezone.now(), org.tzinfo).date(), "quarter", 1)


@pytest.fixture
def open_deals(org, member, other_rep):
    """One open Proposal deal each for member and other_rep, expected mid-quarter of today's quarter."""
    quarter = _current_quarter(org)
    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org), name="Proposal", probability=60)
        expected = quarter.start + dt.timedelta(days=20)
        return {
            "member": DealFactory(owner=member, stage=stage, amount=Decimal("1000.00"), expected_close_on=expected),
            "other_rep": DealFactory(owner=other_rep, stage=stage, amount=Decimal("500.00"), expected_close_on=expected),
        }


def _submit(client, subject, commit="1,200.00", best_case="1,500.00", period=None, org=None):
    return client.post(
        "/o/acme/forecast/submit/",
        {
            "subject": subject.pk,
            "period": period or _current_quarter(org).label,
            "commit_amount": commit,
            "best_case_amount": best_case,
            "comment": "Two deals slipped",
        },
    )


def test_rep_page_shows_own_weighted_pipeline(client, org, member, open_deals):
    client.force_login(member.user)

    response = client.get("/o/acme/forecast/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "data-weighted-stage>€600.00<" in body
    assert "data-submit-form" in body
    assert f'data-deal="{open_deals["member"].pk}"' in body
    assert f'data-deal="{open_deals["other_rep"].pk}"' not in body


def test_page_fragment_for_htmx(client, org, member, open_deals):
    client.force_login(member.user)

    response = client.get("/o/acme/forecast/", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="forecast-content"')
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_rep_cannot_open_or_submit_for_another_rep(client, org, member, other_rep):
    client.force_login(member.user)

    assert client.get(f"/o/acme/forecast/people/{other_rep.pk}/").status_code == 404
    assert _submit(client, other_rep, org=org).status_code == 404
    with scopes_disabled():
        assert ForecastSubmission.objects.count() == 0


def test_rep_submits_own_forecast(client, org, member):
    client.force_login(member.user)

    response = _submit(client, member, org=org)

    assert response.status_code == 302
    with scopes_disabled():
        submission = ForecastSubmission.objects.get()
    assert submission.subject == member
    assert submission.submitted_by == member
    assert submission.commit_amount == Decimal("1200.00")
    assert submission.best_case_amount == Decimal("1500.00")
    assert submission.comment == "Two deals slipped"


def test_submission_for_past_period_is_rejected_with_message(client, org, member):
    client.force_login(member.user)

    response = _submit(client, member, period="2017-Q2", org=org)

    assert response.status_code == 400
    body = response.content.decode()
    assert "not for Q2 FY 2017." in body
    assert "Forecasts can be submitted for the current and the next period only." in body
    with scopes_disabled():
        assert ForecastSubmission.objects.count() == 0


def test_invalid_amount_names_the_value(client, org, member):
    client.force_login(member.user)

    response = _submit(client, member, commit="12x", org=org)

    assert response.status_code == 400
    assert "&#x27;12x&#x27; is not valid" in response.content.decode()


def test_manager_adjusts_report_and_sees_rollup(client, org, manager_member, member, other_rep, open_deals):
    client.force_login(manager_member.user)

    response = _submit(client, member, commit="800.00", best_case="900.00", org=org)
    page = client.get("/o/acme/forecast/")

    assert response.status_code == 302
    with scopes_disabled():
        submission = ForecastSubmission.objects.get()
    assert submission.submitted_by == manager_member
    body = page.content.decode()
    assert f'data-member="{member.pk}"' in body
    assert f'data-member="{other_rep.pk}"' in body
    # member's adjusted 800 plus other_rep's categories: nothing won, no commit deal.
    assert "data-rolled-up-commit>€800.00<" in body
    assert "Adjusted by" in body
    assert client.get(f"/o/acme/forecast/people/{member.pk}/").status_code == 200


def test_demoted_manager_sees_only_own_forecast(client, org, team, manager_member, member, other_rep, open_deals):
    """manager_member still leads North and is named as manager by both reps, but now has the rep role."""
    with scopes_disabled():
        open_deals["member"].name = "Secret rep deal"
        open_deals["member"].save(update_fields=["name"])
        DealFactory(
            owner=manager_member,
            name="Own deal",
            stage=open_deals["member"].stage,
            amount=Decimal("200.00"),
            expected_close_on=open_deals["member"].expected_close_on,
        )
    with scope(organization=org):
        services.membership_update(
            membership=manager_member,
            actor=None,
            role=Role.REP,
            active_from=manager_member.active_from,
            active_to=manager_member.active_to,
            ramp_schedule=manager_member.ramp_schedule,
            manager=None,
        )
    client.force_login(manager_member.user)

    response = client.get("/o/acme/forecast/")

    assert response.status_code == 200
    page = response.context["page"]
    assert page.lines == []
    assert page.deal_count == 1
    assert [line.deal.name for line in page.deals] == ["Own deal"]
    body = response.content.decode()
    assert "Secret rep deal" not in body
    assert f'data-member="{member.pk}"' not in body
    assert "data-weighted-stage>€120.00<" in body
    assert client.get(f"/o/acme/forecast/people/{member.pk}/").status_code == 404


def test_page_limited_to_visible_members(
    client, org, manager_member, member, other_rep, open_deals, monkeypatch
):
    """A tree that puts other_rep below the rep `member` still gives `member` only their own deals."""
    role_blind_tree = rollup.ForecastTree(
        members={manager_member.pk: manager_member, member.pk: member, other_rep.pk: other_rep},
        parent={manager_member.pk: None, member.pk: manager_member.pk, other_rep.pk: member.pk},
        children={None: [manager_member.pk], manager_member.pk: [member.pk], member.pk: [other_rep.pk]},
    )
    monkeypatch.setattr(rollup, "forecast_tree", lambda: role_blind_tree)
    client.force_login(member.user)

    response = client.get("/o/acme/forecast/")

    assert response.status_code == 200
    page = response.context["page"]
    assert page.lines == []
    assert page.rollup.report_count == 0
    assert page.editable_ids == {member.pk}
    assert [line.deal.pk for line in page.deals] == [open_deals["member"].pk]
    assert f'data-deal="{open_deals["other_rep"].pk}"' not in response.content.decode()


def test_admin_sees_organization_and_other_org_gets_404(client, org, admin_member, member, other_org_admin):
    client.force_login(admin_member.user)
    assert client.get("/o/acme/forecast/").status_code == 200
    assert client.get(f"/o/acme/forecast/people/{member.pk}/").status_code == 200

    client.force_login(other_org_admin.user)
    assert client.get("/o/acme/forecast/").status_code == 404
    assert client.get(f"/o/globex/forecast/people/{member.pk}/").status_code == 404


def test_deal_category_override_by_owner_and_manager_only(client, org, manager_member, member, open_deals):
    client.force_login(member.user)
    own = client.post(f"/o/acme/forecast/deals/{open_deals['member'].pk}/category/", {"category": "commit"})
    foreign = client.post(f"/o/acme/forecast/deals/{open_deals['other_rep'].pk}/category/", {"category": "commit"})
    client.force_login(manager_member.user)
    managed = client.post(f"/o/acme/forecast/deals/{open_deals['other_rep'].pk}/category/", {"category": "omitted"})

    assert own.status_code == 302
    assert foreign.status_code == 404
    assert managed.status_code == 302
    with scopes_disabled():
        overrides = dict(DealForecastCategory.objects.values_list("deal_id", "category"))
        audited = AuditLog.objects.filter(action=categories.DEAL_CATEGORY_CHANGED).count()
    assert overrides == {open_deals["member"].pk: "commit", open_deals["other_rep"].pk: "omitted"}
    assert audited == 2


@pytest.mark.parametrize(("language", "expected"), [("de", "60\xa0%</td>"), ("en", "60%</td>")])
def test_settings_stage_probability_per_language(client, org, admin_member, open_deals, language, expected):
    client.force_login(admin_member.user)

    page = client.get("/o/acme/forecast/settings/", HTTP_ACCEPT_LANGUAGE=language)

    assert expected in page.content.decode()


def test_settings_for_admin_only_and_audited(client, org, admin_member, manager_member, open_deals):
    with scopes_disabled():
        stage_id = open_deals["member"].stage_id
    client.force_login(manager_member.user)
    assert client.get("/o/acme/forecast/settings/").status_code == 404

    client.force_login(admin_member.user)
    page = client.get("/o/acme/forecast/settings/")
    response = client.post("/o/acme/forecast/settings/", {"period_kind": "month", f"stage-{stage_id}": "commit"})

    assert page.status_code == 200
    assert response.status_code == 302
    with scopes_disabled():
        assert StageForecastCategory.objects.get().category == "commit"
        actions = sorted(AuditLog.objects.filter(action__startswith="forecast.").values_list("action", flat=True))
    assert actions == [categories.SETTINGS_CHANGED, categories.STAGE_CATEGORY_CHANGED]


def test_deal_category_hides_foreign_deal_for_get(client, org, member, open_deals):
    client.force_login(member.user)

    own = client.get(f"/o/acme/forecast/deals/{open_deals['member'].pk}/category/")
    foreign = client.get(f"/o/acme/forecast/deals/{open_deals['other_rep'].pk}/category/")

    assert own.status_code == 405
    assert foreign.status_code == 404


@pytest.fixture
def old_won_deal(org, member):
    """A deal won on 2017-11-15 with its KPI rows, and nothing in today's quarter."""
    from dashboards.services import kpi_snapshot_recompute

    with scopes_disabled():
        stage = StageFactory(pipeline=PipelineFactory(organization=org, name="History"), name="Won", probability=100, kind="won")
        deal = DealFactory(
            owner=member,
            stage=stage,
            status="won",
            amount=Decimal("800.00"),
            created_at=dt.datetime(2017, 10, 2, 12, tzinfo=dt.timezone.utc),
            closed_at=dt.datetime(2017, 11, 15, 12, tzinfo=dt.timezone.utc),
            expected_close_on=dt.date(2017, 11, 15),
        )
    with scope(organization=org):
        kpi_snapshot_recompute(organization=org)
    return deal


def test_empty_current_period_opens_latest_with_data(client, org, member, old_won_deal):
    client.force_login(member.user)

    response = client.get("/o/acme/forecast/")

    assert response.status_code == 200
    assert response.context["period"].label == "2017-Q4"
    labels = [period.label for period in response.context["periods"]]
    assert "2017-Q4" in labels
    assert _current_quarter(org).label in labels


def test_current_period_with_deals_stays_default(client, org, member, old_won_deal, open_deals):
    client.force_login(member.user)

    response = client.get("/o/acme/forecast/")

    assert response.context["period"] == _current_quarter(org)


def test_current_period_with_submission_stays_default(client, org, member, old_won_deal):
    client.force_login(member.user)
    _submit(client, member, org=org)

    response = client.get("/o/acme/forecast/")

    assert response.context["period"] == _current_quarter(org)


def test_explicit_period_kept_when_current_empty(client, org, member, old_won_deal):
    client.force_login(member.user)
    current = _current_quarter(org)

    response = client.get(f"/o/acme/forecast/?period={current.label}")

    assert response.context["period"] == current
