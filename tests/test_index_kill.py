"""Killing `veille index` midway, then running it again, ends in a consistent index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.markup import counted
from core.settings import load_settings
from core.store import Store
from index.indexer import embedded_count, index_folder, read_manifest
from index.search import Searcher
from tests.conftest import sample_records

pytestmark = pytest.mark.slow


def veille(*args: str, env: dict[str, str]) -> subprocess.Popen:
    exe = shutil.which("veille", path=str(Path(sys.executable).parent)) or "veille"
    return subprocess.Popen(
        [exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def embeddings_done(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("select count(*) from embeddings").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_during_index_then_resume(
    tmp_path: Path, isolated_settings: Path, real_embedder
) -> None:
    corpus = tmp_path / "c.jsonl"
    records = sample_records(200)
    corpus.write_text(
        "\n".join(json.dumps({**r, "text": r["abstract"]}) for r in records) + "\n", "utf-8"
    )
    env = {**os.environ, "VEILLE_DATA_DIR": str(isolated_settings), "VEILLE_EMBED_CHUNK": "32"}
    assert veille("load", str(corpus), env=env).wait(60) == 0
    db = isolated_settings / "veille.db"

    proc = veille("index", env=env)
    deadline = time.monotonic() + 120
    while embeddings_done(db) < 32 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "index finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    partial = embeddings_done(db)
    assert 32 <= partial < 200

    # The store is intact and usable while the index is behind.
    settings = load_settings(data_dir=str(isolated_settings))
    store = Store.from_settings(settings)
    assert store.count() == 200
    assert read_manifest(index_folder(settings, settings.model)) is None  # never half-written

    rerun = veille("index", env=env)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    # carried on, nothing embedded twice
    assert f"Embedded {counted(200 - partial, 'new text')};" in out
    manifest = read_manifest(index_folder(settings, settings.model))
    assert manifest.count == 200 and manifest.generation == store.generation()
    assert embedded_count(store, settings.model) == 200
    searcher = Searcher.open(settings, store=store, embedder=real_embedder)
    target = records[150]
    assert searcher.search(target["title"], k=1)[0].canonical_id == target["id"]
