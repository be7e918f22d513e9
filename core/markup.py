"""Crawled text made inert where people read it: Markdown, links and CSV cells.

A crawled title or abstract is untrusted: in Streamlit Markdown it could hide a link or raw
HTML, in a spreadsheet it could start a formula. These helpers are shared by every place that
shows or exports such text (the dashboard's pages, the Markdown and CSV handouts of the CLI
and the dashboard), so the rules are written once. They know nothing of documents: they take
strings and rows. :func:`counted` lives here too: the one rule for "1 result" / "3 results"
in every sentence shown to people.

    md_escape("<b>x</b>")                   # every markup character backslash-escaped
    md_text("Graph-based fraud (v2).")     # a file's text: only what could form markup
    md_link("Fraud rings", "javascript:x")  # "Fraud rings": an unsafe link is dropped
    md_code("https://x.org/a")              # shown as it is, in code style: never a link
    to_csv([{"title": "=SUM(A1)"}])         # the cell is written '=SUM(A1), not a formula
    counted(2, "entry", "entries")          # "2 entries"; counted(1, "result") is "1 result"
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_escape(text: str | None) -> str:
    """Make untrusted text inert in Streamlit Markdown: no markup, no HTML, no links."""
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
_MD_LINE_START = re.compile(r"^(\d+(?=[.)])|)([#>+=-]|[.)])")


def md_text(text: str | None) -> str:
    """Untrusted text for a Markdown *file* (a workshop handout): as inert as
    :func:`md_escape` in any CommonMark viewer, but readable as plain text.

    Only what can start markup is escaped: emphasis, code, links and images (no ``[`` gets
    through, so no ``](...)`` can follow), raw HTML, tables, strikethrough, entities, and a
    heading, quote, list or setext marker at the start. Dots, dashes and brackets inside a
    sentence stay as they are ("graph-based (v2)." not "graph\\-based \\(v2\\)\\.").
    """
    if not text:
        return ""
    flat = " ".join(str(text).split())
    flat = _MD_ENTITY.sub(r"\\&", _MD_INLINE.sub(r"\\\1", flat))
    return _MD_LINE_START.sub(r"\1\\\2", flat, count=1)


def md_code(text: str | None) -> str:
    """Untrusted text as a Markdown code span: shown exactly as it is, never a link or markup
    (an id that is a URL would otherwise be turned into a link, backslashes included)."""
    flat = " ".join(str(text or "").split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def http_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) link, else None (no javascript:, data:, ...)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in "()<> \"'"):
        return None
    return url.strip()


def md_link(label: str, url: str | None, *, escape: Callable[[str], str] = md_escape) -> str:
    """An escaped Markdown link, or the escaped label alone when the URL is not safe;
    ``escape=md_text`` for a file."""
    target = http_url(url)
    text = escape(label)
    return f"[{text}]({target})" if target else text


def _csv_cell(value: Any) -> Any:
    # A crawled title starting with "=" must not become a spreadsheet formula.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text, the first row's keys as the header; "" when there is no row."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number, for text people read: never a lazy plural.

    counted(1, "result") -> "1 result"; counted(0, "result") -> "0 results";
    counted(2, "entry", "entries") -> "2 entries". ``plural`` is needed only when it is
    not ``noun + "s"``.
    """
    return f"{n} {noun_for(n, noun, plural)}"


def sentence(text: str) -> str:
    """``text`` with its first letter a capital, the rest as it is ("bm25" stays "BM25",
    unlike str.capitalize): a clause written to follow a colon, shown on its own."""
    return text[:1].upper() + text[1:]


def noun_for(n: int, noun: str, plural: str | None = None) -> str:
    """The noun alone in the number ``n`` asks for: "unknown {noun_for(2, 'key')}: a, b"."""
    return noun if n == 1 else plural or noun + "s"


# -- TeX in titles -----------------------------------------------------------------------
# arXiv titles carry inline TeX ("Echo-E$^3$Net", "$\textit{Agents Under Siege}$", "MoS$_2$"):
# about one title in 160 of the sample. Readers see it raw everywhere a title is shown, so
# paper titles are turned into plain Unicode when they are read in (the TeX is kept beside).

_GREEK = (
    "alpha α beta β gamma γ delta δ epsilon ϵ varepsilon ε zeta ζ eta η theta θ vartheta ϑ "
    "iota ι kappa κ lambda λ mu μ nu ν xi ξ pi π rho ρ sigma σ tau τ upsilon υ phi ϕ "
    "varphi φ chi χ psi ψ omega ω Gamma Γ Delta Δ Theta Θ Lambda Λ Xi Ξ Pi Π Sigma Σ "
    "Upsilon Υ Phi Φ Psi Ψ Omega Ω"
)
_SYMBOL = (
    "times × infty ∞ ell ℓ langle ⟨ rangle ⟩ ge ≥ geq ≥ le ≤ leq ≤ neq ≠ approx ≈ sim ∼ "
    "circ ∘ cdot · pm ± exists ∃ forall ∀ in ∈ rightarrow → to → leftarrow ← "
    "Rightarrow ⇒ partial ∂ nabla ∇ sum ∑ prod ∏ star ⋆ dagger † prime ′ emptyset ∅ "
    "cup ∪ cap ∩ oplus ⊕ otimes ⊗ ldots … cdots ⋯ dots …"
)
_TEX_SYMBOLS = dict(zip(*[iter((_GREEK + " " + _SYMBOL).split())] * 2, strict=True))
_DOUBLE_STRUCK = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ", "F": "𝔽"}
_STYLE = (
    "text|textit|textbf|texttt|textsc|textrm|textsf|emph|mathrm|mathbf|mathit|mathsf|mathtt|"
    "mathcal|mathfrak|mathscr|boldsymbol|bm|underline|overline|operatorname|mbox|hat|tilde|bar"
)
_STYLED = re.compile(r"\\(" + _STYLE + r"|mathbb)\s*\{([^{}]*)\}")
_STYLED_BARE = re.compile(r"\\(" + _STYLE + r"|mathbb)\s*([^\s{\\$^_])")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_SCRIPT = re.compile(r"([\^_])\s*(?:\{([^{}]*)\}|(\\[A-Za-z]+|[^\s{}]))")
_SUP_FROM = "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVW*∘′"
_SUP_TO = "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ*°′"
_SUB_FROM = "0123456789+-=()aehijklmnoprstuvx"
_SUB_TO = "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"
_SUPERSCRIPT = str.maketrans(_SUP_FROM, _SUP_TO)
_SUBSCRIPT = str.maketrans(_SUB_FROM, _SUB_TO)
_ESCAPED = re.compile(r"\\([%&_#$ ,;!])")


def _script(match: re.Match) -> str:
    mark, body = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
    table, chars = (_SUPERSCRIPT, _SUP_FROM) if mark == "^" else (_SUBSCRIPT, _SUB_FROM)
    if body and all(ch in chars for ch in body):
        return body.translate(table)
    return mark + body


def _style(match: re.Match) -> str:
    """A styled group's own text (\\textit{Can} -> Can); \\mathbb letters double-struck."""
    if match.group(1) == "mathbb":
        return "".join(_DOUBLE_STRUCK.get(ch, ch) for ch in match.group(2))
    return match.group(2)


def _symbols(text: str) -> str:
    """Greek letters and symbols by name (\\alpha, \\times); other commands are kept."""
    return _COMMAND.sub(lambda m: _TEX_SYMBOLS.get(m.group(1), m.group(0)), text)


def readable_tex(title: str) -> str:
    """``title`` with its inline TeX turned into plain Unicode text.

    "Echo-E$^3$Net" -> "Echo-E³Net"; "$\\textit{Agents Under Siege}$: ..." -> "Agents Under
    Siege: ..."; "MoS$_2$" -> "MoS₂"; "$\\mathbb{R}^n$" -> "ℝⁿ". A title with no ``$`` and no
    backslash comes back unchanged; dollar signs are removed only when they pair up.
    """
    if "$" not in title and "\\" not in title:
        return title
    text = title
    for _ in range(6):  # nested groups, innermost first: $\mathbf{\texttt{D}}$, \frac{x_{i}}{2}
        styled = _STYLED.sub(_style, text)
        styled = _FRAC.sub(r"\1/\2", _SCRIPT.sub(_script, _symbols(styled)))
        if styled == text:
            break
        text = styled
    text = _STYLED_BARE.sub(_style, text)
    text = _ESCAPED.sub(lambda m: "" if m.group(1) in " ,;!" else m.group(1), text)
    text = _SCRIPT.sub(_script, _symbols(text))
    text = _COMMAND.sub(r"\1", text)  # an unknown command: its name
    if text.count("$") % 2 == 0:
        text = text.replace("$", "")
    text = text.replace("{", "").replace("}", "")
    text = re.sub(r"\s+([,.;:!?)])", r"\1", " ".join(text.split()))
    return text
