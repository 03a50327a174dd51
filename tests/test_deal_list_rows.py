"""Deal-list rows, owner options and next steps as written by pipelines.templatetags.deal_list.

The expected cells are what the template filters (`money`, `percent`, `date`) gave
before the rows were written from Python, in German and English.
"""

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation
from django_scopes import scopes_disabled

from dashboards.services import deal_data_version_bump
from pipelines.models import DealScore, DealStatus, WinModel, WinModelStatus
from pipelines.scoring.wording import factor_text, factors_text_many
from pipelines.selectors import OwnerChoice
from pipelines.templatetags.deal_list import _deal_detail_url_builder, owner_options
from tests.attainment_data import utc
from tests.factories import AccountFactory, DealFactory, MembershipFactory, UserFactory

NBSP = "\xa0"
AGE_FACTOR = {"factor": "age_days", "value": 45, "effect": -0.8}
SECTOR_FACTOR = {"factor": "sector", "value": "software", "effect": 0.4}


@pytest.fixture
def deals(org, member, stages):
    """An open deal in dollars created just before midnight UTC, a won deal, and an open deal without amount."""
    with scopes_disabled():
        return {
            "dollars": DealFactory(
                owner=member,
                name="<Dollars & Co>",
                external_id="CRM-1",
                account=AccountFactory(organization=org, name="Initech"),
                stage=stages[DealStatus.OPEN],
                currency="USD",
                amount=Decimal("1350.00"),
                base_amount=Decimal("1234.56"),
                # 23:30 UTC on 31 March is 1 April in Berlin, the organization's time zone.
                created_at=dt.datetime(2017, 3, 31, 23, 30, tzinfo=dt.timezone.utc),
                expected_close_on=dt.date(2017, 6, 30),
            ),
            "won": DealFactory(
                owner=member,
                name="Won deal",
                external_id="CRM-2",
                stage=stages[DealStatus.WON],
                status=DealStatus.WON,
                amount=Decimal("500.00"),
                created_at=utc(1, 10),
                closed_at=utc(2, 14),
            ),
            "no_amount": DealFactory(
                owner=member,
                name="No amount",
                external_id="CRM-3",
                stage=stages[DealStatus.OPEN],
                amount=None,
                base_amount=None,
                created_at=utc(1, 5),
            ),
        }


def model_create(org, status=WinModelStatus.SUCCEEDED) -> WinModel:
    with scopes_disabled():
        return WinModel.objects.create(organization=org, version=1, status=status)


def score_create(deal, model, probability: str, factors: list[dict]) -> DealScore:
    with scopes_disabled():
        return DealScore.objects.create(
            organization=deal.organization,
            deal=deal,
            model=model,
            probability=Decimal(probability),
            factors=factors,
            scored_at=utc(6, 1),
        )


def row_of(client, deal, *, language: str) -> str:
    """Return the deal's `<tr>` from the list's htmx fragment, without whitespace between tags."""
    response = client.get("/o/acme/deals/", headers={"HX-Request": "true", "Accept-Language": language})
    assert response.status_code == 200
    content = response.content.decode()
    link = content.index(f'<a href="/o/acme/deals/{deal.pk}/">')
    row = content[content.rindex("<tr>", 0, link) : content.index("</tr>", link) + len("</tr>")]
    return re.sub(r">\s+<", "><", row)


def test_row_in_german(client, deals, member):
    model = model_create(member.organization)
    score_create(deals["dollars"], model, "0.375", [AGE_FACTOR, SECTOR_FACTOR])
    client.force_login(member.user)

    row = row_of(client, deals["dollars"], language="de")

    assert row == (
        f'<tr><td><a href="/o/acme/deals/{deals["dollars"].pk}/">&lt;Dollars &amp; Co&gt;</a></td>'
        '<td class="text-body-secondary">CRM-1</td>'
        f"<td>{member.display_name}</td>"
        "<td>Initech</td>"
        "<td>Qualify</td>"
        '<td><span class="badge text-bg-light border">Offen</span></td>'
        f'<td class="num">1.234,56{NBSP}€<div class="small text-body-secondary" data-original-amount>'
        f"1.350,00{NBSP}$</div></td>"
        f'<td class="num" data-win-probability><span data-score>37,5{NBSP}%</span>'
        '<div class="small text-body-secondary text-start" data-reason>'
        "Alter des Deals 45 Tage (senkt die Wahrscheinlichkeit)</div></td>"
        '<td class="num">01.04.2017</td>'
        '<td class="num">30.06.2017</td>'
        '<td class="num"></td></tr>'
    )


def test_row_in_english(client, deals, member):
    model = model_create(member.organization)
    score_create(deals["dollars"], model, "0.375", [AGE_FACTOR, SECTOR_FACTOR])
    client.force_login(member.user)

    row = row_of(client, deals["dollars"], language="en")

    assert (
        '<td class="num">€1,234.56<div class="small text-body-secondary" data-original-amount>$1,350.00</div></td>'
    ) in row
    assert '<span data-score>37.5%</span>' in row
    assert "data-reason>Deal age 45 days (lowers the probability)</div></td>" in row
    assert '<td class="num">04/01/2017</td><td class="num">06/30/2017</td><td class="num"></td></tr>' in row


def test_closed_deal_has_no_probability(client, deals, member):
    client.force_login(member.user)

    row = row_of(client, deals["won"], language="en")

    assert '<td><span class="badge text-bg-success">Won</span></td>' in row
    assert '<td class="num">€500.00</td>' in row
    assert '<td class="num" data-win-probability></td>' in row
    assert '<td class="num">01/10/2017</td><td class="num"></td><td class="num">02/14/2017</td>' in row


def test_missing_amount_and_score(client, deals, member):
    client.force_login(member.user)

    row = row_of(client, deals["no_amount"], language="en")

    assert (
        '<td class="num">'
        '<span class="undefined-value" title="Not defined for this selection." tabindex="0">–</span></td>'
    ) in row
    assert (
        '<td class="num" data-win-probability>'
        '<span title="No model probability yet: the model has not scored this deal.">–</span></td>'
    ) in row
    assert "<td></td><td>Qualify</td>" in row


def test_unscored_deal_under_insufficient_model(client, deals, member):
    model_create(member.organization, status=WinModelStatus.INSUFFICIENT)
    client.force_login(member.user)

    row = row_of(client, deals["no_amount"], language="de")

    assert (
        '<td class="num" data-win-probability>'
        '<span title="Zu wenige abgeschlossene Deals für eine Modellwahrscheinlichkeit.">–</span></td>'
    ) in row


def test_owner_filter_options(client, org, deals, admin_member, manager_member, member):
    with scopes_disabled():
        MembershipFactory(organization=org, user=UserFactory(email="ann@acme.example", name="Ann <Admin> & Co"))
    client.force_login(admin_member.user)

    response = client.get(f"/o/acme/deals/?owner={member.pk}")

    content = response.content.decode()
    options = re.search(r'<select class="form-select" id="deal-owner" name="owner">(.*?)</select>', content, re.DOTALL)
    assert options is not None
    names = re.findall(r"<option[^>]*>([^<]*)</option>", options.group(1))
    expected = sorted([admin_member.display_name, manager_member.display_name, member.display_name, "Ann <Admin> & Co"])
    assert names == ["Any owner", *(html.escape(name) for name in expected)]
    assert f'<option value="{member.pk}" selected>{member.display_name}</option>' in options.group(1)
    assert options.group(1).count(" selected") == 1


def test_owner_options_write_ids_without_separators():
    owners = [OwnerChoice(pk=12345, display_name="Ann"), OwnerChoice(pk=7, display_name="Bob")]

    with translation.override("de"):
        options = owner_options(owners, 7)

    assert options == '<option value="12345">Ann</option><option value="7" selected>Bob</option>'


@pytest.mark.parametrize("pk", [1, 10, 100, 2000, 123456])
def test_detail_url_matches_reverse(pk):
    for slug in ("acme", "org-0", "0"):
        assert _deal_detail_url_builder(slug)(pk) == reverse("deal_detail", kwargs={"org_slug": slug, "pk": pk})


def test_factor_texts_follow_language():
    factor_lists = [[AGE_FACTOR, SECTOR_FACTOR], [SECTOR_FACTOR]]

    with translation.override("en"):
        english = factors_text_many(factor_lists, currency="EUR")
        first_only = factors_text_many(factor_lists, currency="EUR", limit=1)
    with translation.override("de"):
        german = factors_text_many(factor_lists, currency="EUR")
        german_expected = [[factor_text(factor, currency="EUR") for factor in factors] for factors in factor_lists]

    assert english == [
        ["Deal age 45 days (lowers the probability)", "Account sector software (raises the probability)"],
        ["Account sector software (raises the probability)"],
    ]
    assert first_only == [
        ["Deal age 45 days (lowers the probability)"],
        ["Account sector software (raises the probability)"],
    ]
    assert german == german_expected
    assert german[0][0] == "Alter des Deals 45 Tage (senkt die Wahrscheinlichkeit)"


def test_list_words_only_the_largest_factor(client, deals, member):
    model = model_create(member.organization)
    score_create(deals["dollars"], model, "0.375", [AGE_FACTOR, SECTOR_FACTOR])
    client.force_login(member.user)

    response = client.get("/o/acme/deals/", headers={"HX-Request": "true"})

    listed = {deal.pk: deal for deal in response.context["page"]}
    assert listed[deals["dollars"].pk].win_probability == Decimal("0.3750")
    assert listed[deals["dollars"].pk].win_reasons == ["Deal age 45 days (lowers the probability)"]
    assert listed[deals["won"].pk].win_reasons == []


def test_next_steps_section_cached_until_deals_change(client, org, member, stages):
    with scopes_disabled():
        deal = DealFactory(
            owner=member,
            name="Slipping deal",
            stage=stages[DealStatus.OPEN],
            amount=Decimal("900.00"),
            created_at=utc(1, 5),
            expected_close_on=dt.date(2017, 2, 1),
        )
    client.force_login(member.user)

    first = next_steps_section(client.get("/o/acme/deals/"))
    with scopes_disabled():
        deal.name = "Renamed deal"
        deal.save(update_fields=["name"])
    cached = next_steps_section(client.get("/o/acme/deals/"))
    german = next_steps_section(client.get("/o/acme/deals/", headers={"Accept-Language": "de"}))
    deal_data_version_bump(organization_id=org.pk)
    after_change = next_steps_section(client.get("/o/acme/deals/"))

    assert f'<tr data-next-step="{deal.pk}">' in first
    assert "Slipping deal</a></td>" in first
    # A rename without a new deal data version keeps the cached ranking and its rendered section.
    assert cached == first
    assert "Nächste Schritte" in german
    assert "Renamed deal</a></td>" in after_change


def next_steps_section(response) -> str:
    content = response.content.decode()
    return content[content.index("<section") : content.index("</section>")]
