"""The weekly digest through a real SMTP server on 127.0.0.1 (aiosmtpd).

Real arXiv records (finance and health) are indexed and matched with the bundled model, so
personalisation is checked on real matches; a crawled item with hostile markup checks escaping.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import shutil
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from core.models import Document
from core.settings import ConfigError, load_settings
from core.store import Store
from core.subscribers import (
    add_subscriber,
    digest_sends,
    email_ref,
    export_subscriber,
    get_subscriber,
    subscribers,
)
from index.pipeline import index_and_match
from index.taxonomy import load_taxonomy
from jobs.cli import cli
from jobs.digest import build_digest, preview
from jobs.digest_delivery import send_digests
from jobs.mailer import SMTPMailer
from jobs.signing import read_values, sign_values
from jobs.unsubscribe_links import make_unsubscribe_token, unsubscribe_with_token
from tests.conftest import corpus_record

pytestmark = pytest.mark.slow

NOW = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)  # a Wednesday: ISO week 2026-W11
# Papers of tests/fixtures/corpus.jsonl (its hand-written [[roles]]), by arXiv id
RADIOLOGY_IMAGES, RADIOLOGY_REPORTS = "2503.99101", "2504.99102"
FRAUD, TRADING, CREDIT, STOCKS = "2504.99103", "2505.99104", "2505.99105", "2506.99106"
HEALTH = (RADIOLOGY_IMAGES, RADIOLOGY_REPORTS)  # disease classification; report errors
FINANCE = (FRAUD, TRADING, CREDIT, STOCKS)  # telecom fraud, trading, credit, stock prices
# (the matcher is sure of TRADING and CREDIT; FRAUD and STOCKS are the borderline ones it asks
# readers about in "Does this fit?")
HOSTILE_TITLE = (
    "<script>alert(1)</script> Graph neural networks stop card fraud "
    "<img src=x onerror=alert(1)> \x1b[2J\u202e"
)


class Collector:
    """aiosmtpd handler keeping every message; can refuse chosen recipients."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.refuse: set[str] = set()
        self.controller: Controller | None = None
        self.port = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.received if address in rcpt]

    def start(self, port: int) -> None:
        self.port = port
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp(monkeypatch):
    handler = Collector()
    port = _free_port()
    handler.start(port)
    monkeypatch.setenv("VEILLE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("VEILLE_SMTP_PORT", str(port))
    monkeypatch.setenv("VEILLE_SMTP_FROM", "Veille <digest@veille.example>")
    monkeypatch.setenv("VEILLE_PUBLIC_URL", "http://127.0.0.1:8501")
    monkeypatch.setenv("VEILLE_ALLOW_LOOPBACK_PUBLIC_URL", "true")  # links to this machine
    yield handler
    handler.stop()


def _record_doc(record_id: str, published: datetime) -> Document:
    rec = corpus_record(record_id)
    return Document(
        canonical_id=rec["id"],
        title=rec["title"],
        text=rec["abstract"],
        source="arxiv",
        url=f"https://arxiv.org/abs/{rec['id']}",
        published=published,
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, real_embedder):
    """A data directory with the documents indexed and matched, built once per module."""
    folder = tmp_path_factory.mktemp("digest-template")
    settings = load_settings(data_dir=folder)
    store = Store.from_settings(settings)
    day = NOW - timedelta(days=1)
    docs = {}
    for i, record_id in enumerate(HEALTH + FINANCE):
        docs[record_id] = _record_doc(record_id, day - timedelta(hours=3 * i))
    hostile = Document(
        canonical_id="news-hostile",
        title=HOSTILE_TITLE,
        text="Card payment fraud detection: a graph neural network flags fraudulent "
        "transactions and money laundering rings in bank transaction data.",
        kind="news",
        source="Example News",
        url="javascript:alert(1)",
        published=day,
    )
    store.upsert([*docs.values(), hostile])
    index_and_match(store, settings, embedder=real_embedder)
    store.close()
    return folder, {record_id: doc.title for record_id, doc in docs.items()}


@pytest.fixture
def world(smtp, indexed, isolated_settings):
    """Settings (SMTP on loopback), a copy of the indexed store, two subscribers."""
    template, titles = indexed
    shutil.copytree(template, isolated_settings)
    settings = load_settings()
    assert settings.data_dir == isolated_settings
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings)
    add_subscriber(store, "fin@example.com", sectors="finance", consent=True, taxonomy=taxonomy)
    add_subscriber(store, "med@example.com", sectors="health", consent=True, taxonomy=taxonomy)
    yield settings, store, titles
    store.close()


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    return text, html


def _link(html: str) -> str:
    found = re.search(r'href="(http://127\.0\.0\.1:8501/unsubscribe\?token=[^"]+)"', html)
    assert found, "no unsubscribe link in the HTML part"
    return found.group(1).replace("&amp;", "&")


def test_personalised_digest_both_parts_and_working_unsubscribe(world, smtp) -> None:
    settings, store, titles = world
    report = send_digests(store, settings, now=NOW)
    assert sorted(report.sent) == ["fin@example.com", "med@example.com"], report.summary()
    assert report.week == "2026-W11" and report.ok

    [fin] = smtp.to("fin@example.com")
    [med] = smtp.to("med@example.com")
    assert fin["To"] == "fin@example.com"
    assert fin["From"] == "Veille <digest@veille.example>"
    assert "2026-W11" in fin["Subject"] and "Financial services" in fin["Subject"]
    assert fin.get_content_type() == "multipart/alternative"
    fin_text, fin_html = _parts(fin)
    med_text, med_html = _parts(med)

    # a finance reader sees finance matches and no health ones, and the other way round
    # (emerging themes, after the sector sections, are the same for everyone)
    fin_own = fin_text.split("== What is trending ==")[0]
    med_own = med_text.split("== What is trending ==")[0]
    finance_seen = [titles[n] for n in FINANCE if titles[n] in fin_own]
    assert finance_seen, fin_text
    assert all(titles[n] not in fin_own for n in HEALTH)
    assert all(titles[n] not in fin_html.split("What is trending")[0] for n in HEALTH)
    health_seen = [titles[n] for n in HEALTH if titles[n] in med_own]
    assert health_seen, med_text
    assert all(titles[n] not in med_own for n in FINANCE)
    assert "== Financial services ==" in fin_own and "== Health ==" not in fin_own
    assert "Fits “" in fin_text and "https://arxiv.org/abs/" in fin_text

    # signed "does it fit?" links beside each item, in both parts; one records the answer
    from index.feedback import feedback_rows
    from jobs.feedback_links import record_from_token

    answers = re.findall(r'href="(http://127\.0\.0\.1:8501/feedback\?token=[^"]+)"', fin_html)
    assert answers and all(a in fin_text for a in answers)
    assert "Does it fit? Yes:" in fin_text
    answer = record_from_token(
        store, settings, unquote(parse_qs(urlsplit(answers[0]).query)["token"][0])
    )
    assert answer.sector == "finance" and answer.fits and answer.origin == "digest"
    assert [f.canonical_id for f in feedback_rows(store)] == [answer.canonical_id]
    for part in (fin_text, fin_html):
        assert "What is trending" in part and "Emerging themes" in part
        assert "http://127.0.0.1:8501" in part

    # accessible HTML: language, real headings, a title; no image without alt text
    assert '<html lang="en">' in fin_html
    assert "<h1" in fin_html and "<h2" in fin_html and "<h3" in fin_html
    assert "<title>" in fin_html and 'name="viewport"' in fin_html
    assert all("alt=" in img for img in re.findall(r"<img[^>]*>", fin_html))

    # the one-click unsubscribe link: in both parts and in the headers
    link = _link(fin_html)
    assert link in fin_text
    assert fin["List-Unsubscribe"] == f"<{link}>"
    assert fin["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unquote(parse_qs(urlsplit(link).query)["token"][0])

    # a forged token (someone else's address with fin's signature) is refused
    _address, signature = token.rsplit(".", 1)
    other = make_unsubscribe_token(settings, "med@example.com", store=store).rsplit(".", 1)[0]
    for forged in (f"{other}.{signature}", token[:-2] + "xx", "garbage", ""):
        with pytest.raises(ValueError, match="invalid or has been altered"):
            unsubscribe_with_token(store, settings, forged)
    assert unsubscribe_with_token(store, settings, token) == "fin@example.com"
    assert unsubscribe_with_token(store, settings, token) == "fin@example.com"  # idempotent

    # next week: only the health reader gets a digest
    smtp.received.clear()
    later = send_digests(store, settings, now=NOW + timedelta(days=7))
    assert later.sent == ["med@example.com"]
    assert smtp.to("fin@example.com") == []
    # the signing key was generated once and kept in the database, not in a file
    assert store.get_meta("digest:secret_key")


def test_crawled_markup_is_escaped_and_control_characters_stripped(world, smtp) -> None:
    settings, store, _ = world
    send_digests(store, settings, now=NOW, only=["fin@example.com"])
    [fin] = smtp.to("fin@example.com")
    text, html = _parts(fin)
    assert "Graph neural networks stop card fraud" in html, "the hostile item should match"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "javascript:" not in html.lower() and "javascript:" not in text.lower()
    assert "\x1b" not in text + html and "\u202e" not in text + html
    assert "<script>alert(1)</script> Graph neural networks stop card fraud" in text


def test_emerging_themes_say_if_new_how_long_they_grew_and_which_sectors(world) -> None:
    from index.themes import SectorTouch, Theme, summarise
    from jobs.digest_week import theme_line, week_context

    settings, store, _ = world
    new = Theme("vision-language-action models", [], 9, 0, 0.0, [], new=True)
    new.keywords = ["manipulation", "<i>grasping</i>"]
    growing = Theme(
        "<b>medical image segmentation</b>",
        [],
        12,
        4,
        3.1,
        [Document("p1", "Segmenting tumours \x1b[31mfast", "…", url="javascript:alert(1)")],
        weeks_running=3,
        recent_share=0.02,
        earlier_share=0.01,
        sectors=[SectorTouch("health", "diagnosis", "Diagnosis support", 4, "Health")],
    )
    for theme in (new, growing):
        theme.summary = summarise(theme)
    ctx = week_context(store, settings, now=NOW)
    ctx.themes = [theme_line(new), theme_line(growing)]
    sub = get_subscriber(store, "fin@example.com")
    digest = build_digest(store, settings, sub, now=NOW, context=ctx)
    themes_text = digest.text.split("== Emerging themes ==")[1]
    themes_html = digest.html.split("Emerging themes")[1]
    for part in (themes_text, themes_html):
        assert "new this period: 9 recent documents, none before" in part
        # a theme with nothing before has no ratio (the signed links are random
        # text, so the ratio is looked for as a word of its own)
        assert re.search(r"\bx0(\.0+)?\b", part) is None
        assert "3.1x the count expected" in part and "growing for 3 weeks" in part
        assert "Touches: Health › Diagnosis support (4 documents)" in part
    assert "&lt;b&gt;medical image segmentation&lt;/b&gt;" in themes_html
    # the name is followed by its keywords, escaped like the rest
    named = "vision-language-action models (manipulation, &lt;i&gt;grasping&lt;/i&gt;)"
    assert named in themes_html
    assert "vision-language-action models (manipulation, <i>grasping</i>)" in themes_text
    assert "javascript:" not in themes_html and "\x1b" not in themes_text


def test_what_is_trending_leaves_out_rises_of_one_or_two_documents(world) -> None:
    from index.trends import build_report
    from jobs.digest_week import week_context

    settings, store, _ = world
    starts = [NOW - timedelta(weeks=12 - i) for i in range(12)]
    totals = [100] * 12
    series = {
        "rnn": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],  # +200%, but 2 documents lately
        "gnn": [2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3],  # a steady rise: 6 documents lately
        "cnn": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],  # new, with a single document
    }
    names = {k: (k.upper(), None) for k in series}
    ctx = week_context(store, settings, now=NOW)
    ctx.techniques = build_report("technique", starts, series, totals, names).items
    ctx.use_cases = []
    sub = get_subscriber(store, "fin@example.com")
    digest = build_digest(store, settings, sub, now=NOW, context=ctx)
    assert [(t.name, t.detail) for t in digest.trending] == [
        ("GNN", "6 documents in the last two weeks; +50% over the window")
    ]


def test_a_use_case_learning_from_its_description_is_asked_about_in_the_digest(world) -> None:
    from jobs.digest_week import week_context
    from jobs.feedback_links import record_from_token

    settings, store, _ = world
    ctx = week_context(store, settings, now=NOW)
    digest = build_digest(store, settings, get_subscriber(store, "fin@example.com"), context=ctx)
    # Finance's use cases with fewer than five judged papers are scored by their description;
    # one question is about the paper likeliest to belong to one of them.
    [ask] = [a for a in ctx.asks["finance"] if " › " in a.sector]
    assert "still learning this use case from its description" in ask.detail
    section = digest.text.split("== Does this fit?")[1].split("== What is trending")[0]
    assert ask.title in section and ask.sector in section and ask.fits_url in section
    names = {uc.name: uc.key for uc in load_taxonomy(settings).sector("finance").use_cases}
    token = unquote(parse_qs(urlsplit(ask.fits_url).query)["token"][0])
    answer = record_from_token(store, settings, token)
    assert (answer.sector, answer.use_case, answer.fits) == (
        "finance",
        names[ask.sector.split(" › ")[1]],
        True,
    )


def test_each_innovation_counts_once_and_questions_show_the_threshold(world) -> None:
    from jobs.digest_week import week_context

    settings, store, _ = world
    subscriber = get_subscriber(store, "fin@example.com")
    digest = build_digest(
        store, settings, subscriber, context=week_context(store, settings, now=NOW)
    )
    shown = [i.doc for b in digest.sectors for u in b.use_cases for i in u.items]
    assert len(shown) > len(set(shown))  # some paper is listed under two finance use cases
    assert f": {len(set(shown))} new for" in digest.subject  # but counts once
    assert f"{len(set(shown))} new innovations" in digest.text
    # "No" under a use case is about that use case, not the whole sector
    from jobs.feedback_links import record_from_token

    block = digest.sectors[0].use_cases[0]
    token = unquote(parse_qs(urlsplit(block.items[0].not_fits_url).query)["token"][0])
    answer = record_from_token(store, settings, token)
    names = {uc.name: uc.key for uc in load_taxonomy(settings).sector("finance").use_cases}
    assert (answer.sector, answer.use_case, answer.fits) == ("finance", names[block.name], False)
    # a question about the sector says how sure the matcher is against where it decides
    section = digest.text.split("== Does this fit?")[1].split("== What is trending")[0]
    found = re.search(
        r"unsure about this one \(probability (\d+)%; it counts a paper in from (\d+)%\)", section
    )
    assert found, section


def test_chosen_techniques_narrow_the_innovations(world) -> None:
    settings, store, titles = world
    taxonomy = load_taxonomy(settings)
    sub = add_subscriber(
        store,
        "gnn@example.com",
        sectors="finance",
        techniques="gnn",
        consent=True,
        taxonomy=taxonomy,
    )
    digest = build_digest(store, settings, sub, now=NOW)
    shown = [item.title for s in digest.sectors for u in s.use_cases for item in u.items]
    assert shown and all("Graph neural networks stop card fraud" in t for t in shown), shown
    # (the questions that teach the matcher, in their own section, are about the sector)
    own = digest.text.split("== Does this fit?")[0].split("== What is trending ==")[0]
    assert all(titles[n] not in own for n in (TRADING, CREDIT))  # language model papers
    [item] = [i for s in digest.sectors for u in s.use_cases for i in u.items]
    assert "Graph neural networks" in item.techniques
    trending = [line.name for line in digest.trending]
    assert all("Transformers" not in name for name in trending)  # only the chosen technique


def test_never_twice_in_a_week_and_failed_sends_retried(world, smtp) -> None:
    settings, store, _ = world
    taxonomy = load_taxonomy(settings)
    add_subscriber(store, "bad@example.com", sectors="finance", consent=True, taxonomy=taxonomy)
    smtp.refuse.add("bad@example.com")

    first = send_digests(store, settings, now=NOW)
    assert sorted(first.sent) == ["fin@example.com", "med@example.com"]
    assert list(first.failed) == ["bad@example.com"] and "550" in first.failed["bad@example.com"]
    assert len(smtp.received) == 2

    # run again the same week (the job re-run, or the retry job): nobody gets a second copy
    second = send_digests(store, settings, now=NOW + timedelta(hours=2))
    assert second.sent == [] and sorted(second.already_sent) == [
        "fin@example.com",
        "med@example.com",
    ]
    assert list(second.failed) == ["bad@example.com"]
    assert len(smtp.received) == 2

    # the address starts accepting mail: the retry delivers it, once
    smtp.refuse.clear()
    third = send_digests(store, settings, now=NOW + timedelta(hours=4), retry_only=True)
    assert third.sent == ["bad@example.com"]
    assert len(smtp.to("bad@example.com")) == 1
    history = export_subscriber(store, "bad@example.com")["digests"]
    assert history[0]["status"] == "sent" and history[0]["attempts"] == 3


def test_logs_name_people_by_a_reference_not_their_address(world, smtp, caplog) -> None:
    settings, store, _ = world
    taxonomy = load_taxonomy(settings)
    add_subscriber(store, "bad@example.com", sectors="finance", consent=True, taxonomy=taxonomy)
    smtp.refuse.add("bad@example.com")
    with caplog.at_level(logging.DEBUG):
        report = send_digests(store, settings, now=NOW)
        token = make_unsubscribe_token(settings, "med@example.com", store=store)
        unsubscribe_with_token(store, settings, token)
    assert "bad@example.com" in report.failed  # the operator's report still says who
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("jobs", "core", "index")]
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in ours)
    assert "@example.com" not in logged  # (the test SMTP server logs them, Veille does not)
    assert email_ref("bad@example.com") in logged and email_ref("med@example.com") in logged


def test_server_stopping_midway_does_not_resend(world, smtp, monkeypatch) -> None:
    settings, store, _ = world
    taxonomy = load_taxonomy(settings)
    for name in ("a", "b"):
        add_subscriber(
            store, f"{name}@example.com", sectors="health", consent=True, taxonomy=taxonomy
        )
    real_send = SMTPMailer.send
    delivered: list[str] = []

    def send_then_stop(self, message):
        real_send(self, message)
        delivered.append(message["To"])
        if len(delivered) == 2:
            smtp.stop()  # the mail server goes away after the second message

    monkeypatch.setattr(SMTPMailer, "send", send_then_stop)
    first = send_digests(store, settings, now=NOW)
    assert first.sent == delivered and len(delivered) == 2
    assert len(first.failed) == 2  # the two others, with a connection error each

    monkeypatch.setattr(SMTPMailer, "send", real_send)
    smtp.start(smtp.port)
    smtp.received.clear()
    second = send_digests(store, settings, now=NOW + timedelta(hours=1))
    assert sorted(second.sent) == sorted(first.failed)
    assert sorted(second.already_sent) == sorted(delivered)
    assert sorted(rcpt[0] for rcpt, _ in smtp.received) == sorted(first.failed)


class Crash(BaseException):
    """The process dying between handing a message over and recording it."""


def test_a_crash_after_sending_is_never_resent(world, smtp, monkeypatch) -> None:
    settings, store, _ = world
    real_send = SMTPMailer.send

    def send_then_die(self, message):
        real_send(self, message)
        raise Crash

    monkeypatch.setattr(SMTPMailer, "send", send_then_die)
    with pytest.raises(Crash):
        send_digests(store, settings, now=NOW)
    assert len(smtp.received) == 1
    crashed_for = smtp.received[0][0][0]

    monkeypatch.setattr(SMTPMailer, "send", real_send)
    report = send_digests(store, settings, now=NOW + timedelta(minutes=5))
    assert report.uncertain == [crashed_for]  # reported, not resent
    assert len(report.sent) == 1 and crashed_for not in report.sent
    assert len(smtp.to(crashed_for)) == 1


def _status(store: Store, email: str) -> tuple[str, int, str] | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(digest_sends.c.status, digest_sends.c.attempts, digest_sends.c.error).where(
                digest_sends.c.email == email
            )
        ).first()
    return tuple(row) if row is not None else None


def test_a_digest_that_cannot_be_built_is_recorded_and_retried(world, smtp, monkeypatch) -> None:
    settings, store, _ = world
    from jobs import digest_delivery as delivery

    real_build = delivery.build_digest

    def broken_for_med(store, settings, subscriber, **kwargs):
        if subscriber.email == "med@example.com":
            raise RuntimeError("template exploded")
        return real_build(store, settings, subscriber, **kwargs)

    monkeypatch.setattr(delivery, "build_digest", broken_for_med)
    first = send_digests(store, settings, now=NOW)
    assert first.sent == ["fin@example.com"]
    assert "build failed: RuntimeError: template exploded" in first.failed["med@example.com"]
    status, attempts, error = _status(store, "med@example.com")
    assert (status, attempts) == ("failed", 1) and "template exploded" in error

    # the retry job picks it up once the digest builds again; nobody gets two copies
    monkeypatch.setattr(delivery, "build_digest", real_build)
    retry = send_digests(store, settings, now=NOW + timedelta(hours=1), retry_only=True)
    assert retry.sent == ["med@example.com"] and retry.ok
    assert _status(store, "med@example.com")[:2] == ("sent", 2)
    assert len(smtp.to("med@example.com")) == 1 and len(smtp.to("fin@example.com")) == 1


def _hold_write_lock(settings) -> sqlite3.Connection:
    """Another writer holding SQLite's write lock, as a second process would."""
    holder = sqlite3.connect(str(settings.data_dir / "veille.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_locked_database_defers_the_person_and_the_others_go_on(world, smtp, monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_DB_BUSY_TIMEOUT", "0.2")
    settings = load_settings()  # the world's data directory, with a short busy timeout
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings)
    add_subscriber(store, "zed@example.com", sectors="legal", consent=True, taxonomy=taxonomy)
    earlier = NOW - timedelta(days=1)  # med subscribed before this week's run
    add_subscriber(
        store, "med@example.com", sectors="health", consent=True, taxonomy=taxonomy, now=earlier
    )
    from jobs import digest_delivery as delivery

    real_build = delivery.build_digest
    held: list[sqlite3.Connection] = []

    def lock_while_building_med(store, settings, subscriber, **kwargs):
        if subscriber.email == "med@example.com":
            held.append(_hold_write_lock(settings))
        elif held:
            held.pop().rollback()  # the other writer is done before zed's turn
        return real_build(store, settings, subscriber, **kwargs)

    monkeypatch.setattr(delivery, "build_digest", lock_while_building_med)
    try:
        first = send_digests(store, settings, now=NOW)
    finally:
        for conn in held:
            conn.rollback()
    assert sorted(first.sent) == ["fin@example.com", "zed@example.com"], first.summary()
    assert list(first.deferred) == ["med@example.com"] and not first.ok
    assert "database busy" in first.deferred["med@example.com"]
    assert "1 deferred" in first.summary()
    assert _status(store, "med@example.com") is None  # nothing sent, nothing recorded

    # the retry job sends to the deferred person (subscribed before the week's run) only
    add_subscriber(
        store,
        "late@example.com",
        sectors="health",
        consent=True,
        taxonomy=taxonomy,
        now=NOW + timedelta(minutes=30),
    )
    monkeypatch.setattr(delivery, "build_digest", real_build)
    retry = send_digests(store, settings, now=NOW + timedelta(hours=1), retry_only=True)
    assert retry.sent == ["med@example.com"], retry.summary()
    assert [len(smtp.to(a)) for a in ("fin@example.com", "med@example.com")] == [1, 1]
    assert smtp.to("late@example.com") == []
    store.close()


def test_a_weekly_run_locked_out_entirely_is_completed_by_the_retry_job(
    world, smtp, monkeypatch
) -> None:
    from jobs.runner import run_job
    from jobs.runs import recent_job_runs

    monkeypatch.setenv("VEILLE_DB_BUSY_TIMEOUT", "0.2")
    settings = load_settings()
    store = Store.from_settings(settings)
    from jobs import digest_delivery as delivery

    real_deliver = delivery._deliver
    holder: list[sqlite3.Connection] = []  # held from the first claim to the last one
    tried: list[str] = []

    def deliver_under_lock(store, settings, person, *args):
        if not tried:
            holder.append(_hold_write_lock(settings))
        real_deliver(store, settings, person, *args)
        tried.append(person.email)
        if len(tried) == 2:
            holder.pop().rollback()

    monkeypatch.setattr(delivery, "_deliver", deliver_under_lock)
    try:
        # runs are recorded at the real time, so this week is the real one
        weekly = run_job("digest", settings, store=store)
    finally:
        for conn in holder:
            conn.rollback()
    assert weekly.outcome == "error" and "2 deferred" in weekly.message, weekly.message
    assert smtp.received == []

    monkeypatch.setattr(delivery, "_deliver", real_deliver)
    retry = run_job("digest_retry", settings, store=store)
    assert retry.outcome == "ok" and "2 sent" in retry.message, retry.message
    assert sorted(r[0] for r, _ in smtp.received) == ["fin@example.com", "med@example.com"]
    assert [r.job for r in recent_job_runs(store, 2)] == ["digest_retry", "digest"]
    store.close()


def test_without_consent_or_unsubscribed_nothing_is_sent(world, smtp) -> None:
    settings, store, _ = world
    with store.write() as conn:
        conn.execute(
            subscribers.insert().values(
                email="noconsent@example.com",
                sectors=["finance"],
                techniques=[],
                consent_at=None,
                consent_source="",
                created=NOW.replace(tzinfo=None),
            )
        )
        conn.execute(
            subscribers.update()
            .where(subscribers.c.email == "med@example.com")
            .values(unsubscribed=NOW.replace(tzinfo=None))
        )
    report = send_digests(store, settings, now=NOW)
    assert report.sent == ["fin@example.com"]
    assert [rcpt for rcpt, _ in smtp.received] == [["fin@example.com"]]
    with store.engine.connect() as conn:
        weeks = conn.execute(sa.select(digest_sends.c.email)).scalars().all()
    assert weeks == ["fin@example.com"]


def test_cli_preview_and_send(world, smtp, tmp_path) -> None:
    settings, store, titles = world
    runner = CliRunner()
    out = tmp_path / "digest.html"
    result = runner.invoke(
        cli,
        ["digest", "--preview", str(out), "--email", "med@example.com", "--now", "2026-03-11"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Health" in html
    assert (tmp_path / "digest.txt").read_text(encoding="utf-8").startswith("VEILLE WEEKLY")
    assert smtp.received == []  # a preview sends nothing

    sample = preview(store, settings, now=NOW)  # no address: a reader of every sector
    assert all(s in sample.html for s in ("Financial services", "Health", "Legal services"))
    unknown = runner.invoke(cli, ["digest", "--preview", str(out), "--email", "x@example.com"])
    assert unknown.exit_code == 1 and "no subscriber" in unknown.output

    sent = runner.invoke(cli, ["digest", "--send", "--now", "2026-03-11"], catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    assert "2 sent" in sent.output
    assert sorted(r[0] for r, _ in smtp.received) == ["fin@example.com", "med@example.com"]
    again = runner.invoke(cli, ["digest", "--send", "--now", "2026-03-11"])
    assert "0 sent, 2 already sent" in again.output


def test_sending_is_refused_while_links_point_at_this_machine(smtp, monkeypatch) -> None:
    from jobs.runner import run_job

    monkeypatch.delenv("VEILLE_ALLOW_LOOPBACK_PUBLIC_URL")
    settings = load_settings()
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings)
    add_subscriber(store, "ana@example.com", sectors="retail", consent=True, taxonomy=taxonomy)
    for url in ("http://127.0.0.1:8501", "http://localhost:8501/", "http://[::1]:8501"):
        with pytest.raises(ConfigError, match="VEILLE_PUBLIC_URL .* points at this machine"):
            send_digests(store, load_settings(public_url=url), now=NOW)
    with pytest.raises(ConfigError, match=r"VEILLE_PUBLIC_URL \(public_url\) = 'veille.example"):
        send_digests(store, load_settings(public_url="veille.example.com"), now=NOW)
    assert smtp.received == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(digest_sends)).all() == []  # nothing claimed either

    runner = CliRunner()
    refused = runner.invoke(cli, ["digest", "--send", "--now", "2026-03-11"])
    assert refused.exit_code == 1
    assert "VEILLE_PUBLIC_URL" in refused.output and "--allow-loopback-links" in refused.output
    scheduled = run_job("digest", settings, store=store, now=NOW)
    assert scheduled.outcome == "error" and "VEILLE_PUBLIC_URL" in scheduled.message
    assert smtp.received == []

    allowed = runner.invoke(
        cli, ["digest", "--send", "--now", "2026-03-11", "--allow-loopback-links"]
    )
    assert allowed.exit_code == 0 and "1 sent" in allowed.output, allowed.output
    smtp.received.clear()
    public = load_settings(public_url="https://veille.example.com")
    report = send_digests(store, public, now=NOW + timedelta(days=7))
    assert report.sent == ["ana@example.com"]
    [msg] = smtp.to("ana@example.com")
    assert msg["List-Unsubscribe"].startswith("<https://veille.example.com/unsubscribe?token=")
    store.close()


def test_operator_recipients_and_the_preview_see_silent_and_failing_sources(
    world, smtp, monkeypatch
) -> None:
    from crawler.news_sources import feed_states, save_feed_state
    from tests.test_news_reliability import history

    settings, store, _ = world
    days = [NOW - timedelta(days=d) for d in (40, 30, 20, 10, 1)]
    history(store, "Quiet", [(d, "ok", n) for d, n in zip(days, (5, 7, 0, 0, 0), strict=True)])
    history(store, "Broken", [(days[0], "ok", 4), *[(d, "error", 0) for d in days[2:]]])
    history(store, "Fresh", [(d, "ok", n) for d, n in zip(days, (5, 0, 0, 0, 2), strict=True)])
    broken = feed_states(store)["Broken"]
    broken.last_error = "feed: <img src=x onerror=alert(1)> HTTP 410 Gone\x1b[31m"
    save_feed_state(store, broken)
    names = ["Quiet", "Broken", "Fresh"]
    sources = [{"name": n, "feed_url": f"http://127.0.0.1:9/{n}.xml"} for n in names]
    monkeypatch.setenv("VEILLE_NEWS_SOURCES", json.dumps(sources))
    monkeypatch.setenv("VEILLE_NEWS_DEFAULT_SOURCES", "false")
    monkeypatch.setenv("VEILLE_OPERATOR_EMAILS", '["Fin@Example.com"]')
    settings = load_settings()

    assert send_digests(store, settings, now=NOW).ok
    [fin] = smtp.to("fin@example.com")  # the operator (the address's case does not matter)
    [med] = smtp.to("med@example.com")  # a reader
    text, html = _parts(fin)
    section = text[text.index("== For the operator: news sources ==") :]
    lines = [line for line in section.splitlines() if line.startswith("  * ")]
    assert lines[0].startswith("  * Broken: failing for 3 crawls in a row")  # failing first
    assert lines[1].startswith("  * Quiet: no new item for 30 days (last on 2026-02-09)")
    assert len(lines) == 2 and "Fresh" not in section
    assert "Sources page: http://127.0.0.1:8501/sources" in section
    assert "For the operator: news sources</h2>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html.lower()
    assert "\x1b" not in text + html
    reader_text, reader_html = _parts(med)
    assert "For the operator" not in reader_text + reader_html

    # the preview of every sector is the operator's: it shows the section too
    sample = preview(store, settings, now=NOW)
    assert "Quiet: no new item for 30 days" in sample.text
    assert "For the operator: news sources</h2>" in sample.html
    # nothing to report: the section says so
    assert (
        "No enabled news source has fallen silent or failed several crawls"
        in preview(store, settings.model_copy(update={"news_sources": sources[2:]}), now=NOW).text
    )


def test_shortlist_sections_and_signed_add_links(world, smtp, real_embedder) -> None:
    """The reader's sectors' shortlists: what changed this week and more like them; every
    listed innovation has a signed "add to shortlist" link that the API honours once
    confirmed, recorded under the reader's reference, and refuses when forged."""
    import httpx

    from index.search import Searcher
    from index.shortlists import add_entry, history, list_entries, move_entry
    from index.story import recent_evidence, refresh_evidence
    from tests.apiserver import ServedApi

    settings, store, titles = world
    fraud, credit = FRAUD, CREDIT
    target = "finance/fraud_detection"
    before = NOW - timedelta(days=20)
    first = add_entry(store, settings, fraud, target, by="ana", now=before)
    add_entry(store, settings, credit, target, by="ana", now=before)
    move_entry(store, settings, first.id, "pilot", by="ana", now=before)
    refresh_evidence(store, now=before)  # the first look: what exists already is not news
    assert recent_evidence(store, NOW - timedelta(days=7)) == []
    # this week, a news item (with a hostile title) cites the piloted paper
    store.upsert(
        [
            Document(
                canonical_id="news-cites",
                title=HOSTILE_TITLE,
                text=f"Telecoms adopt the audio model of arXiv {fraud} against phone scams.",
                kind="news",
                source="Example News",
                url="https://news.example/telecom",
                published=NOW - timedelta(days=2),
            )
        ]
    )
    assert refresh_evidence(store, now=NOW - timedelta(days=2)) == 1

    send_digests(store, settings, now=NOW)
    fin_text, fin_html = _parts(smtp.to("fin@example.com")[0])
    med_text, med_html = _parts(smtp.to("med@example.com")[0])
    section = fin_text.split("== Your shortlist: what changed this week ==")[1]
    section = section.split("== ")[0]
    assert titles[FRAUD] in section and "▶ Pilot" in section
    assert "cited by a news item: <script>alert(1)</script> Graph neural networks" in section
    assert "\x1b" not in fin_text and "\u202e" not in fin_text  # control characters stripped
    assert "Your shortlist: what changed this week" in fin_html
    assert "cited by a news item: &lt;script&gt;alert(1)&lt;/script&gt;" in fin_html
    assert "<script>" not in fin_html and "<img" not in fin_html
    assert "== More like your shortlist ==" in fin_text and "More like your shortlist" in fin_html
    assert "closest to “" in fin_text.split("== More like your shortlist ==")[1]
    # the health reader's sectors have no shortlist: no such sections
    assert "Your shortlist" not in med_text and "More like your shortlist" not in med_html

    links = re.findall(r'href="(http://127\.0\.0\.1:8501/shortlist\?token=[^"]+)"', fin_html)
    assert len(links) >= 2 and all(link in fin_text for link in links)
    assert "Add to the Fraud detection" in fin_text
    # every innovation listed under the sectors carries one
    listed = fin_text.split("== Your shortlist")[0].count("\n  * ")
    assert fin_text.split("== Your shortlist")[0].count("shortlist: http://") == listed

    tokens = [unquote(parse_qs(urlsplit(link).query)["token"][0]) for link in links]
    searcher = Searcher.open(settings, store=store, embedder=real_embedder)
    with ServedApi(settings, store, searcher) as api, httpx.Client(base_url=api.base) as http:
        boards = len(list_entries(store, settings, include_removed=True))
        page = http.get("/shortlist", params={"token": tokens[0]})
        assert page.status_code == 200 and "<form" in page.text
        assert "Add “" in page.text and "to the shortlist of Financial services: " in page.text
        assert len(list_entries(store, settings, include_removed=True)) == boards  # GET: nothing
        signature = tokens[0].rsplit(".", 1)[1]
        other_payload = tokens[1].rsplit(".", 1)[0]
        values = read_values(settings, store, "shortlist", tokens[0])
        for forged in (
            tokens[0][:-2] + "xx",  # an altered signature
            f"{other_payload}.{signature}",  # another link's payload, this signature
            sign_values(settings, store, "feedback", values),  # the same, signed as feedback
            "garbage",
        ):
            refused = http.post("/shortlist", data={"token": forged})
            assert refused.status_code == 400 and "Nothing was changed" in refused.text
            assert "invalid or has been altered" in refused.text
        assert len(list_entries(store, settings, include_removed=True)) == boards
        done = http.post("/shortlist", data={"token": tokens[0]})
        assert done.status_code == 200
        assert "It is on the shortlist of Financial services: " in done.text
    entry = max(list_entries(store, settings), key=lambda e: e.id)
    assert entry.id > first.id + 1 and entry.status == "new"  # a new entry on the board
    assert history(store, entry.id)[-1].by == email_ref("fin@example.com")
    assert "fin@example.com" not in {line.by for line in history(store, entry.id)}
