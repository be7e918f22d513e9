"""Technical maturity of an innovation: the second axis project leads judge an idea on.

Relevance says how well a document fits a use case; maturity says how close it is to being
usable: code released, data released, measured on benchmarks, and seen in industry (deployed,
in production, or a news item about a product). Each signal is found in the document's own
text and metadata with plain patterns, so the reason can be shown as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.models import Document

_CODE = re.compile(
    r"github\.com|gitlab\.com|huggingface\.co|code (?:is |will be )?(?:publicly |freely )?"
    r"(?:available|released|open[- ]sourced?)|open[- ]source (?:code|implementation|release)|"
    r"we (?:release|open[- ]source|make available) (?:our |the )?(?:code|implementation|model)",
    re.I,
)
_DATA = re.compile(
    r"(?:datasets?|data|benchmarks?|corpus|corpora) (?:is |are |will be |has been |have been )"
    r"(?:made )?(?:publicly |freely |openly )?(?:available|released)|"
    r"we (?:release|introduce|present) (?:a |an |the )?(?:new |large[- ]scale |public )?"
    r"(?:dataset|benchmark|corpus)",
    re.I,
)
_BENCH = re.compile(r"state[- ]of[- ]the[- ]art|outperform|benchmark|sota\b|baselines?\b", re.I)
_INDUSTRY = re.compile(
    r"\bdeployed\b|deployment (?:in|at|on) |in production\b|production (?:system|environment|"
    r"setting|line)s?|real[- ]world deployment|industrial (?:partner|setting|deployment|"
    r"application|data|case stud)|commercial (?:product|system|deployment|platform)s?|"
    r"\benterprises?\b|pilot (?:study|deployment)",
    re.I,
)

SIGNALS = ("code released", "data released", "benchmarked", "industry use")


@dataclass(slots=True)
class Maturity:
    score: float  # share of the signals found, in [0, 1]
    signals: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if not self.signals:
            return "no maturity signal found"
        return ", ".join(self.signals)


def maturity(doc: Document) -> Maturity:
    """The maturity signals of one document (title, text, arXiv comment, kind)."""
    comment = str((doc.extra or {}).get("comment") or "")
    text = f"{doc.title}\n{doc.text}\n{comment}"
    found = []
    if _CODE.search(text):
        found.append("code released")
    if _DATA.search(text):
        found.append("data released")
    if _BENCH.search(text):
        found.append("benchmarked")
    if doc.kind == "news" or _INDUSTRY.search(text):
        found.append("industry use")
    return Maturity(round(len(found) / len(SIGNALS), 2), found)
