"""Shared fixtures: an isolated data directory per test, the real model loaded once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (clone with ../shared beside the repo)")
    return path


def sample_records(n: int, *, start: int = 0) -> list[dict]:
    """The first ``n`` real arXiv records of ../shared/data/arxiv_sample.jsonl (after ``start``)."""
    path = shared_data("arxiv_sample.jsonl")
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < start:
                continue
            if len(out) >= n:
                break
            out.append(json.loads(line))
    return out


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and no stray settings file or env values."""
    for name in list(os.environ):
        if name.startswith("VEILLE_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "veille-data"
    monkeypatch.setenv("VEILLE_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    return data_dir


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    from index.embedder import get_embedder

    return get_embedder()


@pytest.fixture
def settings(isolated_settings: Path):
    from core.settings import load_settings

    return load_settings()


@pytest.fixture
def store(settings):
    from core.store import Store

    s = Store.from_settings(settings)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def keep_main_module():
    """Streamlit's AppTest runs the dashboard script as ``__main__`` and leaves it there; a
    process started later with multiprocessing's "spawn" (the news crawler) would then run
    the dashboard script first. Each test gets back the ``__main__`` it started with."""
    import sys

    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
