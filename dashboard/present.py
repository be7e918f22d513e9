"""How the dashboard shows what index/ returns: colours, table rows, the sector handout.

Pure functions over the plain data of index/reports.py, index/trends.py and core's crawl
runs, kept apart from the pages so they are tested without Streamlit. Row keys are column
headers people read ("last error", "running for"); crawled text stays as it was stored in
rows (a table shows it as text) and is escaped in Markdown (core/markup.py).

    table(trending_rows(view.techniques))
    st.download_button("Handout", items_markdown(items, title="Finance"))
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from core.markup import counted, md_escape, md_link, md_text
from core.models import CrawlRun
from index.reports import SCORE_WORDS, Item
from index.training import MIN_POSITIVES
from index.trends import TrendReport

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


# -- documents ---------------------------------------------------------------------------


def maturity_label(item: Item) -> str:
    """The maturity signals found, for people ("Maturity 2/4: code released, ...")."""
    if not item.maturity_signals:
        return "Maturity: no signal in the text"
    return f"Maturity {len(item.maturity_signals)}/4: " + ", ".join(item.maturity_signals)


def item_row(item: Item) -> dict[str, Any]:
    """One document as a row of a table or of the CSV export."""
    return {
        "sector": item.sector,
        "use_case": item.use_case_name or item.use_case,
        SCORE_WORDS[item.score_kind]: round(item.score, 3),
        "title": item.title,
        "published": item.published or "",
        "kind": item.kind,
        "source": item.source,
        "techniques": ", ".join(item.techniques),
        "maturity": item.maturity,
        "maturity signals": ", ".join(item.maturity_signals),
        "why": item.why,
        "url": item.url,
        "id": item.canonical_id,
    }


def items_markdown(items: list[Item], *, title: str) -> str:
    """A workshop handout: one section per use case, escaped titles, reasons and links."""
    lines = [f"# {md_text(title)}", ""]
    if not items:
        lines.append("No matching innovation yet.")
        return "\n".join(lines) + "\n"
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.use_case_name or item.use_case or "Results"].append(item)
    for name, group in groups.items():
        lines += [f"## {md_text(name)}", ""]
        for item in group:
            date = f" ({item.published})" if item.published else ""
            lines.append(f"- **{md_link(item.title, item.url, escape=md_text)}**{md_text(date)}")
            details = [item.score_text, maturity_label(item)]
            if item.techniques:
                details.append("techniques: " + ", ".join(item.techniques))
            lines.append(f"  - {md_text('; '.join(details))}")
            if item.why:
                lines.append(f"  - Why: {md_text(item.why)}")
        lines.append("")
    return "\n".join(lines)


# -- trends ------------------------------------------------------------------------------


def trending_rows(report: TrendReport | None, limit: int = 10) -> list[dict[str, Any]]:
    """The items to point out: bursts first, then the strongest growth with some volume."""
    if report is None:
        return []
    ranked = sorted(
        (i for i in report.items if i.total > 0),
        key=lambda i: (not i.burst, -(i.recent - i.expected), -i.growth, i.name),
    )
    # Techniques belong to no sector: no empty "sector" column beside them.
    return [
        {
            "name": i.name,
            **({"sector": i.sector_name or i.sector or ""} if report.by != "technique" else {}),
            "last 2 weeks": i.recent,
            "expected": round(i.expected, 1),
            "growth": f"{i.growth:+.0%}",
            "total": i.total,
            "signal": "burst" if i.burst else ("new" if i.new else ""),
        }
        for i in ranked[:limit]
    ]


def series_rows(report: TrendReport) -> list[dict[str, Any]]:
    """Long-format weekly series (week, name, documents, burst) for charts and tables."""
    rows = []
    for item in report.items:
        label = item.label
        for week, count in zip(report.weeks, item.weekly, strict=True):
            rows.append({"week": week, "name": label, "documents": count, "burst": item.burst})
    return rows


# -- crawl runs --------------------------------------------------------------------------


def progress_rows(runs: list[CrawlRun], *, now: datetime) -> list[dict[str, Any]]:
    """Crawls in progress, with their counts so far."""
    return [
        {
            "source": run.source,
            "started": run.started.strftime("%Y-%m-%d %H:%M"),
            "running for": f"{max((now - run.started).total_seconds(), 0) / 60:.0f} min",
            "pages": run.pages,
            "fetched": run.fetched,
            "new": run.new,
            "updated": run.updated,
            "errors": run.errors,
        }
        for run in runs
    ]


def latest_run_rows(runs: list[CrawlRun]) -> list[dict[str, Any]]:
    """The last run of each source, with its last error."""
    return [
        {
            "source": run.source,
            "status": run.status,
            "started": run.started.strftime("%Y-%m-%d %H:%M"),
            "finished": run.finished.strftime("%Y-%m-%d %H:%M") if run.finished else "",
            "fetched": run.fetched,
            "new": run.new,
            "updated": run.updated,
            "errors": run.errors,
            "last error": run.last_error,
        }
        for run in runs
    ]


def run_rows(runs: list[CrawlRun]) -> list[dict[str, Any]]:
    """Recent crawl runs, newest first."""
    return [
        {
            "source": run.source,
            "status": run.status,
            "started": run.started.strftime("%Y-%m-%d %H:%M"),
            "new": run.new,
            "updated": run.updated,
            "errors": run.errors,
        }
        for run in runs
    ]


# -- the matcher -------------------------------------------------------------------------


def _when(stamp: str | None) -> str:
    """ "2026-12-03 16:48 UTC" from a stored ISO time."""
    if not stamp:
        return "never"
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp


def learning_summary(
    status: dict[str, Any], sector: str, name: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """What the Sectors page says about how well the matcher knows ``sector`` (Markdown
    paragraphs), and one table row per use case, from index/learner.py's matcher_status."""
    targets = {t["target"]: t for t in status["targets"]}
    t = targets.get(sector)
    shown = md_escape(name)
    lines = []
    if status["trained_at"] is None or t is None or t["mode"] == "untrained":
        lines.append(
            "The matcher has not been trained yet: it trains at the first indexing "
            "(`veille index`) or with `veille matcher train`."
        )
    elif t["mode"] == "learned":
        lines.append(
            f"Veille learned {shown} from {t['positives']:,} judged documents that fit it and "
            f"{t['negatives']:,} that do not. On documents it did not learn from, it found "
            f"{t['recall']:.0%} of those that fit (recall), and {t['precision']:.0%} of the "
            f"documents it matched did fit (precision). Trained {_when(status['trained_at'])}"
            + (" (the model shipped with Veille)." if status.get("shipped") else ".")
        )
    else:
        lines.append(
            f"Veille has too few judged documents to learn {shown} yet: it matches the sector "
            "by its use cases' descriptions and keywords. Every answer teaches it."
        )
    answers = t["answers"] if t else {}
    fits, not_fit = answers.get("fits", 0), answers.get("does_not_fit", 0)
    if fits + not_fit == 0:
        lines.append(f"Nobody has answered about {shown} yet.")
    else:
        lines.append(
            f"Your team has answered {counted(fits + not_fit, 'time')} about {shown}: {fits} fits, "
            f"{not_fit} does not fit."
        )
    if status["answers"] and status["waiting"]:
        lines.append(
            "New answers count from the next training: the matcher retrains by itself when "
            "answers came in since its last run, or at once with `veille matcher train`."
        )
    elif status["answers"]:
        lines.append("Every answer is already trained on.")
    rows = []
    for key, target in targets.items():
        if not key.startswith(f"{sector}/"):
            continue
        how = {
            "learned": "learned from judged documents",
            "description": f"by its description, until {MIN_POSITIVES} documents are known to fit",
            "fallback": "by its description and keywords",
            "untrained": "not trained yet",
        }.get(target["mode"], target["mode"])
        rows.append(
            {
                "use case": target["name"].split(" › ", 1)[-1],
                "how it is matched": how,
                "documents known to fit": target["positives"],
                "validation F1": "—" if target["f1"] is None else f"{target['f1']:.2f}",
            }
        )
    return lines, rows
