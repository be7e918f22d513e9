"""The signed tokens of the links Veille emails (unsubscribe, feedback, shortlist), and their key.

A token is itsdangerous's URL-safe serializer output: the values as compact JSON, then an
HMAC-SHA256 signature, with a salt per purpose, so a token made for one kind of link never
passes for another. Tokens do not expire: an unsubscribe link has to work in an old email,
and the feedback and shortlist links never had a deadline.

The key is ``VEILLE_SECRET_KEY`` when set; otherwise a random key generated once and kept in
the database (never in a file of the repository), so links keep working across restarts.

Links signed by the release before this one (``v1.`` / ``f1.`` / ``s1.`` tokens, whose HMAC
was written by hand) are still read, never made, so the digests already in inboxes keep
working: see :func:`_read_previous`, to be removed once those emails are old.

    token = sign_values(settings, store, "feedback", ["2504.01234", "health", "", 1])
    read_values(settings, store, "feedback", token)  # the list, or None
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Literal

import sqlalchemy as sa
from itsdangerous import BadData, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_decode, base64_encode, want_bytes

from core.settings import Settings
from core.store import Store, meta

SECRET_META = "digest:secret_key"
MAX_TOKEN = 3000  # longer query strings are refused before any work is done

Purpose = Literal["unsubscribe", "feedback", "shortlist"]


def signing_key(settings: Settings, store: Store | None) -> bytes:
    key = settings.secret_key.get_secret_value()
    if key:
        return key.encode("utf-8")
    if store is None:
        own = Store.from_settings(settings)
        try:
            return _stored_key(own)
        finally:
            own.close()
    return _stored_key(store)


def _stored_key(store: Store) -> bytes:
    """A key generated once and kept in the database (never in a file of the repository)."""
    found = store.get_meta(SECRET_META)
    if not found:
        try:
            with store.write() as conn:
                exists = conn.execute(sa.select(meta.c.value).where(meta.c.key == SECRET_META))
                if exists.first() is None:
                    conn.execute(
                        meta.insert().values(key=SECRET_META, value=secrets.token_urlsafe(32))
                    )
        except sa.exc.IntegrityError:  # another process generated it at the same moment
            pass
        found = store.get_meta(SECRET_META)
    if not found:
        raise RuntimeError(f"could not keep a signing key in {store.display_url}")
    return found.encode("utf-8")


class _ExactSigner(Signer):
    """A signer that accepts a signature only in the exact text it writes.

    itsdangerous compares the *decoded* signature, and base64 leaves two spare bits in the
    last character of a 32-byte signature: four spellings of that character decode to the
    same bytes. Such a token carries nothing new (what is signed is unchanged), but "a link
    with a character changed is refused" should hold for every character.
    """

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        # get_signature signs with the newest key only: Veille passes one key, never a list.
        return hmac.compare_digest(want_bytes(sig), self.get_signature(value))


def _serializer(key: bytes, purpose: Purpose) -> URLSafeSerializer:
    return URLSafeSerializer(
        key,
        salt=f"veille-{purpose}",
        signer=_ExactSigner,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )


def sign_values(settings: Settings, store: Store | None, purpose: Purpose, values: list) -> str:
    """A URL-safe token carrying ``values`` (JSON), signed for ``purpose``."""
    return _serializer(signing_key(settings, store), purpose).dumps(values)


def read_values(
    settings: Settings, store: Store | None, purpose: Purpose, token: object
) -> list | None:
    """The values of a token made by :func:`sign_values` for ``purpose``, or None when it is
    malformed, forged, altered or made for another purpose."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        return None
    token = token.strip()
    key = signing_key(settings, store)
    try:
        values = _serializer(key, purpose).loads(token)
    except BadData:
        values = _read_previous(key, purpose, token)
    return values if isinstance(values, list) else None


# The tokens of the release before: "prefix.payload.signature", both parts URL-safe base64
# without padding; the signature is HMAC-SHA256 under the key itself over "veille-<purpose>",
# a NUL byte and the payload's text (for unsubscribe links, the address it carries).
_PREVIOUS_PREFIX: dict[str, str] = {"unsubscribe": "v1", "feedback": "f1", "shortlist": "s1"}


def _read_previous(key: bytes, purpose: Purpose, token: str) -> list | None:
    """The values of a token signed by the previous release, or None. Read only, never made:
    delete this (and its test) once the last digest sent by that release is months old."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _PREVIOUS_PREFIX[purpose]:
        return None
    _, payload, signature = parts
    try:
        raw = base64_decode(payload)
    except BadData:
        return None
    if base64_encode(raw) != want_bytes(payload):  # one spelling per payload
        return None
    signed = raw if purpose == "unsubscribe" else want_bytes(payload)
    signer = _ExactSigner(key, key_derivation="none", digest_method=hashlib.sha256)
    if not signer.verify_signature(f"veille-{purpose}\x00".encode() + signed, signature):
        return None
    try:
        return [raw.decode("utf-8")] if purpose == "unsubscribe" else json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
