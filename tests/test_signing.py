"""The signed tokens of the digest's links (jobs/signing.py), without a server.

The three "previous release" tokens below were made by the hand-written HMAC signer this
release replaced, with ``PREVIOUS_KEY``; digests already sent carry tokens like them, and
they must keep working until that compatibility is removed.
"""

from __future__ import annotations

import base64
import string

import pytest

from core.settings import load_settings
from core.store import Store
from core.subscribers import add_subscriber, get_subscriber, remove_subscriber
from index.taxonomy import load_taxonomy
from jobs.feedback_links import read_token as read_feedback
from jobs.shortlist_links import read_token as read_shortlist
from jobs.signing import read_values, sign_values
from jobs.unsubscribe_links import make_unsubscribe_token, unsubscribe_with_token

PREVIOUS_KEY = "an-old-release-key-of-at-least-32-bytes"
PREVIOUS = {
    "unsubscribe": "v1.YW5hQGV4YW1wbGUub3Jn.JIpEzYLYpn2XBwignFz6S7ciqYbXqE2YSYzOtM8eofo",
    "feedback": "f1.WyIyNTA0LjAxMjM0IiwiaGVhbHRoIiwiZGlhZ25vc2lzX3N1cHBvcnQiLDFd."
    "YQ14Jh21fLGaMnmH6fFPyf5hkheKV0CNyDHhDJSW4h0",
    "shortlist": "s1.WyIyNTA0LjAxMjM0IiwiaGVhbHRoIiwiZGlhZ25vc2lzX3N1cHBvcnQiLCJzdWI6MWEyYjNjN"
    "GQ1ZSJd.ccKhdKTunbHfawep_lJKgqE9Yq5y6A2arSbVo8G3GMk",
}
ALPHABET = string.ascii_letters + string.digits + "-_"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("VEILLE_SECRET_KEY", PREVIOUS_KEY)
    return load_settings()


def _one_character_changes(token: str):
    """Every token that differs from ``token`` in exactly one character of the base64
    alphabet (the last character of a signature has spare bits: all of its spellings)."""
    for i, kept in enumerate(token):
        for ch in ALPHABET:
            if ch != kept and kept != ".":
                yield token[:i] + ch + token[i + 1 :]


def test_values_come_back_only_for_their_purpose(keyed) -> None:
    values = ["2504.01234", "health", "diagnosis_support", 1]
    token = sign_values(keyed, None, "feedback", values)
    assert read_values(keyed, None, "feedback", token) == values
    assert read_values(keyed, None, "feedback", f"  {token}\n") == values
    assert read_values(keyed, None, "shortlist", token) is None
    assert read_values(keyed, None, "unsubscribe", token) is None
    for junk in ("", "garbage", "a.b", "a.b.c", token + "x" * 3000, None, 42):
        assert read_values(keyed, None, "feedback", junk) is None
    # another key: refused
    other = load_settings(secret_key="another-key-of-at-least-thirty-two-bytes")
    assert read_values(other, None, "feedback", token) is None


def test_a_token_with_any_one_character_changed_is_refused(keyed) -> None:
    token = make_unsubscribe_token(keyed, "Ana@Example.org ")
    assert read_values(keyed, None, "unsubscribe", token) is not None
    changed = list(_one_character_changes(token))
    assert len(changed) > 60 * len(token) - 200
    assert all(read_values(keyed, None, "unsubscribe", t) is None for t in changed)


def test_links_of_the_previous_release_are_still_honoured(keyed) -> None:
    """Read, never made: what the last release mailed keeps working."""
    assert read_values(keyed, None, "unsubscribe", PREVIOUS["unsubscribe"]) == ["ana@example.org"]
    link = read_feedback(keyed, None, PREVIOUS["feedback"])
    assert (link.document, link.sector, link.use_case, link.fits) == (
        "2504.01234",
        "health",
        "diagnosis_support",
        True,
    )
    add = read_shortlist(keyed, None, PREVIOUS["shortlist"])
    assert (add.target, add.reader) == ("health/diagnosis_support", "sub:1a2b3c4d5e")
    # each only for its own purpose, and never altered
    assert read_values(keyed, None, "feedback", PREVIOUS["shortlist"]) is None
    assert read_values(keyed, None, "shortlist", "s1" + PREVIOUS["feedback"][2:]) is None
    for purpose, token in PREVIOUS.items():
        assert all(
            read_values(keyed, None, purpose, t) is None for t in _one_character_changes(token)
        )
    # new tokens are of the new kind
    assert not make_unsubscribe_token(keyed, "ana@example.org").startswith("v1.")


def test_unsubscribing_through_a_previous_release_link(keyed) -> None:
    store = Store.from_settings(keyed)
    try:
        add_subscriber(
            store, "ana@example.org", sectors="health", consent=True, taxonomy=load_taxonomy(keyed)
        )
        with pytest.raises(ValueError, match="invalid or has been altered"):
            unsubscribe_with_token(store, keyed, PREVIOUS["unsubscribe"][:-3] + "abc")
        assert get_subscriber(store, "ana@example.org").unsubscribed is None
        assert unsubscribe_with_token(store, keyed, PREVIOUS["unsubscribe"]) == "ana@example.org"
        assert get_subscriber(store, "ana@example.org").unsubscribed is not None
    finally:
        store.close()


def test_an_unsubscribe_link_does_not_carry_the_address(keyed) -> None:
    """Tokens are signed, not encrypted: what a link carries must not reveal who it is for."""
    store = Store.from_settings(keyed)
    try:
        taxonomy = load_taxonomy(keyed)
        for email in ("ana@example.org", "bo@example.org"):
            add_subscriber(store, email, sectors="health", consent=True, taxonomy=taxonomy)
        token = make_unsubscribe_token(keyed, "Ana@Example.org", store=store)
        payload = token.split(".")[0]
        readable = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        assert "ana" not in readable.lower() and "example" not in readable
        # the reference depends on the key: another key gives another one
        other = load_settings(secret_key="another-key-of-at-least-thirty-two-bytes")
        assert read_values(other, None, "unsubscribe", token) is None
        assert token.split(".")[0] != make_unsubscribe_token(other, "ana@example.org").split(".")[0]

        assert unsubscribe_with_token(store, keyed, token) == "ana@example.org"
        assert get_subscriber(store, "ana@example.org").unsubscribed is not None
        assert get_subscriber(store, "bo@example.org").unsubscribed is None
        # once erased, the old link still answers, and changes nothing
        assert remove_subscriber(store, "ana@example.org")
        assert unsubscribe_with_token(store, keyed, token) is None
        assert get_subscriber(store, "bo@example.org").unsubscribed is None
    finally:
        store.close()
