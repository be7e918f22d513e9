"""The API's JSON shapes (pydantic models), as served in ``/openapi.json``.

A search hit has exactly the fields of ``veille search --json``; a test compares the two.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SectorMatch(BaseModel):
    sector: str = Field(description="Sector key, e.g. finance.")
    use_case: str = Field(description="Use case key within the sector.")
    score: float = Field(description="The matcher's probability; 1.0 when confirmed.")
    why: str = Field(description="Why the document was matched, in words.")


class SearchHit(BaseModel):
    id: str = Field(description="Canonical id: arXiv id, canonical URL or the id given at load.")
    title: str
    url: str
    published: str | None = Field(description="ISO date (or date-time) of publication.")
    kind: str = Field(description="paper or news.")
    source: str
    score: float = Field(
        description="Query match (search: meaning and shared words combined, the best hit "
        "near 1; in keyword mode the BM25 score, on no fixed scale) or similarity (similar: "
        "cosine of the two texts' vectors)."
    )
    similarity: float | None = Field(
        description="Cosine between the query and the document, 0 to 1 in practice; null in "
        "keyword mode. Below 0.28 for every hit: nothing stored is close to the query."
    )
    snippet: str = Field(description="The sentence that fits the query best.")
    sectors: list[SectorMatch]
    techniques: list[str]


class SearchPage(BaseModel):
    query: str
    mode: str
    k: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null at the end.")
    note: str = Field(
        default="",
        description="A warning when no hit is close in meaning to the query (best similarity "
        "below 0.28): the hits are only the nearest documents. Empty otherwise.",
    )
    hits: list[SearchHit]


class SimilarPage(BaseModel):
    id: str
    hits: list[SearchHit]


class DocumentMatch(BaseModel):
    sector: str
    sector_name: str
    use_case: str
    use_case_name: str
    score: float = Field(description="Fit: the matcher's probability; 1.0 when confirmed.")
    why: str
    passage: str
    terms: list[str]


class DocumentTechnique(BaseModel):
    technique: str
    name: str
    score: float = Field(
        description="The tagger's confidence that the text uses the technique, 0 to 1."
    )


class Maturity(BaseModel):
    score: float = Field(description="Share of the maturity signals found, 0 to 1.")
    signals: list[str]


class DocumentOut(BaseModel):
    id: str
    title: str
    url: str
    published: str | None
    kind: str
    source: str
    authors: list[str]
    categories: list[str]
    summary: str
    matches: list[DocumentMatch]
    techniques: list[DocumentTechnique]
    maturity: Maturity


class UseCaseInfo(BaseModel):
    key: str
    name: str
    description: str


class SectorInfo(BaseModel):
    key: str
    name: str
    use_cases: list[UseCaseInfo]


class SectorList(BaseModel):
    sectors: list[SectorInfo]


class UseCaseMatch(BaseModel):
    id: str
    title: str
    url: str
    published: str | None
    score: float = Field(description="Fit: the matcher's probability; 1.0 when confirmed.")
    why: str
    passage: str
    terms: list[str]
    techniques: list[str]


class UseCaseMatches(BaseModel):
    use_case: str
    name: str
    matches: list[UseCaseMatch]


class SectorMatches(BaseModel):
    sector: str
    name: str
    use_cases: list[UseCaseMatches]


class TrendItemOut(BaseModel):
    key: str
    name: str
    sector: str | None
    weekly: list[int]
    total: int
    growth: float
    recent: int
    expected: float
    burst: bool
    burst_p: float
    new: bool


class TrendsOut(BaseModel):
    by: str
    weeks: list[str]
    totals: list[int]
    last_week_days: int = Field(
        7, description="Days of the last week the window covers: under 7, its counts are partial."
    )
    items: list[TrendItemOut]


class ThemeDocument(BaseModel):
    id: str
    title: str


class ThemeOut(BaseModel):
    label: str
    keywords: list[str] = Field(
        default_factory=list, description="Words that set the theme's titles apart."
    )
    terms: list[str]
    size: int
    earlier: int
    growth: float
    documents: list[ThemeDocument]


class ThemesOut(BaseModel):
    themes: list[ThemeOut]
    note: str = Field(
        "", description="Why there is no theme (too few documents, no growth), or what it means."
    )
    crawl_changes: list[str] = Field(
        default_factory=list,
        description="Categories or sources that entered the crawl: reported, never themes.",
    )


class FeedbackIn(BaseModel):
    document: str = Field(min_length=1, max_length=2000, description="Document id or URL.")
    sector: str = Field(min_length=1, max_length=80)
    use_case: str | None = Field(default=None, max_length=120)
    fits: bool = Field(description="true: fits the sector (or use case); false: does not.")
    by: str | None = Field(
        default=None, max_length=200, description="Who answers; defaults to the key's name."
    )


class FeedbackOut(BaseModel):
    id: int
    document: str
    sector: str
    use_case: str | None
    fits: bool
    by: str
    created: str


class Health(BaseModel):
    status: str
    documents: int
    indexed: int
    generation: int


class InvalidParam(BaseModel):
    name: str
    reason: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    invalid_params: list[InvalidParam] | None = None
