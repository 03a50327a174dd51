"""Two-factor authentication: members can activate an authenticator app, and the duty cannot lock anyone out.

allauth's MFA rejects a new authenticator while the user has an unverified e-mail address,
and SPM sends no verification mail on its own (ACCOUNT_EMAIL_VERIFICATION = "none").
spm.accounts marks the login address verified at login; an address the user added stays
unverified until confirmed by mail.
"""

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    SECRET_SESSION_KEY,
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.core import mail
from django.core.cache import cache
from django.test import Client

from spm.accounts import login_address_verify
from tests.test_browser import MANAGER_PASSWORD

TOTP_PERIOD_SECONDS = 30  # allauth's default MFA_TOTP_PERIOD


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # allauth counts reauthentications per user id in the cache, and the ids repeat across tests.
    cache.clear()


def current_totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // TOTP_PERIOD_SECONDS))


def log_in(client: Client, email: str) -> None:
    response = client.post("/accounts/login/", {"login": email, "password": MANAGER_PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]


def totp_activate(client: Client):
    """Open the setup page after reauthenticating, and post the code of the secret it shows."""
    client.post("/accounts/reauthenticate/", {"password": MANAGER_PASSWORD})
    setup = client.get("/accounts/2fa/totp/activate/")
    assert setup.status_code == 200, setup.get("Location")
    secret = client.session[SECRET_SESSION_KEY]
    return client.post("/accounts/2fa/totp/activate/", {"code": current_totp_code(secret)})


def test_login_marks_login_address_verified(client, admin_member):
    log_in(client, "admin@acme.example")

    addresses = list(EmailAddress.objects.filter(user=admin_member.user).values_list("email", "verified", "primary"))
    assert addresses == [("admin@acme.example", True, True)]


def test_login_verifies_row_created_by_email_page(client, admin_member):
    # The e-mail page created this row before logins verified the address.
    EmailAddress.objects.create(user=admin_member.user, email="admin@acme.example", verified=False, primary=False)

    log_in(client, "admin@acme.example")

    addresses = list(EmailAddress.objects.filter(user=admin_member.user).values_list("email", "verified", "primary"))
    assert addresses == [("admin@acme.example", True, True)]


def test_login_leaves_user_added_address_unverified(admin_member):
    user = admin_member.user
    EmailAddress.objects.create(user=user, email="admin@acme.example", verified=False, primary=True)
    EmailAddress.objects.create(user=user, email="private@example.org", verified=False, primary=False)

    changed = login_address_verify(user)

    assert changed is False
    assert EmailAddress.objects.filter(user=user, verified=True).count() == 0


def test_email_page_then_totp_activation(client, admin_member):
    log_in(client, "admin@acme.example")
    email_page = client.get("/accounts/email/")

    response = totp_activate(client)

    assert email_page.status_code == 200
    assert "Unverified" not in email_page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/recovery-codes/"
    assert Authenticator.objects.filter(user=admin_member.user, type=Authenticator.Type.TOTP).count() == 1


def test_admin_enables_duty_after_own_totp(client, admin_member, org, member):
    log_in(client, "admin@acme.example")
    assert totp_activate(client).status_code == 302

    saved = client.post("/o/acme/data-protection/", {"requires_mfa": "on"})
    dashboard = client.get("/o/acme/dashboard/")
    settings_page = client.get("/o/acme/data-protection/")

    org.refresh_from_db()
    assert saved.status_code == 302
    assert org.requires_mfa is True
    assert dashboard.status_code == 200
    assert settings_page.status_code == 200


def test_rep_under_duty_activates_totp(org, member):
    org.requires_mfa = True
    org.save()
    client = Client()
    log_in(client, "rep@acme.example")
    redirected = client.get("/o/acme/me/")

    response = totp_activate(client)
    scorecard = client.get("/o/acme/me/")

    assert redirected.status_code == 302
    assert redirected["Location"] == "/accounts/2fa/totp/activate/"
    assert response.status_code == 302
    assert scorecard.status_code == 200


def test_duty_rejected_for_admin_without_totp(admin_client, org):
    response = admin_client.post("/o/acme/data-protection/", {"requires_mfa": "on", "activity_retention_days": "365"})

    org.refresh_from_db()
    assert response.status_code == 400
    assert (
        "Set up an authenticator app for your own account first (account menu, Two-factor authentication), "
        "otherwise this setting locks you out of the organization." in response.content.decode()
    )
    assert org.requires_mfa is False
    assert org.activity_retention_days is None


def test_duty_kept_off_without_totp_saves(admin_client, org):
    response = admin_client.post("/o/acme/data-protection/", {"activity_retention_days": "365"})

    org.refresh_from_db()
    assert response.status_code == 302
    assert org.activity_retention_days == 365


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/2fa/",
        "/accounts/2fa/totp/activate/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/reauthenticate/",
        "/accounts/logout/",
    ],
)
def test_duty_leaves_account_pages_open(org, member, path):
    org.requires_mfa = True
    org.save()
    client = Client()
    log_in(client, "rep@acme.example")

    response = client.get(path)

    # The setup page redirects to reauthentication, which is itself one of these pages.
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert response["Location"].startswith("/accounts/reauthenticate/")


def test_duty_allows_logout(org, member):
    org.requires_mfa = True
    org.save()
    client = Client()
    log_in(client, "rep@acme.example")

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_added_address_blocks_until_confirmed(org, member):
    org.requires_mfa = True
    org.save()
    client = Client()
    log_in(client, "rep@acme.example")
    client.post("/accounts/reauthenticate/", {"password": MANAGER_PASSWORD})
    mail.outbox.clear()
    # allauth mails the confirmation link as soon as an address is added.
    client.post("/accounts/email/", {"action_add": "", "email": "rep.private@example.org"})

    rejected = client.get("/accounts/2fa/totp/activate/", follow=True)
    rejected_text = rejected.content.decode()
    assert rejected.redirect_chain[-1][0] == "/accounts/2fa/"
    assert "An authenticator app can be activated once your e-mail address rep.private@example.org is verified." in rejected_text
    assert 'href="/accounts/email/"' in rejected_text

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["rep.private@example.org"]
    confirm_path = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", mail.outbox[0].body).group(1)
    assert client.get(confirm_path).status_code == 200
    confirmed = client.post(confirm_path)

    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(email="rep.private@example.org").verified is True
    assert totp_activate(client).status_code == 302
    assert client.get("/o/acme/me/").status_code == 200


def test_settings_form_with_totp_saves(admin_member, org):
    TOTP.activate(admin_member.user, generate_totp_secret())
    client = Client()
    client.force_login(admin_member.user)

    response = client.post("/o/acme/data-protection/", {"requires_mfa": "on"})

    org.refresh_from_db()
    assert response.status_code == 302
    assert org.requires_mfa is True
