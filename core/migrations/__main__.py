"""Draft the next migration: ``python -m core.migrations "what changes"``.

Makes a throwaway SQLite database at the newest revision, lets Alembic's autogenerate compare
it with core/schema.py, and writes ``versions/NNNN_what_changes.py``. Read it and finish it:
autogenerate sees tables and columns, not renames (it drops and adds), data or triggers.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from core import migrations
from core.store import Store


def draft(message: str) -> Path:
    """Write the draft of the next revision; returns its path."""
    number = int(migrations.head()) + 1
    with tempfile.TemporaryDirectory(prefix="veille-draft-") as folder:
        store = Store(f"sqlite:///{Path(folder) / 'head.db'}")
        try:
            from alembic import command  # noqa: PLC0415

            with store.write() as conn:
                script = command.revision(
                    migrations.config(conn),
                    message=message,
                    autogenerate=True,
                    rev_id=f"{number:04d}",
                )
        finally:
            store.close()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        sys.stderr.write('usage: python -m core.migrations "what the migration changes"\n')
        return 2
    sys.stdout.write(f"{draft(argv[0].strip())}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
