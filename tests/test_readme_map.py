"""README's "How it is built" names every module of the tree, so a newcomer's map stays true.

A module added, renamed or removed without updating the map fails here with its name.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "crawler", "index", "jobs", "api", "dashboard")


def _map_text() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it is built", 1)[1]
    return section.split("```", 2)[1]


def _named(text: str, package: str) -> tuple[set[str], list[str]]:
    """The file names (and name patterns) the map gives for one package."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{package}/"))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    words = set(re.findall(r"[\w*]+(?:\.py|/)", "\n".join(block)))
    return {w for w in words if "*" not in w}, [w for w in words if "*" in w]


def test_every_module_and_subpackage_is_on_the_map() -> None:
    text = _map_text()
    missing = []
    for package in PACKAGES:
        names, patterns = _named(text, package)
        for path in sorted((ROOT / package).iterdir()):
            if path.name.startswith(("_", ".")) or path.name == "data":
                continue
            if path.is_dir():
                if not any(path.glob("*.py")):
                    continue  # templates, data: not code
                entry = f"{path.name}/"
            elif path.suffix == ".py":
                entry = path.name
            else:
                continue
            if entry not in names and not any(fnmatch.fnmatch(entry, p) for p in patterns):
                missing.append(f"{package}/{entry}")
    assert missing == [], f"README 'How it is built' does not name: {', '.join(missing)}"


def test_the_map_names_no_module_that_is_gone() -> None:
    text = _map_text()
    gone = []
    for package in PACKAGES:
        names, _ = _named(text, package)
        for name in names:
            if name == f"{package}/":
                continue
            if name.endswith(".py") and not any((ROOT / package).rglob(name)):
                gone.append(f"{package}/{name}")
    assert gone == [], f"README 'How it is built' names modules that do not exist: {gone}"
