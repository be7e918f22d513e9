"""API keys for the analyst HTTP API: created once, shown once, stored hashed.

A key reads ``vk_<8 chars>_<43 chars>``. The short part is its public handle (shown by
``veille api-keys list``); the store keeps only the SHA-256 of the whole key. A key is
random (256 bits), so a plain hash cannot be reversed by guessing, and checking one costs a
single indexed lookup. A revoked key stays listed, marked revoked, and never works again.

Example::

    created = create_key(store, "notebook", read_only=True)
    created.secret            # 'vk_Ab3dE9xZ_...' shown to the user once
    check_key(store, created.secret).name   # 'notebook'
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from core.models import as_utc, naive_utc
from core.schema import api_keys
from core.store import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,79}$")
_KEY = re.compile(r"^vk_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    handle: str
    read_only: bool
    created: datetime
    revoked: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str  # the only time the full key exists outside the caller's hands


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _row(row: sa.Row) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        handle=row.handle,
        read_only=bool(row.read_only),
        created=as_utc(row.created),
        revoked=as_utc(row.revoked) if row.revoked else None,
    )


def create_key(
    store: Store, name: str, *, read_only: bool = False, now: datetime | None = None
) -> CreatedKey:
    """A new key named ``name``; ValueError names a bad or already used name."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValueError(
            f"bad key name {name!r}: 1-80 letters, digits, spaces or . _ @ -, "
            "starting with a letter or digit"
        )
    handle = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    secret = f"vk_{handle}_{secrets.token_urlsafe(32)}"
    created = naive_utc(now or datetime.now(UTC))
    with store.write() as conn:
        taken = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.name == name)).first()
        if taken:
            raise ValueError(f"an API key named {name!r} exists already; pick another name")
        key_id = conn.execute(
            api_keys.insert().values(
                name=name,
                handle=handle,
                key_hash=_hash(secret),
                read_only=read_only,
                created=created,
                revoked=None,
            )
        ).inserted_primary_key[0]
    key = ApiKey(int(key_id), name, handle, read_only, as_utc(created), None)
    return CreatedKey(key, secret)


def list_keys(store: Store) -> list[ApiKey]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.id)).all()
    return [_row(r) for r in rows]


def revoke_key(store: Store, name_or_handle: str, *, now: datetime | None = None) -> ApiKey:
    """Revoke a key by name or handle; KeyError when there is none. Revoking twice is fine."""
    wanted = (name_or_handle or "").strip()
    when = naive_utc(now or datetime.now(UTC))
    with store.write() as conn:
        row = conn.execute(
            sa.select(api_keys).where(
                sa.or_(api_keys.c.name == wanted, api_keys.c.handle == wanted)
            )
        ).first()
        if row is None:
            raise KeyError(f"no API key named {wanted!r} (see `veille api-keys list`)")
        if row.revoked is None:
            conn.execute(api_keys.update().where(api_keys.c.id == row.id).values(revoked=when))
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == row.id)).one()
    return _row(row)


def check_key(store: Store, secret: str) -> ApiKey | None:
    """The active key ``secret`` belongs to, or None (unknown, malformed or revoked)."""
    match = _KEY.match(secret or "")
    if not match:
        return None
    digest = _hash(secret)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.handle == match.group(1))).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked is not None:
        return None
    return _row(row)
