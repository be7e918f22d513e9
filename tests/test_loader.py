from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from core.loader import load_jsonl
from core.store import Store
from jobs.cli import cli


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def j(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def bad_file(tmp_path: Path) -> Path:
    return write_lines(
        tmp_path / "mixed.jsonl",
        [
            j(
                {
                    "id": "2501.00001v2",
                    "title": "Good paper",
                    "text": "A fine abstract.",
                    "published": "2025-01-05",
                }
            ),
            b'{"title": "broken", "text": ',  # malformed JSON
            j({"text": "no title here"}),  # missing title
            j({"title": "No text"}),  # missing text
            "caf\xe9".encode("latin-1") + b' {"title": "x", "text": "y"}',  # not UTF-8
            j({"title": "Empty", "text": "   "}),  # empty text
            j({"title": "Huge", "text": "x" * 300_000}),  # too long
            j(
                {"id": "2501.00001", "title": "Same id again", "text": "Other text."}
            ),  # duplicate id
            j({"title": "Bad date", "text": "t", "published": "last tuesday"}),
            j({"title": "Bad kind", "text": "t", "kind": "tweet"}),
            j(
                {
                    "id": "n1",
                    "title": "Good news",
                    "text": "Body.",
                    "kind": "news",
                    "url": "https://x.example/a?utm_source=z",
                }
            ),
            b"[1, 2]",
            j({"title": "Bad link", "text": "t", "url": "javascript:alert(1)"}),
        ],
    )


def test_bad_lines_are_reported_and_good_ones_loaded(tmp_path: Path, store: Store) -> None:
    report = load_jsonl(bad_file(tmp_path), store)
    reasons = {r.line: r.reason for r in report.rejected}
    assert report.result.new == 2
    assert store.count() == 2
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert "malformed JSON" in reasons[2]
    assert "title" in reasons[3]
    assert "text" in reasons[4]
    assert "UTF-8" in reasons[5]
    assert "empty" in reasons[6]
    assert "limit" in reasons[7]
    assert "duplicate id '2501.00001' (first on line 1)" in reasons[8]
    assert "ISO date" in reasons[9]
    assert "kind" in reasons[10]
    assert "JSON object" in reasons[12]
    assert "'url' must be an http(s) address, not 'javascript:alert(1)'" in reasons[13]
    paper = store.resolve("2501.00001")
    assert paper.title == "Good paper" and paper.url == "https://arxiv.org/abs/2501.00001"
    assert store.resolve("n1").kind == "news"


def test_bad_file_changes_nothing_already_stored(tmp_path: Path, store: Store) -> None:
    good = write_lines(
        tmp_path / "good.jsonl", [j({"id": "keep-me", "title": "Kept", "text": "Stored before."})]
    )
    load_jsonl(good, store)
    before = store.resolve("keep-me")
    broken = write_lines(
        tmp_path / "broken.jsonl",
        [j({"id": "keep-me", "title": "Kept", "text": ""}), b"{not json", j({"id": "keep-me"})],
    )
    report = load_jsonl(broken, store)
    assert len(report.rejected) == 3 and report.result.new == 0
    after = store.resolve("keep-me")
    assert (after.title, after.text, after.content_hash) == (
        before.title,
        before.text,
        before.content_hash,
    )


def test_cli_load_reports_lines_and_exit_code(tmp_path: Path, isolated_settings: Path) -> None:
    result = CliRunner().invoke(cli, ["load", str(bad_file(tmp_path))])
    assert result.exit_code == 2, result.output
    assert "2 new" in result.output
    assert "line 2: malformed JSON" in result.output
    assert "11 lines rejected" in result.output
    assert "Run `veille index`" in result.output
    again = CliRunner().invoke(cli, ["load", str(bad_file(tmp_path))])
    assert "0 new" in again.output and "Run `veille index`" not in again.output  # nothing to do
    ok = write_lines(tmp_path / "ok.jsonl", [j({"title": "T", "text": "x"})])
    assert (
        CliRunner().invoke(cli, ["load", str(ok), "--data-dir", str(tmp_path / "other")]).exit_code
        == 0
    )
    missing = CliRunner().invoke(cli, ["load", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_a_page_loaded_under_its_old_url_key_keeps_it(tmp_path: Path, store: Store) -> None:
    # Stored by a release whose loader kept ncid and _ga (the crawler already dropped them).
    url = "https://x.example/story?ncid=rss&_ga=2&id=7"
    old_key = "https://x.example/story?_ga=2&id=7&ncid=rss"
    first = write_lines(tmp_path / "a.jsonl", [j({"title": "Story", "text": "Body.", "url": url})])
    load_jsonl(first, store)
    stored = store.resolve(url)
    with store.engine.begin() as conn:  # as the previous release keyed it
        conn.exec_driver_sql(
            "UPDATE documents SET canonical_id = ? WHERE id = ?", (old_key, stored.id)
        )
    again = write_lines(
        tmp_path / "b.jsonl", [j({"title": "Story", "text": "Body, revised.", "url": url})]
    )
    report = load_jsonl(again, store)
    assert (report.result.new, report.result.updated) == (0, 1) and store.count() == 1
    found = store.resolve(url)
    assert found.canonical_id == old_key and found.text == "Body, revised."
    # a page first loaded now gets the one canonical key, the crawler's
    load_jsonl(
        write_lines(
            tmp_path / "c.jsonl",
            [j({"title": "Other", "text": "Else.", "url": "https://x.example/b?_ga=1"})],
        ),
        store,
    )
    assert store.resolve("https://x.example/b").canonical_id == "https://x.example/b"


def test_tex_in_paper_titles_reads_as_text(tmp_path: Path, store: Store) -> None:
    """arXiv titles carry inline TeX; readers see plain text, and the TeX is kept beside."""
    path = write_lines(
        tmp_path / "tex.jsonl",
        [
            j({"id": "2503.00001", "title": r"Echo-E$^3$Net: cardiac echo", "text": "An echo."}),
            j({"id": "2503.00002", "title": r"$\textit{Agents Under Siege}$: x", "text": "A."}),
            j({"id": "2503.00003", "title": r"NO$_2$ maps over $\mathbb{R}^n$", "text": "Air."}),
            j({"id": "n1", "title": "Bank pays $5 billion", "text": "News.", "kind": "news"}),
        ],
    )
    load_jsonl(path, store)
    by_id = {d.canonical_id: d for batch in store.iter_documents() for d in batch}
    assert by_id["2503.00001"].title == "Echo-E³Net: cardiac echo"
    assert by_id["2503.00001"].extra["title_tex"] == r"Echo-E$^3$Net: cardiac echo"
    assert by_id["2503.00002"].title == "Agents Under Siege: x"
    assert by_id["2503.00003"].title == "NO₂ maps over ℝⁿ"
    assert by_id["n1"].title == "Bank pays $5 billion"  # news titles are not TeX
    assert "title_tex" not in by_id["n1"].extra
