"""Login addresses and django-allauth's e-mail verification.

SPM has no public sign-up: an admin, an import or `import_people` sets every login address,
and `ACCOUNT_EMAIL_VERIFICATION = "none"` sends no verification mail. allauth's MFA still
rejects a new authenticator while the user has an unverified `EmailAddress` row, which exists
as soon as the user opens /accounts/email/. That rule stops a person who signed up with someone
else's address from locking the owner out. Without sign-up the case cannot arise, so the
address that SPM gave a user is marked verified when they log in.
"""

import logging

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver

logger = logging.getLogger(__name__)


def has_totp(user) -> bool:
    """Return whether the user has activated an authenticator app (TOTP)."""
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def login_address_verify(user) -> bool:
    """Mark the user's login address (`User.email`) verified and primary; return whether a row changed.

    Only while the user has no verified address and no address rows other than the login
    address: an address the user added on /accounts/email/ stays unverified until they
    confirm it by the link that allauth mails, and it blocks two-factor activation until then.
    """
    if not user.email:
        return False
    with transaction.atomic():
        addresses = list(EmailAddress.objects.select_for_update().filter(user=user))
        if any(address.verified for address in addresses):
            return False
        if any(address.email.lower() != user.email.lower() for address in addresses):
            return False
        if addresses:
            EmailAddress.objects.filter(pk=addresses[0].pk).update(verified=True, primary=True)
        else:
            EmailAddress.objects.create(user=user, email=user.email.lower(), verified=True, primary=True)
    logger.info("Login address marked verified user_id=%s", user.pk)
    return True


@receiver(user_logged_in, dispatch_uid="spm_login_address_verify")
def _login_address_verify_on_login(sender, request, user, **kwargs) -> None:
    login_address_verify(user)
