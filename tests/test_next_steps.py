"""Next steps on the deal list: open deals ranked by expected value at risk, with reasons.

Value at risk = base amount × (1 − probability) × (1 + 0.5 × number of reasons). Scenario
at NOW = 2017-06-15 10:00 UTC (Europe/Berlin, today 2017-06-15); stages Qualify (default
20 %, stalls after 10 days) and Propose (default 60 %, never stalls):

| deal | owner  | stage   | amount  | probability            | reasons                      | value at risk |
| A    | rep    | Propose | 10,000  | 0.60 stage default     | slipping (close 06-01)       | 10,000 × 0.4 × 1.5 = 6,000 |
| B    | rep    | Qualify | 5,000   | 0.20 stage default     | stalled (44.9 days), low     | 5,000 × 0.8 × 2.0 = 8,000 |
| C    | rep    | Propose | 20,000  | 0.90 model score       | slipping (close 06-10)       | 20,000 × 0.1 × 1.5 = 3,000 |
| D    | rep    | Propose | 50,000  | 0.60 stage default     | none (close 07-31)           | not listed |
| E    | rep    | Propose | 1,000   | 0.10 set on the deal   | low                          | 1,000 × 0.9 × 1.5 = 1,350 |
| F    | other  | Qualify | 100,000 | 0.20 stage default     | stalled (44.9 days), low     | 100,000 × 0.8 × 2.0 = 160,000 |
| G    | rep    | Won     | 90,000  | closed                 | –                            | not listed |

The rep sees B, A, C, E in that order; the manager of both reps sees F first.
"""

import datetime as dt
import types
from decimal import Decimal

import pytest
from django_scopes import scope, scopes_disabled

from pipelines.models import DealScore, DealStageChange, DealStatus, StageKind, WinModel, WinModelStatus
from pipelines.scoring.next_steps import LOW, SLIPPING, STALLED, next_steps_list
from tests.factories import DealFactory, PipelineFactory, StageFactory

NOW = dt.datetime(2017, 6, 15, 10, 0, tzinfo=dt.timezone.utc)
CREATED = dt.datetime(2017, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def deals(org, member, other_rep):
    with scopes_disabled():
        pipeline = PipelineFactory(organization=org)
        qualify = StageFactory(pipeline=pipeline, name="Qualify", order=1, probability=20, stalled_after_days=10)
        propose = StageFactory(pipeline=pipeline, name="Propose", order=2, probability=60)
        won = StageFactory(pipeline=pipeline, name="Won", order=3, probability=100, kind=StageKind.WON)

        def deal(name, owner, stage, amount, close_on, **extra):
            created = DealFactory(
                name=name,
                owner=owner,
                stage=stage,
                amount=Decimal(amount),
                base_amount=Decimal(amount),
                created_at=CREATED,
                expected_close_on=close_on,
                **extra,
            )
            # Propose deals moved recently; Qualify deals sat untouched since creation.
            moved_at = dt.datetime(2017, 6, 10, 12, 0, tzinfo=dt.timezone.utc) if stage == propose else CREATED
            DealStageChange.objects.create(organization=org, deal=created, to_stage=stage, changed_at=moved_at)
            return created

        result = {
            "A": deal("A", member, propose, "10000", dt.date(2017, 6, 1)),
            # An id above 999 shows whether ids in attributes escape the thousands separator.
            "B": deal("B", member, qualify, "5000", dt.date(2017, 7, 1), id=12345),
            "C": deal("C", member, propose, "20000", dt.date(2017, 6, 10)),
            "D": deal("D", member, propose, "50000", dt.date(2017, 7, 31)),
            "E": deal("E", member, propose, "1000", dt.date(2017, 7, 31), probability=10),
            "F": deal("F", other_rep, qualify, "100000", dt.date(2017, 7, 1)),
            "G": deal(
                "G", member, won, "90000", dt.date(2017, 6, 1), status=DealStatus.WON, closed_at=NOW - dt.timedelta(days=1)
            ),
        }
        model = WinModel.objects.create(organization=org, version=1, status=WinModelStatus.SUCCEEDED)
        DealScore.objects.create(
            organization=org, deal=result["C"], model=model, probability=Decimal("0.9000"), scored_at=NOW
        )
        return result


def test_rep_ranking_by_value_at_risk(org, member, deals):
    with scope(organization=org):
        steps = next_steps_list(organization=org, visible_member_ids={member.pk}, now=NOW)

    assert [step.deal.name for step in steps] == ["B", "A", "C", "E"]
    assert [step.value_at_risk for step in steps] == [
        Decimal("8000.00"),
        Decimal("6000.00"),
        Decimal("3000.00"),
        Decimal("1350.00"),
    ]
    assert [step.probability for step in steps] == [Decimal("0.2"), Decimal("0.6"), Decimal("0.9"), Decimal("0.1")]
    assert [step.probability_source for step in steps] == ["stage", "stage", "model", "deal"]


def test_reasons_per_deal(org, member, deals):
    with scope(organization=org):
        steps = {step.deal.name: step for step in next_steps_list(organization=org, visible_member_ids={member.pk}, now=NOW)}

    assert [reason.code for reason in steps["B"].reasons] == [STALLED, LOW]
    # Untouched since 2017-05-01 12:00 UTC: 44.9 days at NOW, shown as whole days.
    assert steps["B"].reasons[0].details == {"idle_days": 44, "threshold_days": 10}
    assert [reason.code for reason in steps["A"].reasons] == [SLIPPING]
    assert steps["A"].reasons[0].details["days"] == 14
    assert [reason.code for reason in steps["C"].reasons] == [SLIPPING]
    assert [reason.code for reason in steps["E"].reasons] == [LOW]


def test_reason_texts(org, member, deals):
    with scope(organization=org):
        steps = {step.deal.name: step for step in next_steps_list(organization=org, visible_member_ids={member.pk}, now=NOW)}

    assert steps["B"].reason_texts == [
        "Stalled: no stage change or activity for 44 days, the stage allows 10 days. Plan the next step with the customer.",
        "Low win probability 20.0% (stage default). Check that the deal is still qualified.",
    ]
    assert steps["A"].reason_texts[0].startswith("Slipping: the expected close date ")
    assert steps["A"].reason_texts[0].endswith(" passed 14 days ago. Update the date or close the deal.")
    assert steps["E"].reason_texts == ["Low win probability 10.0% (set on the deal). Check that the deal is still qualified."]
    assert steps["C"].reason_texts[0].endswith(" passed 5 days ago. Update the date or close the deal.")


def test_manager_sees_reports_deals(org, manager_member, deals):
    from spm.tenancy import membership_ids_visible

    with scope(organization=org):
        steps = next_steps_list(organization=org, visible_member_ids=membership_ids_visible(manager_member), now=NOW)

    assert [step.deal.name for step in steps] == ["F", "B", "A", "C", "E"]
    assert steps[0].value_at_risk == Decimal("160000.00")


def test_limit_and_query_count(org, member, deals, django_assert_num_queries):
    with scope(organization=org), django_assert_num_queries(2):
        steps = next_steps_list(organization=org, visible_member_ids={member.pk}, now=NOW, limit=2)

    assert [step.deal.name for step in steps] == ["B", "A"]


@pytest.fixture
def fixed_now(monkeypatch):
    monkeypatch.setattr("pipelines.views.timezone", types.SimpleNamespace(now=lambda: NOW))


def test_deal_list_shows_next_steps(client, member, deals, fixed_now):
    client.force_login(member.user)

    response = client.get("/o/acme/deals/")

    assert response.status_code == 200
    assert [step.deal.name for step in response.context["next_steps"]] == ["B", "A", "C", "E"]
    html = response.content.decode()
    assert html.index(f'data-next-step="{deals["B"].pk}"') < html.index(f'data-next-step="{deals["A"].pk}"')
    assert f'data-next-step="{deals["F"].pk}"' not in html
    assert "Plan the next step with the customer." in html


def test_deal_list_fragment_without_next_steps(client, member, deals, fixed_now):
    client.force_login(member.user)

    response = client.get("/o/acme/deals/?status=open", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "next_steps" not in response.context
    assert b"data-next-steps" not in response.content


def test_deal_list_without_risky_deals(client, org, member, fixed_now):
    client.force_login(member.user)

    response = client.get("/o/acme/deals/")

    assert response.context["next_steps"] == []
    assert b"No open deal is stalled, slipping or unlikely to be won." in response.content


def test_cached_ranking_reused_until_deals_change(org, member, deals, django_assert_num_queries):
    from django.core.cache import cache

    from dashboards.services import deal_data_version_bump
    from pipelines.scoring.next_steps import next_steps_cached

    cache.clear()
    with scope(organization=org):
        first = next_steps_cached(organization=org, visible_member_ids={member.pk}, now=NOW, model_run_id=None)
        with django_assert_num_queries(0):
            again = next_steps_cached(organization=org, visible_member_ids={member.pk}, now=NOW, model_run_id=None)
        deal_data_version_bump(organization_id=org.pk)
        with django_assert_num_queries(2):
            after_change = next_steps_cached(organization=org, visible_member_ids={member.pk}, now=NOW, model_run_id=None)

    assert [step.deal.pk for step in again] == [step.deal.pk for step in first]
    assert [step.deal.pk for step in after_change] == [step.deal.pk for step in first]
