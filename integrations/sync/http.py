"""A small JSON-over-HTTPS client for the CRM APIs: timeouts, 429 handling with Retry-After, clear errors.

The standard library's urllib is enough for the few JSON GET and POST requests the sync
sends, so the project needs no HTTP client package for it.
"""

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from django.utils import timezone
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

# Seconds to wait for the connection and for each read of the response.
REQUEST_TIMEOUT_SECONDS = 30
# A 429 or 5xx response is retried this many times before the run fails.
MAX_RETRIES = 4
# Waits longer than this (a Retry-After of an hour, say) end the run instead of blocking a worker.
MAX_RETRY_WAIT_SECONDS = 120
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
        not JSON. The error message never contains the token.
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
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                return self._decode(payload, path)
            except urllib.error.HTTPError as error:
                status = error.code
                retry_after = error.headers.get("Retry-After")
                detail = _error_detail(error)
                error.close()
                if status in (401, 403):
                    raise CrmAuthError(
                        gettext(
                            "%(provider)s rejected the access token (HTTP %(status)s). Enter a valid token "
                            "with read access to deals, owners, pipelines and activities."
                        )
                        % {"provider": self.provider_name, "status": status},
                        status=status,
                    ) from None
                if status != 429 and status < 500:
                    raise CrmError(
                        gettext("%(provider)s answered HTTP %(status)s for %(path)s: %(detail)s")
                        % {"provider": self.provider_name, "status": status, "path": path, "detail": detail},
                        status=status,
                    ) from None
                wait = _retry_wait(retry_after, attempt)
                if attempt > MAX_RETRIES or wait > MAX_RETRY_WAIT_SECONDS:
                    raise CrmError(
                        gettext(
                            "%(provider)s answered HTTP %(status)s for %(path)s %(attempts)s times; "
                            "the sync stopped and tries again at its next run."
                        )
                        % {"provider": self.provider_name, "status": status, "path": path, "attempts": attempt},
                        status=status,
                    ) from None
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
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                reason = getattr(error, "reason", error)
                raise CrmError(
                    gettext("%(provider)s could not be reached at %(url)s: %(reason)s. Check the API address.")
                    % {"provider": self.provider_name, "url": self.base_url, "reason": reason}
                ) from None

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


def _error_detail(error: urllib.error.HTTPError) -> str:
    """Return the CRM's own error message from a JSON error body, shortened, or the HTTP reason."""
    try:
        body = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return str(error.reason)
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("error_info")
        if isinstance(message, str) and message:
            return message[:300]
    return str(error.reason)
