"""Token authentication, scope permission and per-token rate limits of /api/v1/."""

import logging
import re

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_scopes import scopes_disabled
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from integrations.api.models import ApiToken
from integrations.api.services import api_token_hash, api_token_touch
from spm.ids import id_parse
from spm.models import Membership, Role

logger = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"^spm_(\d+)_[A-Za-z0-9_-]{20,100}$")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticate `Authorization: Bearer spm_<organization id>_<secret>`; `request.auth` becomes the ApiToken.

    The user of the request is the token's creator, so nothing of a login session
    applies. A token acts with its creator's authority: it stops working when the
    creator's account is deactivated (401, which includes erasure) or the creator is
    no longer an admin of the token's organization (403). A token without a creator
    (made by `manage.py api_token_create`, or whose creator was deleted) authenticates
    as an anonymous user.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace").lower() not in ("bearer", "token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid Authorization header; send “Authorization: Bearer <token>” with the token from the API tokens page.")
            )
        plain = parts[1].decode(errors="replace")
        match = TOKEN_PATTERN.match(plain)
        # An organization id beyond the database's integer range names no organization.
        organization_id = None if match is None else id_parse(match[1])
        if organization_id is None:
            raise exceptions.AuthenticationFailed(_("Invalid API token; copy the whole token from the API tokens page."))

        # The organization is not known before the token is found, so this lookup runs
        # outside any scope. It matches only the row of the organization the token names.
        with scopes_disabled():
            token = (
                ApiToken.objects.select_related("organization", "created_by")
                .filter(organization_id=organization_id, token_hash=api_token_hash(plain))
                .first()
            )
            if token is None:
                raise exceptions.AuthenticationFailed(_("Invalid API token; copy the whole token from the API tokens page."))
            if not token.is_active:
                logger.info("Revoked API token used organization_id=%s api_token_id=%s", token.organization_id, token.pk)
                raise exceptions.AuthenticationFailed(_("This API token was revoked; ask an admin for a new one."))
            _creator_check(token)
            api_token_touch(token=token)

        return (token.created_by or AnonymousUser(), token)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


def _creator_check(token: ApiToken) -> None:
    """Reject a token whose creator was deactivated or is no longer an admin of the token's organization."""
    # NOTE: a token whose creator was deleted has no creator left (SET_NULL) and keeps working,
    # like a token made on the command line, until an admin revokes it.
    creator = token.created_by
    if creator is None:
        return
    if not creator.is_active:
        logger.info(
            "API token of a deactivated user used organization_id=%s api_token_id=%s user_id=%s",
            token.organization_id,
            token.pk,
            creator.pk,
        )
        raise exceptions.AuthenticationFailed(
            _("The account that created this API token is deactivated, so the token no longer works. Ask an admin for a new token.")
        )
    is_admin = Membership.objects.filter(organization_id=token.organization_id, user_id=creator.pk, role=Role.ADMIN).exists()
    if not is_admin:
        logger.info(
            "API token of a former admin used organization_id=%s api_token_id=%s user_id=%s",
            token.organization_id,
            token.pk,
            creator.pk,
        )
        raise exceptions.PermissionDenied(
            _(
                "The person who created this API token is no longer an admin of this organization, so the token no "
                "longer works. Ask an admin for a new token."
            )
        )


class HasApiToken(permissions.BasePermission):
    """Any active token may read; only a token with write scope may change data."""

    message = gettext_lazy("This API token may only read; ask an admin for a token with write scope.")

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        return request.method in SAFE_METHODS or token.can_write


class ApiTokenRateThrottle(throttling.SimpleRateThrottle):
    """Limits requests per token, at the rate in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_token"]."""

    scope = "api_token"

    def get_rate(self):
        # Read on each request rather than at import, so a changed setting applies without a restart of the class.
        from django.conf import settings

        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def get_cache_key(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": token.pk}


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes ApiTokenAuthentication in the OpenAPI schema as an HTTP bearer scheme."""

    target_class = ApiTokenAuthentication
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "spm_<organization id>_<secret>"}
