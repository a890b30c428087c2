"""HTTP Basic credential checks for callback routes, free of any web framework.

Bandwidth authenticates its callbacks with HTTP Basic only (no signature).  Its documented
flow may send a first request without credentials and expects ``401`` with a
``WWW-Authenticate`` challenge before it retries with them, so a missing header is an
ordinary, expected event.

Promises:
- every malformed header (not Basic, bad base64, no colon, not UTF-8, empty) raises
  ``CredentialError`` and nothing else;
- credentials are compared in constant time on bytes, against every accepted pair (several
  are valid at once during a rotation), without short-circuiting on the first match.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable


class CredentialError(Exception):
    """The request's credentials are missing or wrong.  ``missing`` tells the two apart."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def parse_basic(header: str | None) -> tuple[bytes, bytes]:
    """Return (username, password) as UTF-8 bytes from an ``Authorization`` header value."""
    if not header:
        raise CredentialError("no Authorization header", missing=True)
    try:
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise CredentialError("Authorization is not HTTP Basic")
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True)
        decoded.decode("utf-8")  # RFC 7617: the credentials are UTF-8 text
        username, sep, password = decoded.partition(b":")
        if not sep:
            raise CredentialError("Basic credentials have no ':'")
    except CredentialError:
        raise
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise CredentialError(f"malformed Basic credentials: {type(exc).__name__}") from None
    return username, password


def verify_basic(header: str | None, accepted: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Check ``header`` against every accepted (username, password) pair.

    Returns the matching username; raises ``CredentialError`` otherwise.
    """
    username, password = parse_basic(header)
    matched = False
    for good_user, good_password in accepted:
        # Both compares always run, so timing does not tell which half was wrong.
        user_ok = hmac.compare_digest(username, good_user)
        password_ok = hmac.compare_digest(password, good_password)
        matched |= user_ok & password_ok
    if not matched:
        raise CredentialError("wrong username or password")
    return username


def encode_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Configured (str, str) pairs as the bytes ``verify_basic`` compares."""
    return [(user.encode("utf-8"), password.encode("utf-8")) for user, password in pairs]


def challenge(realm: str) -> str:
    """The ``WWW-Authenticate`` value Bandwidth waits for before sending credentials."""
    safe_realm = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{safe_realm}", charset="UTF-8"'
