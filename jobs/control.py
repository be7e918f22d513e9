"""Stopping a running job from outside it: when it loses its lease, or runs past its deadline.

A job runs in a worker thread; :func:`run_controlled` (used by ``jobs.runner.run_job``)
waits for it to end, for its lease to be lost, or for its deadline. To stop it, the job's
control is cancelled: code that loops over units of work calls :func:`checkpoint` between
them (the digest does, between subscribers, so it never stops halfway through a send), and
``JobCancelled`` is also raised inside the worker thread, which interrupts pure-Python code
at its next instruction. Child processes a job registers with :func:`add_child` are killed.
``JobCancelled`` derives from BaseException, so a job's ``except Exception`` cannot swallow it.

A thread blocked inside a C call that never returns cannot be interrupted: after ``grace``
seconds the run is recorded with that fact and abandoned (its lease then expires).

Example::

    result = run_controlled(func, control, timeout=3600)  # JobCancelled when stopped
"""

from __future__ import annotations

import ctypes
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.markup import counted

log = logging.getLogger(__name__)

STOP_GRACE = 30.0  # seconds a cancelled job has to stop before it is abandoned


class JobCancelled(BaseException):
    """Raised inside a job that was stopped; ``outcome`` is cancelled or timeout."""

    def __init__(self, outcome: str = "cancelled", reason: str = "") -> None:
        super().__init__(reason or outcome)
        self.outcome = outcome
        self.reason = reason


@dataclass
class JobControl:
    """What the supervisor and the job share while it runs."""

    name: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""
    reason: str = ""
    children: list[subprocess.Popen] = field(default_factory=list)
    _wake: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self, outcome: str, reason: str) -> None:
        """Ask the job to stop (the first reason given wins)."""
        with self._lock:
            if self.cancelled.is_set():
                return
            self.outcome, self.reason = outcome, reason
            self.cancelled.set()
        self._wake.set()

    def add_child(self, process: subprocess.Popen) -> None:
        """A child process to kill if the job is stopped."""
        with self._lock:
            self.children.append(process)

    def kill_children(self) -> int:
        killed = 0
        with self._lock:
            children = list(self.children)
        for process in children:
            if process.poll() is None:
                process.kill()
                killed += 1
        return killed


_local = threading.local()


def current() -> JobControl | None:
    """The control of the job running in this thread, if any."""
    return getattr(_local, "control", None)


def checkpoint() -> None:
    """Raise JobCancelled when the job running in this thread has been asked to stop."""
    control = current()
    if control is not None and control.cancelled.is_set():
        raise JobCancelled(control.outcome, control.reason)


def add_child(process: subprocess.Popen) -> None:
    """Register a child process of the current job (killed if the job is stopped)."""
    control = current()
    if control is not None:
        control.add_child(process)


def _raise_in(thread: threading.Thread) -> None:
    if thread.ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(JobCancelled)
    )


def run_controlled(
    func: Callable[[], Any],
    control: JobControl,
    *,
    timeout: float | None,
    grace: float = STOP_GRACE,
) -> Any:
    """Run ``func`` in a worker thread under ``control``; return its result or raise what it
    raised. JobCancelled (with outcome and reason) when it was stopped: lease lost (someone
    called ``control.cancel``) or ``timeout`` seconds passed. A job that did not stop within
    ``grace`` seconds is left behind and the reason says so."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def body() -> None:
        _local.control = control
        try:
            checkpoint()
            box["result"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed to the supervisor
            box["error"] = exc
        finally:
            _local.control = None
            done.set()
            control._wake.set()

    worker = threading.Thread(target=body, name=f"job-{control.name}", daemon=True)
    worker.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    while not done.is_set() and not control.cancelled.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            control.cancel("timeout", f"ran past its deadline of {timeout:g} s and was stopped")
            break
        control._wake.wait(remaining)
        control._wake.clear()
    if done.is_set() and not control.cancelled.is_set():
        if "error" in box:
            raise box["error"]
        return box.get("result")
    # Asked to stop: interrupt the job, kill its children, wait a little for it to unwind.
    if not done.is_set():
        _raise_in(worker)
    killed = control.kill_children()
    reason = control.reason
    if killed:
        reason += f"; {counted(killed, 'child process', 'child processes')} killed"
    if not done.wait(grace):
        reason += f"; it did not stop within {grace:g} s and was abandoned"
        log.error("job %s did not stop within %g s", control.name, grace)
        raise JobCancelled(control.outcome, reason)
    error = box.get("error")
    if error is None and "result" in box:
        return box["result"]  # it finished on its own just before it could be stopped
    if error is not None and not isinstance(error, JobCancelled):
        raise error
    raise JobCancelled(control.outcome, reason)
