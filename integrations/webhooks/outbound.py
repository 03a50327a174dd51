"""Outbound HTTP to URLs that organization admins and reps enter: webhook targets and calendar feeds.

A URL typed into a form must not reach the machine's own services or the private network
(cloud metadata endpoints, the database, Redis). So every request resolves the host once
and rejects private, loopback, link-local and reserved addresses, unless the setting
WEBHOOKS_ALLOW_LOOPBACK permits them (development and tests). It then connects to exactly
the address it checked, so a second DNS answer cannot point the connection elsewhere.
Redirects are not followed, and the response body is cut at a maximum size.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.utils.text import get_text_list
from django.utils.translation import gettext as _

DEFAULT_TIMEOUT_SECONDS = 10
REDIRECT_STATUS = {301, 302, 303, 307, 308}


class OutboundURLError(ValueError):
    """A URL that SPM does not connect to; the message states the reason and is shown to the user."""


class OutboundRequestError(OSError):
    """A request that failed before a response arrived (DNS, connect, TLS, timeout, oversize body)."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    duration_ms: int


def loopback_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_LOOPBACK", False))


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def url_check(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> tuple[str, str, int, str]:
    """Check the form of `url` and return (scheme, host, port, path with query).

    Raises OutboundURLError for another scheme, a missing host, credentials in the URL
    or an invalid port. Does not resolve the host; `url_resolve` does.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise OutboundURLError(_("%(url)s is not a valid URL.") % {"url": url}) from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        # get_text_list joins with Django's translated "or", so German reads "http:// oder https://".
        prefixes = get_text_list([f"{s}://" for s in schemes])
        raise OutboundURLError(_("%(url)s must start with %(schemes)s.") % {"url": url, "schemes": prefixes})
    if not parts.hostname:
        raise OutboundURLError(_("%(url)s has no host name.") % {"url": url})
    if parts.username or parts.password:
        raise OutboundURLError(_("%(url)s contains a user name or password; remove them from the URL.") % {"url": url})
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port, path


def url_resolve(host: str, port: int) -> str:
    """Resolve `host` and return the address to connect to.

    Raises OutboundURLError when any address of the host is private, loopback,
    link-local or reserved and WEBHOOKS_ALLOW_LOOPBACK is off, and
    OutboundRequestError when the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OutboundRequestError(
            _("The host name %(host)s could not be resolved (%(error)s).")
            % {"host": host, "error": error.strerror or error}
        ) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not loopback_allowed():
        blocked = [str(address) for address in addresses if not _is_public(address)]
        if blocked:
            raise OutboundURLError(
                _("%(host)s resolves to the private or loopback address %(address)s; only public addresses are allowed.")
                % {"host": host, "address": blocked[0]}
            )
    return str(addresses[0])


def url_validate(url: str) -> str:
    """Check `url` for a form field: scheme, host and, when the name resolves, a public address.

    A name that does not resolve yet is accepted, because the target may go live later;
    each request checks the address again. Returns the URL stripped of surrounding blanks.
    """
    _scheme, host, port, _path = url_check(url)
    try:
        url_resolve(host, port)
    except OutboundRequestError:
        pass
    return url.strip()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the pinned address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _read_limited(response: http.client.HTTPResponse, limit: int, *, deadline: float) -> bytes:
    # A server that trickles bytes would pass the per-read timeout forever, so the whole body has a deadline too.
    chunks = []
    size = 0
    while size < limit:
        chunk = response.read(min(16 * 1024, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError
    return b"".join(chunks)


def http_request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = 64 * 1024,
    fail_on_oversize: bool = False,
    schemes: tuple[str, ...] = ("http", "https"),
) -> OutboundResponse:
    """Send one request to `url` and return its status, headers and at most `max_bytes` of body.

    `timeout` (seconds) bounds connecting, each read and reading the whole body. With `fail_on_oversize`
    a longer body raises OutboundRequestError; otherwise it is cut. Raises
    OutboundURLError for a rejected URL (including a scheme outside `schemes`) and
    OutboundRequestError for network failures.
    """
    scheme, host, port, path = url_check(url, schemes=schemes)
    address = url_resolve(host, port)
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=address, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = _read_limited(response, max_bytes + 1, deadline=started + timeout)
        status = response.status
        response_headers = {name.lower(): value for name, value in response.getheaders()}
    except TimeoutError:
        raise OutboundRequestError(_("No response within %(seconds)s seconds.") % {"seconds": timeout}) from None
    except ssl.SSLError as error:
        raise OutboundRequestError(_("TLS failed: %(error)s") % {"error": error.reason or error}) from None
    except (OSError, http.client.HTTPException) as error:
        raise OutboundRequestError(_("Connection failed: %(error)s") % {"error": error}) from None
    finally:
        connection.close()
    if len(data) > max_bytes:
        if fail_on_oversize:
            raise OutboundRequestError(
                _("The response is larger than the maximum of %(size)s bytes.") % {"size": max_bytes}
            )
        data = data[:max_bytes]
    return OutboundResponse(
        status=status, body=data, headers=response_headers, duration_ms=int((time.monotonic() - started) * 1000)
    )


def http_get(url: str, *, max_redirects: int = 3, **options) -> OutboundResponse:
    """GET `url`, following up to `max_redirects` redirects; each target is checked like the first URL.

    Takes the options of `http_request`. Raises OutboundRequestError when a redirect has no
    Location or the chain is longer than `max_redirects`.
    """
    for _hop in range(max_redirects + 1):
        response = http_request("GET", url, **options)
        if response.status not in REDIRECT_STATUS:
            return response
        location = response.headers.get("location")
        if not location:
            raise OutboundRequestError(
                _("The server returned status %(status)s without a Location header.") % {"status": response.status}
            )
        url = urljoin(url, location)
    raise OutboundRequestError(
        _("More than %(count)s redirects; use the final address of the calendar.") % {"count": max_redirects}
    )
