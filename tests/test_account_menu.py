"""The account menu links the account pages, and those pages (django-allauth) show the organization's menu."""

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from spm.models import Role
from tests.factories import MembershipFactory
from tests.test_navigation import _NavLinks

ACCOUNT_LINKS = {
    "/accounts/password/change/": "Change password",
    "/accounts/email/": "E-mail addresses",
    "/accounts/2fa/": "Two-factor authentication",
}
ACCOUNT_LINKS_GERMAN = {
    "/accounts/password/change/": "Passwort ändern",
    "/accounts/email/": "E-Mail-Adressen",
    "/accounts/2fa/": "Zwei-Faktor-Authentifizierung",
}


def nav_hrefs(html: str) -> list[str]:
    parser = _NavLinks()
    parser.feed(html)
    return parser.hrefs


@pytest.fixture
def rep_client(member):
    client = Client()
    client.force_login(member.user)
    return client


@pytest.mark.parametrize("path", ["/o/acme/me/", "/accounts/email/", "/accounts/2fa/", "/accounts/password/change/"])
def test_account_menu_links(rep_client, path):
    html = rep_client.get(path).content.decode()

    hrefs = nav_hrefs(html)
    for href, label in ACCOUNT_LINKS.items():
        assert href in hrefs
        assert f'href="{href}">{label}</a>' in html


def test_account_menu_german(member):
    member.user.language = "de"
    member.user.save()
    client = Client()
    client.force_login(member.user)

    html = client.get("/o/acme/me/").content.decode()

    for href, label in ACCOUNT_LINKS_GERMAN.items():
        assert f'href="{href}">{label}</a>' in html


@pytest.mark.parametrize("path", ["/accounts/email/", "/accounts/2fa/", "/accounts/password/change/", "/accounts/logout/"])
def test_account_page_shows_org_menu(rep_client, path):
    response = rep_client.get(path)

    html = response.content.decode()
    hrefs = nav_hrefs(html)
    assert response.status_code == 200
    assert "SPM · Acme" in html
    assert "/o/acme/me/" in hrefs
    assert "/o/acme/deals/" in hrefs
    assert "/o/acme/dashboard/" not in hrefs  # a rep's menu has no dashboard


def test_account_page_uses_last_org(other_org, member):
    with scopes_disabled():
        MembershipFactory(organization=other_org, role=Role.ADMIN, user=member.user)
    client = Client()
    client.force_login(member.user)
    before_any_org = nav_hrefs(client.get("/accounts/email/").content.decode())

    client.get("/o/globex/dashboard/")
    after_globex = client.get("/accounts/email/").content.decode()
    client.get("/o/acme/me/")
    after_acme = client.get("/accounts/email/").content.decode()

    assert [href for href in before_any_org if href.startswith("/o/")] == []
    assert "SPM · Globex" in after_globex
    assert "/o/globex/dashboard/" in nav_hrefs(after_globex)
    assert "/o/acme/me/" not in nav_hrefs(after_globex)
    assert "SPM · Acme" in after_acme
    assert "/o/acme/me/" in nav_hrefs(after_acme)


def test_account_page_ignores_left_org(rep_client, member, other_org):
    with scopes_disabled():
        MembershipFactory(organization=other_org, role=Role.REP, user=member.user)
        rep_client.get("/o/globex/me/")
        member.user.memberships.filter(organization=other_org).delete()

    html = rep_client.get("/accounts/email/").content.decode()

    assert "SPM · Globex" not in html
    assert "SPM · Acme" in html


def test_login_page_without_org_menu(member):
    html = Client().get("/accounts/login/").content.decode()

    assert [href for href in nav_hrefs(html) if href.startswith("/o/") or href.startswith("/accounts/")] == []
