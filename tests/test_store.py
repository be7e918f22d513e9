from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from core.loader import load_jsonl
from core.models import Document, arxiv_id, as_utc, make_canonical_id, naive_utc
from core.store import Store


def doc(cid: str, title: str = "A title", text: str = "Some text.", **kw) -> Document:
    return Document(canonical_id=cid, title=title, text=text, **kw)


def test_canonical_ids() -> None:
    assert arxiv_id("2503.11677v3") == "2503.11677"
    assert arxiv_id("arXiv:1707.08567") == "1707.08567"
    assert arxiv_id("https://arxiv.org/pdf/2503.11677v2.pdf") == "2503.11677"
    assert arxiv_id("hep-th/9901001v2") == "hep-th/9901001"
    assert arxiv_id("not-an-id") is None
    assert (
        make_canonical_id(
            given=None, url="https://arxiv.org/abs/2501.00001v2", kind="paper", chash="x"
        )
        == "2501.00001"
    )
    assert make_canonical_id(given="my-42", url=None, kind="news", chash="x") == "my-42"


# One paper as different sources name it: each must land on the one stored document.
SAME_PAPER = [
    "2503.12172v1",
    "2503.12172V2",
    "arXiv:2503.12172",
    "10.48550/arXiv.2503.12172",
    "https://doi.org/10.48550/arXiv.2503.12172",
    "https://arxiv.org/abs/2503.12172#comments",
    "https://arxiv.org/abs/2503.12172v1?context=cs.CV",
    "https://arxiv.org/html/2503.12172v1",
    "HTTPS://ARXIV.ORG/pdf/2503.12172v2.pdf",
]


def test_every_form_of_an_arxiv_id_is_one_paper() -> None:
    assert {arxiv_id(form) for form in SAME_PAPER} == {"2503.12172"}
    # old ids: the subject class is not part of arXiv's own id
    assert arxiv_id("cond-mat.str-el/0412498v1") == "cond-mat/0412498"
    assert arxiv_id("math.GT/0309136") == "math/0309136"
    # not arXiv: another host, another DOI prefix, a listing page
    assert arxiv_id("https://example.org/abs/2503.12172") is None
    assert arxiv_id("10.1000/2503.12172") is None
    assert arxiv_id("https://arxiv.org/list/cs.LG/recent") is None


def test_a_paper_loaded_under_each_of_its_names_is_stored_once(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "variants.jsonl"
    rows = []
    for n, form in enumerate(SAME_PAPER):
        key = "url" if form.lower().startswith("http") else "id"
        rows.append({key: form, "title": "SEAL watermarking", "abstract": f"Version {n}."})
    rows.append({"id": "10.1000/xyz.1", "title": "Not on arXiv", "abstract": "Elsewhere."})
    for row in rows:  # one file per row: a later load meets what an earlier one stored
        path.write_text(json.dumps(row) + "\n", encoding="utf-8")
        load_jsonl(path, store)
    assert store.count() == 2
    paper = store.resolve("2503.12172")
    assert paper.text.startswith(f"Version {len(SAME_PAPER) - 1}")
    assert paper.url == SAME_PAPER[-1]  # the link the latest record gave
    # a DOI that is not arXiv's gets no made-up arXiv link
    assert "arxiv.org" not in (store.resolve("10.1000/xyz.1").url or "")


def test_upsert_new_unchanged_updated(store: Store) -> None:
    first = store.upsert([doc("2501.00001", text="Version one."), doc("2501.00002", title="Other")])
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    gen = store.generation()
    again = store.upsert([doc("2501.00001", text="Version one.")])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 1)
    assert store.generation() == gen  # nothing changed: the index stays current
    newer = store.upsert([doc("2501.00001", text="Version two, revised.")])
    assert newer.updated == 1
    assert store.count() == 2
    assert store.resolve("2501.00001v2").text == "Version two, revised."
    assert store.changed_ids(gen).tolist() == [newer.ids[0]]


def test_a_paper_keeps_the_date_it_first_appeared(store: Store) -> None:
    """The crawler gives a paper its v1 date; a file of later listing dates (or the listing
    of a new version) must not move it into recent weeks. An earlier date does replace it."""
    store.upsert([doc("2503.12172", text="Version one.", published=datetime(2025, 3, 14))])
    store.upsert([doc("2503.12172", text="Version one.", published=datetime(2025, 6, 2))])
    assert store.resolve("2503.12172").published.date() == date(2025, 3, 14)
    store.upsert([doc("2503.12172", text="Version two.", published=datetime(2025, 6, 9))])
    paper = store.resolve("2503.12172")
    assert paper.text == "Version two." and paper.published.date() == date(2025, 3, 14)
    store.upsert([doc("2503.12172", text="Version two.", published=datetime(2025, 3, 13))])
    assert store.resolve("2503.12172").published.date() == date(2025, 3, 13)
    # a news item's date is the page's own: a corrected date replaces it
    store.upsert([doc("https://n.example/a", kind="news", published=datetime(2025, 5, 1))])
    store.upsert([doc("https://n.example/a", kind="news", published=datetime(2025, 5, 3))])
    assert store.resolve("https://n.example/a").published.date() == date(2025, 5, 3)


def test_exact_duplicate_from_another_url_is_recorded_not_stored(store: Store) -> None:
    store.upsert(
        [doc("https://a.example/story", title="Same story", text="Same words here.", kind="news")]
    )
    res = store.upsert(
        [doc("https://b.example/copy", title="Same  story", text="same words here.", kind="news")]
    )
    assert res.duplicates == 1 and res.new == 0
    assert store.count() == 1
    assert store.duplicate_count() == 1
    # the duplicate's id leads to the original
    assert store.resolve("https://b.example/copy").canonical_id == "https://a.example/story"


def test_filter_ids_and_stats(store: Store) -> None:
    store.upsert(
        [
            doc("1", title="a", published="2025-03-01", source="arxiv"),
            doc("2", title="b", published="2025-04-15", source="arxiv"),
            doc("3", title="c", published="2025-04-20", kind="news", source="OpenAI News"),
        ]
    )
    ids = store.filter_ids(since=datetime(2025, 4, 1, tzinfo=UTC))
    assert len(ids) == 2
    assert len(store.filter_ids(kind="news")) == 1
    assert len(store.filter_ids(source="openai news")) == 1
    assert store.filter_ids() is None
    stats = store.stats()
    assert stats["documents"] == 3
    assert stats["by_kind"] == {"paper": 2, "news": 1}
    assert stats["by_month"] == {"2025-03": 1, "2025-04": 2}


def test_crawl_runs_are_recorded(store: Store) -> None:
    run = store.start_run("arxiv")
    store.finish_run(run, status="error", fetched=10, new=4, errors=1, last_error="HTTP 500")
    (last,) = store.recent_runs()
    assert (last.source, last.status, last.new, last.last_error) == (
        "arxiv",
        "error",
        4,
        "HTTP 500",
    )


def test_schema_is_created_and_reopened(settings) -> None:
    s1 = Store.from_settings(settings)
    s1.upsert([doc("x1")])
    s1.close()
    s2 = Store.from_settings(settings)
    assert s2.count() == 1
    with s2.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"
    assert s2.migrated is None  # made at the newest revision by the first open
    s2.close()


def test_runs_of_a_dead_process_are_closed_with_the_reason(settings) -> None:
    import subprocess
    import sys

    s = Store.from_settings(settings)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    read, empty, mine = s.start_run("news:A"), s.start_run("news:B"), s.start_run("arxiv")
    s.progress_run(read, fetched=3, new=2)

    from core.children import process_tag
    from core.schema import crawl_runs

    host = process_tag().rsplit(":", 1)[0]
    with s.engine.begin() as conn:
        conn.execute(
            crawl_runs.update()
            .where(crawl_runs.c.id.in_([read, empty]))
            .values(owner=f"{host}:{int(dead.stdout)}")
        )
    closed = {r.source: r for r in s.close_dead_runs()}
    assert set(closed) == {"news:A", "news:B"}  # this process's own run stays open
    assert closed["news:A"].status == "partial" and closed["news:B"].status == "error"
    assert f"its process ({int(dead.stdout)} on this host) died" in closed["news:A"].last_error
    assert "2 new and 0 updated were stored" in closed["news:A"].last_error
    assert s.recent_runs(1, source="arxiv")[0].status == "running" and mine
    assert s.close_dead_runs() == []
    s.close()


def test_meta_roundtrip(store: Store) -> None:
    assert store.get_meta("watermark") is None
    store.set_meta("watermark", "2025-01-01")
    store.set_meta("watermark", "2025-02-01")
    assert store.get_meta("watermark") == "2025-02-01"
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("select count(*) from meta where key='watermark'")).scalar() == 1
        )


def test_same_text_new_metadata_is_refreshed_and_repeats_in_one_batch(store: Store) -> None:
    first = doc("2501.00009", extra={"version": "v1"}, published="2025-01-01")
    again = doc(
        "2501.00009", extra={"version": "v2", "journal_ref": "J. 1"}, published="2025-01-01"
    )
    res = store.upsert([first, again])
    assert (res.new, res.updated) == (1, 1)
    gen = store.generation()
    assert store.resolve("2501.00009").extra["version"] == "v2"
    assert store.upsert([again]).unchanged == 1
    assert len(store.changed_ids(gen - 1)) == 1  # metadata refresh does not touch rev


def test_one_pair_of_helpers_between_aware_and_stored_naive_utc() -> None:
    paris = timezone(timedelta(hours=2))
    noon_utc = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert as_utc(datetime(2026, 6, 1, 12, 0)) == noon_utc  # naive means UTC
    assert as_utc(datetime(2026, 6, 1, 14, 0, tzinfo=paris)).tzinfo is UTC
    assert as_utc(datetime(2026, 6, 1, 14, 0, tzinfo=paris)) == noon_utc
    assert as_utc(date(2026, 6, 1)) == datetime(2026, 6, 1, tzinfo=UTC)
    assert as_utc("2026-06-01T12:00:00Z") == noon_utc
    assert as_utc(None) is None and naive_utc(None) is None
    # an aware value is converted to UTC before its zone is dropped, never just stripped
    assert naive_utc(datetime(2026, 6, 1, 14, 0, tzinfo=paris)) == datetime(2026, 6, 1, 12, 0)
    assert naive_utc(datetime(2026, 6, 1, 12, 0)) == datetime(2026, 6, 1, 12, 0)
    assert as_utc(naive_utc(noon_utc)) == noon_utc


def test_what_crawlers_ask_about_stored_documents_and_duplicates(store: Store) -> None:
    result = store.upsert([doc("a1", extra={"flags": ["page_timeout"], "page_attempts": 1})])
    original = result.ids[0]
    assert store.stored(["a1", "nope"]) == {
        "a1": (original, doc("a1").content_hash, {"flags": ["page_timeout"], "page_attempts": 1})
    }
    assert store.recorded_duplicates(["copy", "a1"]) == set()
    copy = {"url": "https://b.example/x", "source": "B", "content_hash": "f" * 64}
    assert store.record_duplicate(canonical_id="copy", original_id=original, **copy)
    assert not store.record_duplicate(canonical_id="copy", original_id=original, **copy)
    assert store.recorded_duplicates(["copy", "a1"]) == {"copy"}
    assert store.by_canonical_id("copy").canonical_id == "a1" and store.duplicate_count() == 1
