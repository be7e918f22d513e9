"""Children die with their parent: `veille dashboard`'s Streamlit and `veille up`'s dashboard and
API end when the parent gets SIGTERM, SIGHUP, or kill -9 (Linux: PR_SET_PDEATHSIG); the
session-end check in conftest finds a process a test left behind.

Every wait polls the kernel (/proc) with a bound, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.browser import free_port
from tests.conftest import leftover_processes, proc_stat, proc_text, processes

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")

VEILLE = str(Path(sys.executable).parent / "veille")


def wait_for(condition, *, timeout: float, what: str) -> None:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        pause.wait(0.05)


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its new parent to reap it has ended)."""
    stat = proc_stat(pid)
    return stat is None or stat[0] in ("Z", "X")


def children(pid: int, marker: str) -> list[int]:
    """Live children of ``pid`` whose command line (after exec) contains ``marker``."""
    return [
        child
        for child, (state, ppid, _start) in processes().items()
        if ppid == pid and state not in ("Z", "X") and marker in proc_text(child, "cmdline")
    ]


def stop(process: subprocess.Popen, *pids: int) -> None:
    """Whatever happened in the test, leave nothing running (these processes only)."""
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait(30)


PARENT = """
import subprocess, sys
from core.children import bound_to_parent
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; sys.stdin.read()"],
    stdin=subprocess.PIPE, **bound_to_parent())
print(child.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_bound_child_gets_sigterm_when_its_parent_is_killed_9() -> None:
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    try:
        assert not gone(child)
        parent.kill()  # kill -9: the parent can do nothing; the kernel signals the child
        parent.wait(30)
        wait_for(lambda: gone(child), timeout=30, what=f"the child {child} to end")
    finally:
        stop(parent, child)


def _dashboard(tmp_path: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(VEILLE_DATA_DIR=str(tmp_path / "veille-data"), HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [VEILLE, "dashboard", "--port", str(port)],
        env=env,
        stdout=(tmp_path / "dashboard.log").open("w"),
        stderr=subprocess.STDOUT,
    )


def port_open(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM", "SIGKILL"])
def test_streamlit_ends_with_veille_dashboard(tmp_path: Path, sig: str) -> None:
    port = free_port()
    parent = _dashboard(tmp_path, port)
    streamlit: list[int] = []
    try:
        wait_for(
            lambda: (
                bool(streamlit.extend(children(parent.pid, "streamlit")) or streamlit)
                or parent.poll() is not None
            ),
            timeout=60,
            what="Streamlit to start",
        )
        assert streamlit, (tmp_path / "dashboard.log").read_text()
        wait_for(lambda: port_open(port), timeout=120, what="Streamlit to listen")
        os.kill(parent.pid, getattr(signal, sig))
        parent.wait(60)
        wait_for(lambda: gone(streamlit[0]), timeout=30, what="Streamlit to end")
        # its main thread can end (state Z) while its server thread still closes the socket
        wait_for(lambda: not port_open(port), timeout=30, what="Streamlit to free its port")
    finally:
        stop(parent, *streamlit)
    if sig != "SIGKILL":  # the parent stopped Streamlit itself and said nothing alarming
        assert parent.returncode in (0, 1), (tmp_path / "dashboard.log").read_text()
        assert "Traceback" not in (tmp_path / "dashboard.log").read_text()


@pytest.mark.slow
def test_dashboard_and_api_end_when_veille_up_is_killed_9(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(
        VEILLE_DATA_DIR=str(tmp_path / "veille-data"),
        HF_HUB_OFFLINE="1",
        VEILLE_MODEL="hash:64",  # the cheap embedder: this test is about processes
        VEILLE_FIRST_RUN_CRAWL="false",
        VEILLE_NEWS_DEFAULT_SOURCES="false",
    )
    up = subprocess.Popen(
        [VEILLE, "up", "--no-scheduler", "--port", str(free_port())]
        + ["--api-port", str(free_port())],
        env=env,
        stdout=(tmp_path / "up.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    found: dict[str, list[int]] = {}

    def started() -> bool:
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        found["dashboard"] = children(up.pid, "streamlit")
        found["api"] = children(up.pid, "api --host")
        return bool(found["dashboard"] and found["api"])

    try:
        wait_for(started, timeout=150, what="veille up to start the dashboard and the API")
        up.kill()
        up.wait(30)
        for name, pids in found.items():
            wait_for(lambda p=pids[0]: gone(p), timeout=30, what=f"the {name} to end")
    finally:
        stop(up, *(p for pids in found.values() for p in pids))


def test_the_session_check_finds_a_process_left_running(tmp_path: Path) -> None:
    started = {(pid, s[2]) for pid, s in processes().items()}
    basetemp = f"{tmp_path.parent}/"
    assert leftover_processes(started, basetemp) == {}
    stray = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", str(tmp_path)],
        stdin=subprocess.PIPE,
    )
    try:
        left = leftover_processes(started, basetemp)
        assert list(left) == [stray.pid] and str(tmp_path) in left[stray.pid]
    finally:
        stray.kill()
        stray.wait()
    assert leftover_processes(started, basetemp) == {}
