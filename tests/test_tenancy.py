"""Tenant isolation of the dashboard, scorecard and deal pages; login pages in both languages."""

import pytest
from django_scopes import scopes_disabled

from tests.factories import DealFactory



@pytest.fixture
def acme_deal(member):
    with scopes_disabled():
        return DealFactory(owner=member, name="Acme secret")


@pytest.fixture
def globex_deal(other_org_admin):
    with scopes_disabled():
        return DealFactory(owner=other_org_admin, name="Globex deal")


@pytest.mark.parametrize("path", ["/o/acme/dashboard/", "/o/acme/me/", "/o/acme/deals/"])
def test_other_org_member_gets_404_on_pages(client, other_org_admin, acme_deal, path):
    client.force_login(other_org_admin.user)

    assert client.get(path).status_code == 404


def test_other_org_member_gets_404_on_deal_detail(client, other_org_admin, acme_deal):
    client.force_login(other_org_admin.user)

    assert client.get(f"/o/acme/deals/{acme_deal.pk}/").status_code == 404


def test_foreign_deal_id_under_own_slug_is_404(client, other_org_admin, acme_deal, globex_deal):
    client.force_login(other_org_admin.user)

    assert client.get(f"/o/globex/deals/{acme_deal.pk}/").status_code == 404
    assert client.get(f"/o/globex/deals/{globex_deal.pk}/").status_code == 200


def test_own_deal_list_omits_other_org_deals(client, other_org_admin, acme_deal, globex_deal):
    client.force_login(other_org_admin.user)

    response = client.get("/o/globex/deals/")

    assert [deal.name for deal in response.context["page"]] == ["Globex deal"]
    assert "Acme secret" not in response.content.decode()


@pytest.mark.parametrize(
    "path", ["/o/acme/dashboard/", "/o/acme/me/", "/o/acme/deals/", "/o/acme/deals/1/"]
)
def test_anonymous_redirected_to_login(client, org, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


# Login pages inside the SPM layout


def test_login_page_in_german(client, db):
    response = client.get("/accounts/login/", headers={"Accept-Language": "de"})

    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="de">' in content
    # The project's catalog translates the page's "Sign In"; allauth's supplies the field labels.
    assert "Anmelden" in content
    assert "E-Mail" in content
    assert "Passwort" in content
    assert 'class="navbar navbar-expand-xl' in content


def test_login_page_in_english(client, db):
    response = client.get("/accounts/login/", headers={"Accept-Language": "en"})

    content = response.content.decode()
    assert '<html lang="en">' in content
    assert "Sign In" in content
    assert 'class="btn btn-primary"' in content
    assert 'class="form-control' in content
    assert "sign up" not in content.lower()


def test_login_inputs_have_labels(client, db):
    content = client.get("/accounts/login/", headers={"Accept-Language": "en"}).content.decode()

    assert '<label class="form-label" for="id_login">' in content
    assert '<label class="form-label" for="id_password">' in content


@pytest.mark.parametrize("path", ["/accounts/password/reset/", "/accounts/logout/"])
def test_account_pages_use_the_layout(client, member, path):
    client.force_login(member.user)

    content = client.get(path, headers={"Accept-Language": "en"}).content.decode()

    assert 'class="navbar navbar-expand-xl' in content
    assert 'class="card shadow-sm"' in content


def test_login_with_password_reaches_scorecard(client, member):
    response = client.post(
        "/accounts/login/", {"login": "rep@acme.example", "password": "correct-horse-battery"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/o/acme/me/"
    assert response.status_code == 200


def test_organization_address_leads_to_role_start_page(client, org, member, manager_member):
    client.force_login(member.user)
    assert client.get("/o/acme/")["Location"] == "/o/acme/me/"

    client.force_login(manager_member.user)
    assert client.get("/o/acme/")["Location"] == "/o/acme/dashboard/"
