"""The key that signs the links Veille emails (unsubscribe, feedback, shortlist), and the
signed tokens of the feedback and shortlist links.

``VEILLE_SECRET_KEY`` when set; otherwise a random key generated once and kept in the
database (never in a file of the repository), so links keep working across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

import sqlalchemy as sa

from core.settings import Settings
from core.store import Store

SECRET_META = "digest:secret_key"


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
            store.update_meta(SECRET_META, lambda held: None if held else secrets.token_urlsafe(32))
        except sa.exc.IntegrityError:  # another process generated it at the same moment
            pass
        found = store.get_meta(SECRET_META)
    if not found:
        raise RuntimeError(f"could not keep a signing key in {store.display_url}")
    return found.encode("utf-8")


def b64(data: bytes) -> str:
    """URL-safe base64 without padding, as the signed links carry it."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    """The bytes of :func:`b64` text (ValueError when it is not base64)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_values(
    settings: Settings, store: Store | None, prefix: str, purpose: bytes, values: list
) -> str:
    """A token ``prefix.payload.signature`` carrying ``values`` (JSON), signed with HMAC-SHA256
    over ``purpose``: tokens of one purpose never pass for another's."""
    payload = b64(json.dumps(values, separators=(",", ":")).encode("utf-8"))
    return f"{prefix}.{payload}.{_mac(signing_key(settings, store), purpose, payload)}"


def read_values(
    settings: Settings, store: Store | None, token: str, prefix: str, purpose: bytes
) -> list | None:
    """The values of a token made by :func:`sign_values`, or None when it is malformed,
    forged, altered or of another purpose."""
    if not isinstance(token, str) or len(token) > 3000:
        return None
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != prefix:
        return None
    expected = _mac(signing_key(settings, store), purpose, parts[1])
    # Compare the token's text: base64's spare bits must not let an altered one through.
    if not hmac.compare_digest(parts[2].encode("ascii", "replace"), expected.encode("ascii")):
        return None
    try:
        values = json.loads(unb64(parts[1]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return values if isinstance(values, list) else None


def _mac(key: bytes, purpose: bytes, payload: str) -> str:
    digest = hmac.new(key, purpose + b"\x00" + payload.encode("ascii"), hashlib.sha256)
    return b64(digest.digest())
