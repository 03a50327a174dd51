"""Template tags for the account pages (django-allauth) in the SPM layout."""

from allauth.account.models import EmailAddress
from django import template

register = template.Library()


@register.simple_tag
def unverified_email_addresses(user) -> list[str]:
    """Return the user's unverified addresses, which keep allauth from adding an authenticator."""
    if not user.is_authenticated:
        return []
    return list(EmailAddress.objects.filter(user=user, verified=False).order_by("email").values_list("email", flat=True))
