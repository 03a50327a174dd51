"""Reading new messages from an IMAP mailbox (imaplib) and parsing the headers that capture needs.

The poller selects the folder read-only, finds UIDs above the last one read with
`UID SEARCH UID <n>:*`, and fetches only the header fields (`BODY.PEEK[HEADER.FIELDS …]`),
so message bodies never leave the mail server and nothing is marked as read. A changed
UIDVALIDITY means the server renumbered the folder: reading restarts from UID 1, and
Message-IDs keep already captured messages from doubling.
"""

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import imaplib
import re
import socket
import ssl
from dataclasses import dataclass

from django.utils.translation import gettext as _

from integrations.webhooks import outbound

MAX_MESSAGES_PER_POLL = 500
FETCH_BATCH_SIZE = 100
TIMEOUT_SECONDS = 30
HEADER_FIELDS = "MESSAGE-ID FROM TO CC DATE SUBJECT"


class MailboxError(Exception):
    """Connecting, logging in or reading failed; the message is shown on the mailbox page."""


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    sent_at: dt.datetime


@dataclass(frozen=True)
class FetchedBatch:
    messages: list[ParsedMessage]
    uid_validity: int | None
    last_uid: int


class _PinnedIMAP4(imaplib.IMAP4):
    """IMAP4 that connects to an address checked by `outbound.url_resolve` instead of resolving the host again."""

    def __init__(self, host, port, *, address: str, timeout: float):
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self._address, self.port), timeout)


class _PinnedIMAP4SSL(imaplib.IMAP4_SSL):
    def __init__(self, host, port, *, address: str, timeout: float):
        self._address = address
        super().__init__(host, port, ssl_context=ssl.create_default_context(), timeout=timeout)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self._address, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def message_parse(raw_headers: bytes) -> ParsedMessage | None:
    """Parse the header block of one message; return None when it has no sender."""
    message = email.message_from_bytes(raw_headers, policy=email.policy.default)
    sender_list = email.utils.getaddresses([str(message.get("From", ""))])
    sender = sender_list[0][1].strip().lower() if sender_list and sender_list[0][1] else ""
    if "@" not in sender:
        return None

    recipients = [
        address.strip().lower()
        for _name, address in email.utils.getaddresses([str(message.get("To", "")), str(message.get("Cc", ""))])
        if "@" in address
    ]
    message_id = str(message.get("Message-ID", "")).strip().strip("<>").strip()
    try:
        sent_at = email.utils.parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError):
        sent_at = None
    if sent_at is not None and sent_at.tzinfo is None:
        # RFC 5322 dates without a zone ("-0000") are UTC.
        sent_at = sent_at.replace(tzinfo=dt.UTC)
    subject = re.sub(r"\s+", " ", str(message.get("Subject", ""))).strip()

    if not message_id:
        # NOTE: a message without Message-ID is keyed by a digest of its headers, so an identical copy in another folder would count once.
        message_id = "sha256:" + hashlib.sha256(raw_headers).hexdigest()
    return ParsedMessage(
        message_id=message_id,
        sender=sender,
        recipients=sorted(set(recipients)),
        subject=subject,
        sent_at=(sent_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
    )


def _check(status: str, data, what: str) -> None:
    if status != "OK":
        detail = data[0].decode("utf-8", errors="replace") if data and isinstance(data[0], bytes) else str(data)
        raise MailboxError(_("The IMAP server rejected %(command)s: %(detail)s") % {"command": what, "detail": detail})


def _connect(mailbox) -> imaplib.IMAP4:
    try:
        address = outbound.url_resolve(mailbox.host, mailbox.port)
    except (outbound.OutboundURLError, outbound.OutboundRequestError) as error:
        raise MailboxError(str(error)) from None
    connection_class = _PinnedIMAP4SSL if mailbox.use_ssl else _PinnedIMAP4
    try:
        return connection_class(mailbox.host, mailbox.port, address=address, timeout=TIMEOUT_SECONDS)
    except (OSError, imaplib.IMAP4.error) as error:
        raise MailboxError(
            _("Could not connect to %(host)s:%(port)s: %(error)s") % {"host": mailbox.host, "port": mailbox.port, "error": error}
        ) from None


def messages_fetch(mailbox) -> FetchedBatch:
    """Fetch up to MAX_MESSAGES_PER_POLL messages after `mailbox.last_uid`; raises MailboxError on any failure."""
    connection = _connect(mailbox)
    try:
        try:
            connection.login(mailbox.username, mailbox.password)
        except imaplib.IMAP4.error as error:
            raise MailboxError(_("Login to the IMAP server failed: %(error)s") % {"error": error}) from None
        status, data = connection.select(_quoted(mailbox.folder), readonly=True)
        _check(status, data, "SELECT")
        uid_validity = _uid_validity(connection)
        last_uid = mailbox.last_uid if uid_validity == mailbox.uid_validity else 0

        status, data = connection.uid("SEARCH", None, f"UID {last_uid + 1}:*")
        _check(status, data, "UID SEARCH")
        # "n:*" also returns the highest UID when it is below n, so filter again.
        uids = sorted(int(uid) for uid in (data[0] or b"").split() if int(uid) > last_uid)[:MAX_MESSAGES_PER_POLL]

        messages = []
        for start in range(0, len(uids), FETCH_BATCH_SIZE):
            batch = uids[start : start + FETCH_BATCH_SIZE]
            status, data = connection.uid(
                "FETCH", ",".join(str(uid) for uid in batch), f"(UID BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])"
            )
            _check(status, data, "UID FETCH")
            for item in data:
                if isinstance(item, tuple) and len(item) == 2:
                    parsed = message_parse(item[1])
                    if parsed is not None:
                        messages.append(parsed)
        try:
            connection.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
        return FetchedBatch(messages=messages, uid_validity=uid_validity, last_uid=uids[-1] if uids else last_uid)
    except (OSError, imaplib.IMAP4.error) as error:
        raise MailboxError(_("Reading the mailbox failed: %(error)s") % {"error": error}) from None
    finally:
        try:
            connection.shutdown()
        except OSError:
            pass


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_validity(connection: imaplib.IMAP4) -> int | None:
    _name, values = connection.response("UIDVALIDITY")
    try:
        return int(values[0]) if values and values[0] else None
    except (TypeError, ValueError):
        return None
