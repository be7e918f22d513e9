"""Shared fixtures: an isolated data directory per test, the real model loaded once.

Test data comes from ``tests/fixtures/`` (written for the tests, always there). Tests whose
point is the real public data of ``../shared/data`` (real arXiv answers, real feeds and pages,
the real arXiv sample) are marked ``realdata``: they run when that directory exists beside the
repository and are deselected, with one line in the report header, when it does not.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def fixture(*parts: str) -> Path:
    """A file under tests/fixtures/."""
    return FIXTURES.joinpath(*parts)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, for tests marked ``realdata`` (only collected when it
    exists). An unmarked test that reads it fails here, rather than skip on a fresh clone."""
    path = SHARED_DATA.joinpath(*parts)
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"{path} is not there: a test that reads ../shared/data must be marked "
            "@pytest.mark.realdata (or use tests/fixtures/)",
            pytrace=False,
        )
    return path


@functools.cache
def _corpus_lines() -> tuple[str, ...]:
    text = fixture("corpus.jsonl").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line.strip())


def sample_records(n: int, *, start: int = 0) -> list[dict]:
    """``n`` arXiv-like records of tests/fixtures/corpus.jsonl from record ``start`` on (the
    fields of ../shared/data/arxiv_sample.jsonl), as new dicts on every call."""
    lines = _corpus_lines()
    if start + n > len(lines):
        raise ValueError(f"corpus.jsonl has {len(lines)} records, not {start + n}")
    return [json.loads(line) for line in lines[start : start + n]]


def corpus_record(record_id: str) -> dict:
    """The record of tests/fixtures/corpus.jsonl with this arXiv id."""
    for line in _corpus_lines():
        record = json.loads(line)
        if record["id"] == record_id:
            return record
    raise KeyError(f"no record {record_id} in tests/fixtures/corpus.jsonl")


def pytest_report_header(config: pytest.Config) -> str:
    if SHARED_DATA.is_dir():
        return f"realdata layer: on ({SHARED_DATA})"
    return "realdata layer: off (../shared/data not found; tests marked realdata deselected)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ../shared/data, the realdata tests are deselected (not skipped one by one)."""
    if SHARED_DATA.is_dir():
        return
    real = [item for item in items if item.get_closest_marker("realdata")]
    if real:
        items[:] = [item for item in items if not item.get_closest_marker("realdata")]
        config.hook.pytest_deselected(items=real)


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


# --- No process left behind ------------------------------------------------------------------
# A test that starts a process must stop it. At the end of the session, every process started
# during it that is still running, and is a descendant of pytest, or mentions this session's
# temporary directory (command line or VEILLE_DATA_DIR), or is a `streamlit run` of this
# repository's dashboard, fails the run: its command line is printed and it is stopped.
# multiprocessing's resource tracker and forkserver are not counted: they end with pytest.

REPO = Path(__file__).resolve().parents[1]
_PROC = Path("/proc")
_ENDS_WITH_PYTEST = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks) of a live process, else None."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def proc_text(pid: int, name: str) -> str:
    try:
        return (_PROC / str(pid) / name).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def leftover_processes(started: set[tuple[int, int]], basetemp: str) -> dict[int, str]:
    """pid -> command line of each process started during the session (not in ``started``,
    keyed by pid and start time) that the session left running."""
    procs = processes()
    children: dict[int, list[int]] = {}
    for pid, (_state, ppid, _start) in procs.items():
        children.setdefault(ppid, []).append(pid)
    descendants, todo = set(), [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in descendants:
                descendants.add(child)
                todo.append(child)
    dashboard = f"streamlit run {REPO / 'dashboard' / 'app.py'}"
    left = {}
    for pid, (state, _ppid, start) in procs.items():
        if pid == os.getpid() or state in ("Z", "X") or (pid, start) in started:
            continue
        cmdline = proc_text(pid, "cmdline").strip()
        if any(mark in cmdline for mark in _ENDS_WITH_PYTEST):
            continue
        environ = proc_text(pid, "environ")
        data_dir = next((v for v in environ.split() if v.startswith("VEILLE_DATA_DIR=")), "")
        ours = (
            pid in descendants
            or basetemp in cmdline
            or basetemp in data_dir
            # someone else's dashboard of this repository (another session) names its own
            # data directory; one with no readable environment is counted
            or (dashboard in cmdline and (not data_dir or basetemp in data_dir))
        )
        if ours:
            left[pid] = cmdline or f"(pid {pid}, no command line)"
    return left


_STARTED = pytest.StashKey[set]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = {(pid, s[2]) for pid, s in processes().items()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415

    started = session.config.stash.get(_STARTED, None)
    if started is None or not _PROC.is_dir():
        return
    # with its slash: pytest-4 is not pytest-42
    basetemp = f"{session.config._tmp_path_factory.getbasetemp()}/"  # noqa: SLF001
    left = leftover_processes(started, basetemp)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{len(left)} process(es) started by the tests are still running:"]
    lines += [f"  pid {pid}: {cmd[:300]}" for pid, cmd in sorted(left.items())]
    for pid in left:  # stop them (these pids only), so the run leaves nothing behind
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        (s := proc_stat(pid)) is not None and s[0] not in "ZX" for pid in left
    ):
        time.sleep(0.05)  # polling the kernel for the processes to end
    lines.append("They were killed. A test must stop every process it starts.")
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True)
    else:
        print("\n".join(lines))  # noqa: T201
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
