"""GDPR erasure across every record Veille keeps, not only the subscriber tables.

``core.subscribers.remove_subscriber`` erases what that module owns (subscription, consent
and send history). An address can also have reached records that other modules own: the
text of a job run's error, written before errors stopped carrying statement parameters, and
the log files of jobs started from the dashboard. This module scrubs those too, replacing
the address with its :func:`~core.subscribers.email_ref`.

Example::

    erase_subscriber(store, settings, "ana@example.com").held  # True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.fsutil import atomic_write
from core.settings import Settings
from core.store import Store
from core.subscribers import email_ref, normalize_email, remove_subscriber
from jobs.runs import scrub_job_runs


@dataclass(slots=True)
class Erasure:
    address: str
    subscriber: bool  # subscription, consent or send history was held and is gone
    job_runs: int  # job-run records scrubbed
    log_files: int  # log files scrubbed

    @property
    def held(self) -> bool:
        return bool(self.subscriber or self.job_runs or self.log_files)


def scrub_log_files(folder: Path, address: str) -> int:
    """Replace ``address`` in the ``*.log`` files under ``folder``; how many changed."""
    if not folder.is_dir():
        return 0
    pattern = re.compile(re.escape(address).encode("utf-8"), re.IGNORECASE)
    replacement = email_ref(address).encode("ascii")
    changed = 0
    for path in sorted(folder.glob("*.log")):
        data = path.read_bytes()
        scrubbed, count = pattern.subn(replacement, data)
        if not count:
            continue
        atomic_write(path, lambda tmp, data=scrubbed: tmp.write_bytes(data))
        changed += 1
    return changed


def erase_subscriber(store: Store, settings: Settings, email: str) -> Erasure:
    """Erase ``email`` everywhere Veille may hold it (ValueError for a malformed address)."""
    address = normalize_email(email)
    held = remove_subscriber(store, address)
    runs = scrub_job_runs(store, address, email_ref(address))
    files = scrub_log_files(Path(settings.data_dir) / "logs", address)
    store.checkpoint()
    return Erasure(address=address, subscriber=held, job_runs=runs, log_files=files)
