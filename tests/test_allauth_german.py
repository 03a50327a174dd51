"""django-allauth's pages, e-mails and messages address German users with "Sie", like the rest of the product.

allauth's own German catalog uses "du"; spm/allauth_german.py lists the msgids that
the project catalog translates formally instead.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import allauth
import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.apps import apps
from django.core import mail
from django.urls import reverse
from django.utils import translation

from spm.allauth_german import ALLAUTH_FORMAL_MSGIDS, INSTALLED_APP_FORMAL_MSGIDS
from tests.test_browser import MANAGER_PASSWORD

ALLAUTH_PO = Path(allauth.__file__).parent / "locale" / "de" / "LC_MESSAGES" / "django.po"
# Parts of allauth that this product does not install (INSTALLED_APPS has account and mfa only).
NOT_INSTALLED = ("idp/", "socialaccount/", "usersessions/", "headless/", "templates/idp/", "templates/socialaccount/", "templates/usersessions/")  # fmt: skip
# Pronouns and singular imperatives of the informal address, as allauth's catalog uses them.
INFORMAL = re.compile(
    r"\b(du|dein\w*|dich|dir|gib|wähle|versuche|bestätige|kontaktiere|klicke?|lass|melde|erstelle|folge|überprüfe|prüfe)\b",
    re.IGNORECASE,
)


class VisibleText(HTMLParser):
    """Collect the text a browser shows, leaving out tags, attributes, scripts and styles."""

    def __init__(self):
        super().__init__()
        self.parts, self.hidden_depth = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden_depth += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden_depth -= 1

    def handle_data(self, data):
        if not self.hidden_depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def informal_words(text: str) -> list[str]:
    return [match.group(0) for match in INFORMAL.finditer(text)]


def allauth_informal_msgids() -> set[str]:
    """Return the msgids of installed allauth parts whose German translation in allauth's catalog is informal."""
    with ALLAUTH_PO.open("rb") as po_file:
        catalog = read_po(po_file, locale="de")
    msgids = set()
    for message in catalog:
        if not message.id or all(location.startswith(NOT_INSTALLED) for location, _line in message.locations):
            continue
        translations = message.string if isinstance(message.string, tuple) else (message.string,)
        if any(INFORMAL.search(text) for text in translations):
            msgids.add(message.id[0] if isinstance(message.id, tuple) else message.id)
    return msgids


def installed_app_informal_msgids() -> set[str]:
    """Return the msgids that the German catalog of an installed app other than allauth translates informally."""
    msgids = set()
    for app in apps.get_app_configs():
        mo_path = Path(app.path) / "locale" / "de" / "LC_MESSAGES" / "django.mo"
        if app.name.startswith("allauth") or not mo_path.exists():
            continue
        with mo_path.open("rb") as mo_file:
            catalog = read_mo(mo_file)
        for message in catalog:
            translations = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
            if message.id and any(text and INFORMAL.search(text) for text in translations):
                msgids.add(message.id[0] if isinstance(message.id, tuple) else message.id)
    return msgids


def test_informal_allauth_msgids_listed():
    informal = allauth_informal_msgids()

    assert len(informal) > 30
    assert informal - set(ALLAUTH_FORMAL_MSGIDS) == set()


def test_informal_installed_app_msgids_listed():
    informal = installed_app_informal_msgids()

    assert "Enter a valid email address." in informal
    assert informal - set(INSTALLED_APP_FORMAL_MSGIDS) == set()


@pytest.mark.parametrize("msgid", ALLAUTH_FORMAL_MSGIDS + INSTALLED_APP_FORMAL_MSGIDS)
def test_listed_msgid_formal_in_german(msgid):
    with translation.override("de"):
        german = translation.gettext(msgid)

    assert german != msgid
    assert informal_words(german) == []


@pytest.fixture
def user_with_mfa(admin_member):
    user = admin_member.user
    TOTP.activate(user, generate_totp_secret())
    RecoveryCodes.activate(user)
    return user


ANONYMOUS_PAGES = [
    ("account_login", "Anmelden"),
    ("account_reset_password", "Passwort vergessen? Geben Sie unten Ihre E-Mail-Adresse ein"),
    ("account_reset_password_done", "Wir haben Ihnen eine E-Mail gesendet."),
    ("account_signup", "Registrierung geschlossen"),
]
SIGNED_IN_PAGES = [
    ("account_logout", "Möchten Sie sich wirklich abmelden?"),
    ("account_change_password", "Passwort ändern"),
    ("account_set_password", "Passwort ändern"),
    ("account_email", "E-Mail-Adresse"),
    ("account_reauthenticate", "Zugriff bestätigen"),
    ("mfa_index", "Zwei-Faktor-Authentifizierung"),
    ("mfa_deactivate_totp", "Sie sind dabei, die Anmeldung mit einer Authenticator-App zu deaktivieren."),
    ("mfa_view_recovery_codes", "Wiederherstellungs-Codes"),
    ("mfa_generate_recovery_codes", "Sie sind dabei, einen neuen Satz Wiederherstellungscodes"),
]


@pytest.mark.parametrize(("url_name", "expected"), ANONYMOUS_PAGES)
def test_anonymous_page_formal(client, admin_member, url_name, expected):
    response = client.get(reverse(url_name), HTTP_ACCEPT_LANGUAGE="de", follow=True)

    text = visible_text(response.content.decode())
    assert response.status_code == 200
    assert expected in text
    assert informal_words(text) == []


@pytest.mark.parametrize(("url_name", "expected"), SIGNED_IN_PAGES)
def test_signed_in_page_formal(client, user_with_mfa, url_name, expected):
    client.force_login(user_with_mfa)
    # Reauthenticate with the password, so that the 2FA pages open without asking for it.
    client.post(reverse("account_reauthenticate"), {"password": MANAGER_PASSWORD})

    response = client.get(reverse(url_name), HTTP_ACCEPT_LANGUAGE="de", follow=True)

    text = visible_text(response.content.decode())
    assert response.status_code == 200
    assert expected in text
    assert informal_words(text) == []


def test_password_reset_flow_formal(client, admin_member):
    response = client.post(
        reverse("account_reset_password"), {"email": "admin@acme.example"}, HTTP_ACCEPT_LANGUAGE="de", follow=True
    )
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert informal_words(message.subject) == []
    assert "Sie erhalten diese E-Mail, weil Sie oder jemand anderes das Zurücksetzen" in message.body
    assert informal_words(message.body) == []

    key_url = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", message.body).group(1)
    form_page = client.get(key_url, HTTP_ACCEPT_LANGUAGE="de", follow=True)
    assert informal_words(visible_text(form_page.content.decode())) == []
    done_page = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else key_url,
        {"password1": "another-horse-battery-7", "password2": "another-horse-battery-7"},
        HTTP_ACCEPT_LANGUAGE="de",
        follow=True,
    )
    done_text = visible_text(done_page.content.decode())
    assert "Ihr Passwort wurde geändert." in done_text
    assert informal_words(done_text) == []


def test_reset_invalid_address_formal(client, admin_member):
    response = client.post(reverse("account_reset_password"), {"email": "no-address"}, HTTP_ACCEPT_LANGUAGE="de")

    text = visible_text(response.content.decode())
    assert response.status_code == 200
    assert "Bitte geben Sie eine gültige E-Mail-Adresse ein." in text
    assert informal_words(text) == []


def test_used_reset_link_formal(client, admin_member):
    response = client.get(
        reverse("account_reset_password_from_key", kwargs={"uidb36": "zz", "key": "set-password"}),
        HTTP_ACCEPT_LANGUAGE="de",
        follow=True,
    )

    text = visible_text(response.content.decode())
    assert "Bitte fordern Sie einen neuen Link an" in text
    assert informal_words(text) == []


def test_form_errors_formal(client, admin_member):
    client.force_login(admin_member.user)

    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": "wrong", "password1": "another-horse-battery-7", "password2": "different-horse-battery-7"},
        HTTP_ACCEPT_LANGUAGE="de",
    )

    text = visible_text(response.content.decode())
    assert "Bitte geben Sie Ihr aktuelles Passwort ein." in text
    assert "Sie müssen zweimal dasselbe Passwort eingeben." in text
    assert informal_words(text) == []


def test_logout_message_formal(client, admin_member):
    client.force_login(admin_member.user)

    response = client.post(reverse("account_logout"), HTTP_ACCEPT_LANGUAGE="de", follow=True)

    text = visible_text(response.content.decode())
    assert "Sie haben sich abgemeldet." in text
    assert informal_words(text) == []


def test_login_password_wrong_formal(client, admin_member):
    response = client.post(
        reverse("account_login"), {"login": "admin@acme.example", "password": MANAGER_PASSWORD + "x"}, HTTP_ACCEPT_LANGUAGE="de"
    )

    text = visible_text(response.content.decode())
    assert "Die E-Mail-Adresse und/oder das Passwort sind leider falsch." in text
    assert informal_words(text) == []


def test_reauthentication_code_form_label_german(admin_member):
    from allauth.account.forms import RequestReauthenticationCodeForm

    with translation.override("de"):
        form = RequestReauthenticationCodeForm(user=admin_member.user)
        assert str(form.fields["recipient"].label) == "Empfänger"


def test_already_signed_in_notice_german(client, admin_member):
    client.force_login(admin_member.user)

    response = client.get(reverse("account_reset_password"), HTTP_ACCEPT_LANGUAGE="de")

    text = visible_text(response.content.decode())
    assert "Hinweis: Sie sind bereits als" in text
    assert "Notiz:" not in text
