"""The sectors, use cases and techniques Veille matches documents against: data, not code.

The shipped file is ``index/data/taxonomy.toml``; settings ``taxonomy_file`` points at an
operator's own. A broken file raises :class:`core.settings.ConfigError` naming the file, the
line and the problem.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from core.settings import ConfigError, Settings

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class UseCase:
    key: str
    sector: str
    name: str
    description: str
    keywords: tuple[str, ...]

    @property
    def text(self) -> str:
        """What is embedded to represent the use case."""
        return f"{self.name}. {self.description} Keywords: {', '.join(self.keywords)}."


@dataclass(frozen=True, slots=True)
class Sector:
    key: str
    name: str
    description: str
    use_cases: tuple[UseCase, ...]


@dataclass(frozen=True, slots=True)
class Technique:
    key: str
    name: str
    description: str
    aliases: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.name}. {self.description}"


@dataclass(frozen=True, slots=True)
class Taxonomy:
    sectors: tuple[Sector, ...]
    techniques: tuple[Technique, ...]
    source: str
    fingerprint: str

    @property
    def use_cases(self) -> tuple[UseCase, ...]:
        return tuple(uc for s in self.sectors for uc in s.use_cases)

    def sector(self, key: str) -> Sector:
        wanted = key.strip().lower()
        for sector in self.sectors:
            if wanted in (sector.key.lower(), sector.name.lower()):
                return sector
        known = ", ".join(s.key for s in self.sectors)
        raise KeyError(f"unknown sector {key!r}; known sectors: {known}")

    def use_case(self, key: str, sector: str | None = None) -> UseCase:
        wanted = key.strip().lower()
        for uc in self.use_cases:
            if sector and uc.sector != sector:
                continue
            if wanted in (uc.key, uc.name.lower()) or wanted.replace(" ", "_") == uc.key:
                return uc
        matches = [uc for uc in self.use_cases if wanted in uc.name.lower()]
        if sector:
            matches = [uc for uc in matches if uc.sector == sector]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(uc.key for uc in self.use_cases if not sector or uc.sector == sector)
        raise KeyError(f"unknown use case {key!r}; known use cases: {known}")

    def technique(self, key: str) -> Technique:
        wanted = key.strip().lower()
        for tech in self.techniques:
            if wanted in (tech.key, tech.name.lower()) or wanted in tech.aliases:
                return tech
        # "machine learning" -> "Machine learning (classic)" when exactly one name contains it
        partial = [t for t in self.techniques if wanted and wanted in t.name.lower()]
        if len(partial) == 1:
            return partial[0]
        known = ", ".join(t.key for t in self.techniques)
        raise KeyError(f"unknown technique {key!r}; known techniques: {known}")


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 0


def _strings(value: Any, where: str, path: str, text: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"{path}, line {_line_of(text, where)}: {where} must be a list of non-empty strings"
        )
    return tuple(v.strip().lower() for v in value)


def parse_taxonomy(text: str, path: str = "taxonomy") -> Taxonomy:
    """Parse and check a taxonomy; errors name the file, the line and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc

    def need(table: dict[str, Any], field: str, what: str) -> str:
        value = table.get(field)
        if not isinstance(value, str) or not value.strip():
            anchor = table.get("key") or table.get("name") or what
            line = _line_of(text, f'"{anchor}"') if isinstance(anchor, str) else 0
            raise ConfigError(f"{path}, line {line}: {what} is missing a non-empty '{field}'")
        return value.strip()

    def key_of(table: dict[str, Any], what: str, seen: set[str]) -> str:
        key = need(table, "key", what)
        line = _line_of(text, f'"{key}"')
        if not _KEY.match(key):
            raise ConfigError(
                f"{path}, line {line}: key {key!r} must use lower-case letters, digits and _"
            )
        if key in seen:
            raise ConfigError(f"{path}, line {line}: key {key!r} is used twice")
        seen.add(key)
        return key

    sectors_raw = data.get("sectors")
    techniques_raw = data.get("techniques")
    if not isinstance(sectors_raw, list) or not sectors_raw:
        raise ConfigError(f"{path}: no [[sectors]] defined")
    if not isinstance(techniques_raw, list) or not techniques_raw:
        raise ConfigError(f"{path}: no [[techniques]] defined")
    seen_sectors: set[str] = set()
    seen_cases: set[str] = set()
    sectors = []
    for raw in sectors_raw:
        key = key_of(raw, "a sector", seen_sectors)
        cases_raw = raw.get("use_cases")
        if not isinstance(cases_raw, list) or not cases_raw:
            line = _line_of(text, f'"{key}"')
            raise ConfigError(f"{path}, line {line}: sector {key!r} has no [[sectors.use_cases]]")
        cases = []
        for case in cases_raw:
            ckey = key_of(case, f"a use case of sector {key!r}", seen_cases)
            cases.append(
                UseCase(
                    key=ckey,
                    sector=key,
                    name=need(case, "name", f"use case {ckey!r}"),
                    description=need(case, "description", f"use case {ckey!r}"),
                    keywords=_strings(case.get("keywords", []), ckey, path, text),
                )
            )
        sectors.append(
            Sector(
                key=key,
                name=need(raw, "name", f"sector {key!r}"),
                description=str(raw.get("description", "")).strip(),
                use_cases=tuple(cases),
            )
        )
    seen_tech: set[str] = set()
    techniques = []
    for raw in techniques_raw:
        key = key_of(raw, "a technique", seen_tech)
        techniques.append(
            Technique(
                key=key,
                name=need(raw, "name", f"technique {key!r}"),
                description=need(raw, "description", f"technique {key!r}"),
                aliases=_strings(raw.get("aliases", []), key, path, text),
            )
        )
    fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return Taxonomy(tuple(sectors), tuple(techniques), path, fingerprint)


_parsed: dict[tuple[str, str], Taxonomy] = {}


def load_taxonomy(settings: Settings) -> Taxonomy:
    """The operator's taxonomy file if configured, else the shipped one.

    Searches, pages and reports all ask for it, so each text is parsed once per process;
    the file itself is read every time, so an edit is seen at once.
    """
    if settings.taxonomy_file:
        path = Path(settings.taxonomy_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read taxonomy file {path} (taxonomy_file): {exc.strerror}"
            ) from exc
        origin = str(path)
    else:
        shipped = resources.files("index") / "data" / "taxonomy.toml"
        text = shipped.read_text(encoding="utf-8")
        origin = "index/data/taxonomy.toml"
    key = (origin, text)
    if key not in _parsed:
        _parsed[key] = parse_taxonomy(text, origin)
    return _parsed[key]
