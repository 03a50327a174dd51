"""E-mail addresses that enter through an import or the API: checked with Django's `validate_email` and User.email's length."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_noop

from pipelines.importers.base import Message, RowRejected, value_excerpt
from spm.models import User

MAX_EMAIL_LENGTH = User._meta.get_field("email").max_length

INVALID_EMAIL = gettext_noop("invalid e-mail address; enter an address such as anna.schmidt@example.com")
TOO_LONG = gettext_noop("too long; at most %(max_length)d characters")


def email_check(email: str, column: "str | Message", value: str | None = None) -> str:
    """Return `email` if Django's `validate_email` accepts it and it fits User.email, else raise RowRejected.

    `value` is the cell as the file or record gives it, shown in the rejection; it defaults to `email`.
    """
    cell_value = email if value is None else value
    if len(email) > MAX_EMAIL_LENGTH:
        raise RowRejected(column, cell_value, TOO_LONG, max_length=MAX_EMAIL_LENGTH)
    try:
        validate_email(email)
    except ValidationError:
        raise RowRejected(column, cell_value, INVALID_EMAIL) from None
    return email


def generated_email_check(email: str, column: "str | Message", name: str) -> str:
    """Return `email`, the address built from `name`, if it is valid and fits User.email, else raise RowRejected.

    An empty `email` means that the name has no letter to build an address from.
    """
    if not email:
        raise RowRejected(column, name, gettext_noop("the name has no letters to build an e-mail address"))
    if len(email) > MAX_EMAIL_LENGTH:
        raise RowRejected(
            column,
            name,
            gettext_noop(
                "too long; the e-mail address built from the name, %(email)s, has %(length)d characters and at most "
                "%(max_length)d are allowed, so shorten the name or enter the person's e-mail address"
            ),
            email=value_excerpt(email),
            length=len(email),
            max_length=MAX_EMAIL_LENGTH,
        )
    try:
        validate_email(email)
    except ValidationError:
        raise RowRejected(
            column,
            name,
            gettext_noop("the e-mail address built from the name, %(email)s, is invalid; enter the person's e-mail address"),
            email=value_excerpt(email),
        ) from None
    return email
