"""Authentication and transport security: lockout, password policy, two-factor duty, cookies, CSP, deploy check."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # allauth counts attempts in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


def login(client, email, password):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_login_locked_after_five_failures(member):
    client = Client()
    for _attempt in range(5):
        assert login(client, "rep@acme.example", "wrong-password-1").status_code == 200

    response = login(client, "rep@acme.example", PASSWORD)

    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_address(member, other_rep):
    client = Client()
    for _attempt in range(5):
        login(client, "rep@acme.example", "wrong-password-1")

    response = login(client, "rep2@acme.example", PASSWORD)

    assert response.status_code == 302


def test_office_behind_one_address_logs_in(member):
    # 60 people of one office log in within a minute; each succeeds.
    for _person in range(60):
        response = login(Client(), "rep@acme.example", PASSWORD)
        assert response.status_code == 302


def test_rate_limits_configured():
    limits = settings.ACCOUNT_RATE_LIMITS

    assert limits["login_failed"] == "10/m/ip,5/5m/key"
    assert "login" in limits


@pytest.mark.parametrize(
    "password, message",
    [
        ("Sh0rt-pw", "This password is too short. It must contain at least 10 characters."),
        ("1234567890123", "This password is entirely numeric."),
        ("password123", "This password is too common."),
    ],
)
def test_password_policy_rejects(password, message):
    with pytest.raises(ValidationError) as error:
        validate_password(password)

    assert message in error.value.messages


def test_password_policy_accepts_long_passphrase():
    assert validate_password("violet-tram-harbour-42") is None


@pytest.fixture
def rep_client(member):
    client = Client()
    client.force_login(member.user)
    return client


def test_mfa_duty_redirects_member_without_totp(rep_client, org):
    org.requires_mfa = True
    org.save()

    response = rep_client.get("/o/acme/me/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/totp/activate/"


def test_mfa_setup_reachable_under_duty(rep_client, org):
    org.requires_mfa = True
    org.save()

    setup = rep_client.get("/accounts/2fa/totp/activate/")
    # allauth asks for the password again before it shows the setup page.
    reauthenticate = rep_client.get(setup["Location"])

    assert setup.status_code == 302
    assert setup["Location"] == "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    assert reauthenticate.status_code == 200


def test_mfa_duty_lets_member_with_totp_in(rep_client, org, member):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    org.requires_mfa = True
    org.save()
    TOTP.activate(member.user, generate_totp_secret())

    response = rep_client.get("/o/acme/me/")

    assert response.status_code == 200


def test_no_mfa_duty_by_default(rep_client):
    assert rep_client.get("/o/acme/me/").status_code == 200


def test_csp_allows_only_own_scripts(rep_client):
    response = rep_client.get("/o/acme/me/")

    policy = dict(
        directive.strip().split(" ", 1) for directive in response["Content-Security-Policy"].split(";") if directive.strip()
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


def test_pages_have_no_inline_scripts(rep_client):
    content = rep_client.get("/o/acme/me/").content.decode()

    # Every <script> either loads a file or carries JSON data, which CSP does not execute.
    for tag in content.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening


def test_session_and_csrf_cookies_http_only(member):
    client = Client()
    client.get("/accounts/login/")
    response = login(client, "rep@acme.example", PASSWORD)

    assert response.cookies["sessionid"]["httponly"] is True
    assert client.cookies["csrftoken"]["httponly"] is True
    assert response.cookies["sessionid"]["samesite"] == "Lax"


def _production_environment(**overrides) -> dict:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "spm.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "spm.example",
    }
    environment.update(overrides)
    return environment


def test_deploy_check_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env=_production_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_sets_hsts_and_secure_cookies():
    probe = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps([settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE, "
        "settings.CSRF_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=_production_environment(), capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[31536000, true, true, true]"
