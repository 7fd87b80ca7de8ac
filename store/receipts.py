"""Receipt codes (回执码) and tracking keys (评价码): drawn at random, never derived from anything public.

- A **receipt code** (10 digits of Crockford's base 32, 50 bits) lets anyone read a report's plain
  status (``/track``). It is drawn at random and checked unique against the store (a unique index
  backs it), so it cannot be computed from the source and external id of an integration.
- A **tracking key** lets only the reporter act on the report (rate it). It is shown once, in the
  answer to the report; the store and the workflow keep only its sha256. It is derived from a random
  nonce with the server secret (HMAC-SHA256, 80 bits shown), so the delivery activity, which holds
  the secret, can put it into the reporter's notices without the key being stored anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from store import queries
from store.db import Database
from workflows.types import ReceiptGrant

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_DIGITS = 10
#: Characters of a tracking key shown to the reporter (5 bits each: 80 bits).
KEY_DIGITS = 16


def is_receipt_code(code: str) -> bool:
    """Whether ``code`` has the form of a receipt code (10 Crockford base-32 digits)."""
    return len(code) == RECEIPT_DIGITS and all(c in _CROCKFORD for c in code)


def random_code(digits: int = RECEIPT_DIGITS) -> str:
    """``digits`` random Crockford base-32 digits."""
    return "".join(secrets.choice(_CROCKFORD) for _ in range(digits))


async def new_receipt_code(db: Database) -> str:
    """A random receipt code no event in the store has yet."""
    while True:
        code = random_code()
        if await queries.event_by_receipt(db, code) is None:
            return code


def normalise_key(key: str) -> str:
    """A key as typed or taken from a link: upper case, without spaces or dashes, at most 64 characters."""
    return key.replace("-", "").replace(" ", "").upper()[:64]


def key_hash(key: str) -> str:
    """The sha256 (hex) of a tracking key, as stored."""
    return hashlib.sha256(normalise_key(key).encode()).hexdigest()


def tracking_key(secret: str, nonce: str) -> str:
    """The tracking key derived from ``nonce`` with the server secret."""
    digest = hmac.new(secret.encode(), f"tracking-key\x00{nonce}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:10], "big")
    chars = []
    for _ in range(KEY_DIGITS):
        number, digit = divmod(number, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(chars)


def shown_key(key: str) -> str:
    """A key in groups of four, as the reporter reads it (``ABCD-EFGH-JKMN-PQRS``)."""
    return "-".join(key[i:i + 4] for i in range(0, len(key), 4))


def key_matches(given: str, stored_hash: str) -> bool:
    """Whether ``given`` is the key whose hash is ``stored_hash`` (constant time; never for an empty hash)."""
    return bool(stored_hash) and hmac.compare_digest(key_hash(given), stored_hash)


@dataclass
class Grant:
    """A receipt code and a tracking key for a new report (the key is for the reporter's eyes only)."""

    receipt_code: str
    tracking_key: str
    tracking_key_hash: str
    tracking_nonce: str

    def for_workflow(self) -> ReceiptGrant:
        """What the workflow keeps: no key, only its hash and nonce."""
        return ReceiptGrant(self.receipt_code, self.tracking_key_hash, self.tracking_nonce)


async def new_grant(db: Database, secret: str) -> Grant:
    """A unique random receipt code and a fresh tracking key."""
    nonce = secrets.token_urlsafe(16)
    key = tracking_key(secret, nonce)
    return Grant(await new_receipt_code(db), key, key_hash(key), nonce)
