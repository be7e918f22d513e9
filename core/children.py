"""Child processes that end with their parent, however the parent ends.

Veille's long-running commands start children: `veille dashboard` runs Streamlit, `veille up`
runs the dashboard and the API (and its first crawls), a news crawl runs Scrapy in its own
process. A parent stopped by a signal it handles (SIGTERM, SIGINT, SIGHUP: see
:func:`stopping_signals`) stops its children itself. A parent killed outright (``kill -9``,
the out-of-memory killer) cannot, so on Linux each child asks the kernel, before it runs its
program, for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``). Elsewhere that
request is skipped and only the handled signals are covered.

The kernel's "parent" is the *thread* that started the child: a bound child started from a
thread that ends first (a Streamlit script run, a scheduler worker) would be stopped with that
thread. So only start bound children from a thread that outlives them; the dashboard's
operator buttons start detached jobs instead (see ``jobs.launch``).

Example::

    process = subprocess.Popen(command, **bound_to_parent())
    with stopping_signals():  # SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does
        process.wait()
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _linux_prctl() -> Any:
    """libc's prctl, looked up once in the parent (never between fork and exec)."""
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _prctl = libc.prctl
            _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
            _prctl.restype = ctypes.c_int
        except (OSError, AttributeError):
            _prctl = False
    return _prctl or None


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGTERM) -> None:
    """In a child: ask for ``sig`` when the parent (``parent_pid``) dies; if it has already
    died (the child was re-parented meanwhile), exit at once. A no-op off Linux."""
    prctl = _linux_prctl()
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, sig, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the request took effect


def bound_to_parent() -> dict[str, Callable[[], None]]:
    """Keyword arguments for ``subprocess.Popen``: the child gets SIGTERM when this process
    dies (Linux), from any cause. Empty elsewhere."""
    if _linux_prctl() is None:
        return {}
    parent = os.getpid()
    return {"preexec_fn": lambda: die_with_parent(parent)}


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


# The signals that stop a parent as Ctrl-C does: a terminal closing sends SIGHUP, `kill` and
# service managers send SIGTERM.
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def stopping_signals(
    handler: Callable[[int, object], None] = _interrupt, *, ctrl_c: bool = False
) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP call ``handler`` (by default: raise
    KeyboardInterrupt, so the code that stops children on Ctrl-C runs for them too). With
    ``ctrl_c``, SIGINT too: Ctrl-C then works even where the process was started with it
    ignored (a shell starts background commands so), and never lands as a KeyboardInterrupt
    in the middle of library code."""
    caught = (signal.SIGINT, *HANDLED) if ctrl_c else HANDLED
    previous = {sig: signal.signal(sig, handler) for sig in caught}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- whose run is it: a process of this host, alive or gone -----------------------------------


def process_tag() -> str:
    """``host:pid`` of this process, as the owner of a run (job runs add thread and nonce)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, ended but not yet reaped, does
    not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux) or gone meanwhile: the kill above said it was there
    return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")


def dead_process(owner: str) -> int | None:
    """The pid of ``owner`` (``host:pid[:...]``) when it ran on this host and that process
    is gone, else None (alive, this very process, another host, or no owner recorded)."""
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    pid = int(parts[1])
    return None if pid == os.getpid() or process_alive(pid) else pid
