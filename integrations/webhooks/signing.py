"""HMAC-SHA256 signatures of webhook bodies.

Header `SPM-Signature: t=<unix seconds>,v1=<hex digest>`, where the digest is
HMAC-SHA256 with the subscription's secret over the bytes `<t>.<raw body>`. The receiver
recomputes it, compares in constant time and rejects timestamps older than a few minutes,
which stops a captured request from being replayed later.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "SPM-Signature"
SECRET_PREFIX = "whsec_"
# A receiver should reject a signature whose timestamp is further than this from its clock.
DEFAULT_TOLERANCE_SECONDS = 300


def secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature_compute(*, secret: str, timestamp: int, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature_compute(secret=secret, timestamp=timestamp, body=body)}"


def signature_verify(
    *, secret: str, header: str, body: bytes, now: int, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """Return True when `header` signs `body` with `secret` and its timestamp is within the tolerance of `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature_compute(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, fields.get("v1", ""))
