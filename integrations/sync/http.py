"""JSON requests to the CRM APIs: timeouts, 429 handling with Retry-After, clear errors.

Requests go through `integrations.webhooks.outbound.http_request`, the one outbound HTTP
path for addresses that admins type in. It rejects hosts that resolve to private, loopback
or link-local addresses unless WEBHOOKS_ALLOW_LOOPBACK is on (development and tests). It
connects to exactly the address it checked and follows no redirects.
"""

import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from django.utils import timezone
from django.utils.translation import gettext

from integrations.webhooks.outbound import (
    OutboundRequestError,
    OutboundURLError,
    http_request,
)

logger = logging.getLogger(__name__)

# Seconds to wait for the connection and for each read of the response.
REQUEST_TIMEOUT_SECONDS = 30
# A 429 or 5xx response is retried this many times before the run fails.
MAX_RETRIES = 4
# Waits longer than this (a Retry-After of an hour, say) end the run instead of blocking a worker.
MAX_RETRY_WAIT_SECONDS = 120
# A page of 100 HubSpot deals with their stage history is well below 1 MB; a larger body is an error.
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
# Wait before retrying a 5xx response or a 429 without Retry-After; doubled on each retry.
BACKOFF_SECONDS = 2.0


class CrmError(Exception):
    """A request to the CRM failed; `message` is shown on the integrations page in the user's language."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class CrmAuthError(CrmError):
    """The CRM rejected the access token (401 or 403)."""


class JsonClient:
    """Sends JSON requests to one CRM's base URL with its authentication and counts them.

    `auth_headers` go with every request and `auth_params` into every query string
    (Pipedrive takes its token as `api_token`). `sleep` is injectable so tests can record
    the waits instead of sleeping.
    """

    def __init__(
        self,
        *,
        base_url: str,
        provider_name: str,
        auth_headers: dict[str, str] | None = None,
        auth_params: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.provider_name = provider_name
        self.auth_headers = auth_headers or {}
        self.auth_params = auth_params or {}
        self.timeout = timeout
        self.sleep = sleep
        self.request_count = 0
        self.retry_waits: list[float] = []

    def get(self, path: str, params: dict | list[tuple[str, str]] | None = None) -> dict:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict, params: dict | None = None) -> dict:
        return self.request("POST", path, params=params, body=body)

    def request(self, method: str, path: str, *, params=None, body: dict | None = None) -> dict:
        """Send one request and return the decoded JSON object, retrying 429 and 5xx responses.

        Raises CrmAuthError for 401 and 403, and CrmError for other 4xx responses, for
        retries that ran out, for a timeout or an unreachable host, and for a body that is
        not JSON. The error message never contains the token, which Pipedrive takes in the
        query string.
        """
        query = list(params.items()) if isinstance(params, dict) else list(params or [])
        query += list(self.auth_params.items())
        url = f"{self.base_url}{path}"
        if query:
            url = f"{url}?{urllib.parse.urlencode(query, doseq=True)}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **self.auth_headers}
        if data is not None:
            headers["Content-Type"] = "application/json"

        attempt = 0
        while True:
            attempt += 1
            self.request_count += 1
            try:
                response = http_request(
                    method,
                    url,
                    body=data,
                    headers=headers,
                    timeout=self.timeout,
                    max_bytes=MAX_RESPONSE_BYTES,
                    fail_on_oversize=True,
                )
            except OutboundURLError as error:
                # The message quotes the URL, whose query string may carry the token; show the base address instead.
                reason = str(error).replace(url, self.base_url)
                raise CrmError(
                    gettext("%(provider)s API address rejected: %(reason)s")
                    % {"provider": self.provider_name, "reason": reason}
                ) from None
            except OutboundRequestError as error:
                raise CrmError(
                    gettext("%(provider)s could not be reached at %(url)s (%(reason)s). Check the API address.")
                    % {"provider": self.provider_name, "url": self.base_url, "reason": error}
                ) from None
            status = response.status
            if 200 <= status < 300:
                return self._decode(response.body, path)
            if status in (401, 403):
                raise CrmAuthError(
                    gettext(
                        "%(provider)s rejected the access token (HTTP %(status)s). Enter a valid token "
                        "with read access to deals, owners, pipelines and activities."
                    )
                    % {"provider": self.provider_name, "status": status},
                    status=status,
                )
            if status != 429 and status < 500:
                raise CrmError(
                    gettext("%(provider)s answered HTTP %(status)s for %(path)s: %(detail)s")
                    % {
                        "provider": self.provider_name,
                        "status": status,
                        "path": path,
                        "detail": _error_detail(response.body, status),
                    },
                    status=status,
                )
            wait = _retry_wait(response.headers.get("retry-after"), attempt)
            if attempt > MAX_RETRIES or wait > MAX_RETRY_WAIT_SECONDS:
                raise CrmError(
                    gettext(
                        "%(provider)s answered HTTP %(status)s for %(path)s %(attempts)s times; "
                        "the sync stopped and tries again at its next run."
                    )
                    % {"provider": self.provider_name, "status": status, "path": path, "attempts": attempt},
                    status=status,
                )
            logger.warning(
                "CRM request retried provider=%s status=%s path=%s attempt=%s wait_seconds=%.1f",
                self.provider_name,
                status,
                path,
                attempt,
                wait,
            )
            self.retry_waits.append(wait)
            self.sleep(wait)

    def _decode(self, payload: bytes, path: str) -> dict:
        try:
            decoded = json.loads(payload or b"{}")
        except ValueError:
            raise CrmError(
                gettext("%(provider)s answered %(path)s with a body that is not JSON.")
                % {"provider": self.provider_name, "path": path}
            ) from None
        if not isinstance(decoded, dict):
            raise CrmError(
                gettext("%(provider)s answered %(path)s with JSON that is not an object.")
                % {"provider": self.provider_name, "path": path}
            )
        return decoded


def _retry_wait(retry_after: str | None, attempt: int) -> float:
    """Return the seconds to wait: Retry-After (seconds or an HTTP date), else exponential backoff."""
    if retry_after:
        retry_after = retry_after.strip()
        if retry_after.isdigit():
            return float(retry_after)
        try:
            moment = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            return max(0.0, (moment - timezone.now()).total_seconds())
    return BACKOFF_SECONDS * 2 ** (attempt - 1)


def _error_detail(body: bytes, status: int) -> str:
    """Return the CRM's own error message from a JSON error body, shortened, or the status code."""
    try:
        decoded = json.loads(body or b"{}")
    except ValueError:
        return f"HTTP {status}"
    if isinstance(decoded, dict):
        message = decoded.get("message") or decoded.get("error") or decoded.get("error_info")
        if isinstance(message, str) and message:
            return message[:300]
    return f"HTTP {status}"
