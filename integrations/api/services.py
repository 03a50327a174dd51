"""Creating and revoking API tokens."""

import hashlib
import logging
import secrets

from django.db import transaction
from django.utils import timezone

from integrations.api.models import ApiToken
from spm.audit import audit_record
from spm.models import Organization, User

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "spm"
PREFIX_SHOWN = 12


def api_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, organization: Organization, name: str, scope: str, actor: User | None) -> tuple[ApiToken, str]:
    """Create a token and return it with its plain text, which is never stored and cannot be shown again."""
    plain = f"{TOKEN_PREFIX}_{organization.pk}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=organization,
            name=name,
            scope=scope,
            prefix=plain[: len(f"{TOKEN_PREFIX}_{organization.pk}_") + 4],
            token_hash=api_token_hash(plain),
            created_by=actor,
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="api_token.created",
            object_type="api_token",
            object_id=token.pk,
            after={"name": token.name, "scope": token.scope, "prefix": token.prefix},
        )
    logger.info("API token created organization_id=%s api_token_id=%s scope=%s", organization.pk, token.pk, scope)
    return token, plain


def api_token_revoke(*, token: ApiToken, actor: User | None) -> ApiToken:
    """Revoke `token` at once; a token already revoked keeps its first revocation."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor
        )
        # Already revoked: nothing to record.
        if not updated:
            token.refresh_from_db()
            return token
        audit_record(
            organization=token.organization_id,
            actor=actor,
            action="api_token.revoked",
            object_type="api_token",
            object_id=token.pk,
            before={"name": token.name, "scope": token.scope, "prefix": token.prefix},
        )
    token.refresh_from_db()
    logger.info("API token revoked organization_id=%s api_token_id=%s", token.organization_id, token.pk)
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Record the token's use; writes at most once a minute per token, so reads stay cheap."""
    now = timezone.now()
    if token.last_used_at is not None and (now - token.last_used_at).total_seconds() < 60:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
