"""The `veille` commands as a user types them (in-process, real model, small real corpus)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from jobs.cli import cli
from tests.conftest import sample_records

pytestmark = pytest.mark.slow


@pytest.fixture
def corpus(tmp_path: Path, real_embedder) -> Path:
    path = tmp_path / "sample.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for r in sample_records(40):
            fh.write(json.dumps({**r, "text": r["abstract"], "source": "arxiv"}) + "\n")
        fh.write(
            json.dumps(
                {
                    "id": "https://news.example/ai/lstm-turbines?utm_source=feed",
                    "title": "Wind farm operator predicts turbine failures with LSTM networks",
                    "text": "Recurrent networks trained on vibration sensors estimate remaining "
                    "useful life, so maintenance crews replace gearboxes before they break.",
                    "kind": "news",
                    "source": "Example News",
                    "published": "2025-04-02",
                }
            )
            + "\n"
        )
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_help_describes_every_command() -> None:
    code, out = run("--help")
    assert code == 0
    for name in ("load", "index", "search", "similar", "stats", "up", "crawl"):
        assert name in out
        sub_code, sub_out = run(name, "--help")
        assert sub_code == 0 and "--data-dir" in sub_out, name


def test_load_index_search_json(corpus: Path) -> None:
    assert run("load", str(corpus))[0] == 0
    code, out = run("index")
    assert code == 0 and "41 documents" in out
    code, out = run("search", "LSTM remaining useful life of turbines", "--k", "3", "--json")
    assert code == 0
    hits = json.loads(out)
    assert len(hits) == 3
    assert set(hits[0]) >= {"id", "title", "url", "published", "kind", "source", "score", "snippet"}
    assert hits[0]["id"] == "https://news.example/ai/lstm-turbines"  # canonical URL, no utm_
    assert hits[0]["kind"] == "news" and hits[0]["published"] == "2025-04-02"
    code, out = run("search", "turbine", "--kind", "paper", "--json", "--mode", "keyword")
    assert all(h["kind"] == "paper" for h in json.loads(out))
    code, out = run("search", "neural", "--since", "2030-01-01", "--json")
    assert json.loads(out) == []
    # a source in another case is the stored one; one nobody has is refused, naming those held
    code, out = run("search", "turbine", "--source", "EXAMPLE NEWS", "--json")
    assert code == 0 and {h["source"] for h in json.loads(out)} == {"Example News"}
    wrong = CliRunner().invoke(cli, ["search", "turbine", "--source", "starter"])
    assert wrong.exit_code == 2 and "no stored document has the source 'starter'" in wrong.output
    assert "Example News" in wrong.output and "arxiv" in wrong.output


def test_search_before_anything_is_stored_says_what_to_do(corpus: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "fraud"])
    assert result.exit_code == 1 and "Nothing is stored yet" in result.output
    assert "No results" not in result.output and "model and indexes loaded" not in result.output
    run("load", str(corpus))  # stored, not yet indexed: search brings the index up to date
    result = CliRunner().invoke(cli, ["search", "fraud"])
    assert result.exit_code == 0 and " 1. " in result.output


def test_a_query_nothing_is_about_says_so(corpus: Path) -> None:
    """Results always come back ranked; when none is close in meaning, the reader is told."""
    run("load", str(corpus), "--index")
    code, out = run("search", "chocolate cake recipe", "--k", "3")
    assert code == 0 and "No document is close in meaning to this query" in out
    assert out.index("Note:") < out.index(" 1. ")  # before the results, not lost below them
    hits = json.loads(run("search", "chocolate cake recipe", "--k", "3", "--json")[1])
    assert all(h["similarity"] < 0.28 for h in hits)
    code, out = run("search", "LSTM remaining useful life of turbines", "--k", "3")
    assert code == 0 and "Note:" not in out and "query match" in out
    hits = json.loads(run("search", "LSTM remaining useful life of turbines", "--json")[1])
    assert hits[0]["similarity"] >= 0.28
    keyword = json.loads(run("search", "turbine", "--mode", "keyword", "--json")[1])
    assert keyword and all(h["similarity"] is None for h in keyword)  # meaning not compared
    code, out = run("search", "turbine", "--mode", "keyword", "--k", "2")
    assert "keyword score" in out and "query match" not in out  # BM25: not a 0-1 match
    code, out = run("similar", sample_records(1)[0]["id"], "--k", "2")
    assert "similarity 0." in out and "Note:" not in out


def test_batch_queries_one_line_each(corpus: Path, tmp_path: Path) -> None:
    run("load", str(corpus), "--index")
    queries = tmp_path / "q.txt"
    queries.write_text("turbine failure prediction\n\nimage segmentation\nlanguage models\n")
    code, out = run("search", "--queries", str(queries), "--k", "2", "--json")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3
    assert all(len(json.loads(line)) == 2 for line in lines)
    assert json.loads(lines[0])[0]["title"].startswith("Wind farm operator")
    code, out = run("search", "--queries", str(queries), "--k", "1")
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert headings == [
        "## turbine failure prediction",
        "## image segmentation",
        "## language models",
    ]


def test_similar_and_stats(corpus: Path) -> None:
    run("load", str(corpus), "--index")
    first = sample_records(1)[0]["id"]
    code, out = run("similar", f"{first}v1", "--k", "4", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 4 and first not in {h["id"] for h in hits}
    code, out = run("similar", "0000.00000")
    assert code == 1 and "no document with id" in out
    code, out = run("stats", "--json")
    stats = json.loads(out)
    assert stats["documents"] == 41
    assert stats["by_kind"] == {"paper": 40, "news": 1}
    assert stats["index"]["vectors"] == 41 and stats["index"]["current"]


def test_trends_table_shows_every_name_whole(corpus: Path) -> None:
    run("load", str(corpus), "--index")
    code, out = run("trends", "--until", "2025-06-30", "--no-themes")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("; the last week holds 1 day so far")  # 30 June, a Monday
    header = next(line for line in lines if line.rstrip().endswith("flag"))
    row = next(line for line in lines if line.startswith("Transformers, attention and large"))
    assert row.startswith("Transformers, attention and large language models ")  # not cut
    # every count stands under its heading
    at = header.index("total")
    rows = lines[lines.index(header) + 1 : lines.index(header) + 11]
    assert all(r[at : at + 5].strip().isdigit() for r in rows)
    # below the table, what its columns mean
    legend = " ".join(lines[lines.index(header) + 11 :])
    assert legend.startswith("(growth: ") and "expected: what the series' share" in legend


def test_bad_inputs_get_clear_errors(isolated_settings: Path) -> None:
    code, out = run("search")
    assert code == 2 and "QUERY or --queries" in out
    code, out = run("search", "   ")
    assert code == 2 and "QUERY" in out and "empty or only spaces" in out
    code, out = run("search", "x", "--since", "yesterday")
    assert code == 2 and "not a date" in out
    code, out = run("search", "x", "--mode", "fuzzy")
    assert code == 2


def test_lazy_command_list_matches_the_commands() -> None:
    """The one-line helps shown by `veille --help` (kept apart so that it imports nothing
    heavy) are the commands' own, and every command resolves."""
    from jobs.cli import COMMANDS

    ctx = click.Context(cli)
    for name, (_module, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=200) == short, name
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_loads_no_model_database_or_index() -> None:
    """`veille --help` and every `veille COMMAND [SUBCOMMAND] --help` answer without importing
    torch, FAISS, SQLAlchemy, the scheduler or the index layer (that is what makes them answer
    at once)."""
    script = (
        "import sys\n"
        "import click\n"
        "from click.testing import CliRunner\n"
        "from jobs.cli import COMMANDS, cli\n"
        "ctx = click.Context(cli)\n"
        "paths = [['--help']]\n"
        "for name in COMMANDS:\n"
        "    paths.append([name, '--help'])\n"
        "    command = cli.get_command(ctx, name)\n"
        "    if isinstance(command, click.Group):\n"
        "        for sub in command.list_commands(ctx):\n"
        "            paths.append([name, sub, '--help'])\n"
        "for args in paths:\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0 and 'Usage:' in result.output, (args, result.output)\n"
        "heavy = {'torch', 'faiss', 'sqlalchemy', 'sentence_transformers', 'index', 'scipy',\n"
        "         'apscheduler', 'streamlit', 'fastapi'}\n"
        "print(len(paths), sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    count, loaded = done.stdout.strip().split(" ", 1)
    assert int(count) > 40, done.stdout  # every command and subcommand was asked
    assert loaded == "[]", done.stdout


def test_job_names_of_the_cli_are_the_schedulers() -> None:
    from jobs.cli.jobs import JOB_NAMES
    from jobs.runner import JOBS

    assert JOB_NAMES == tuple(JOBS)
