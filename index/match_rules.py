"""How one document is matched to sector use cases and techniques: pure functions, no I/O.

Sectors are decided by the learned matcher (index/matcher_model.py): a document fits a sector when
the calibrated probability from its stored vector reaches the sector's threshold; the use
case shown is the one whose own classifier fits best (a use case too new to be learned
competes by its description). Every match keeps its evidence, shown to the user: the
probability and threshold, the similarity to the use case's description, the use case's
keywords found in the document, the nearest examples the team judged or confirmed ("like
2504.01234, which ana confirmed"), and the sentence holding most keywords.

A sector the learned matcher cannot judge yet (one an operator just added, with too few
labels) is scored from its use cases' descriptions and keywords:
``score = 0.7 * dense_part + 0.3 * keyword_part`` in [0, 1], where ``dense_part`` maps the
similarity linearly from ``DENSE_LOW`` (0) to ``DENSE_HIGH`` (1) and ``keyword_part`` grows
with the number of distinct keywords found; a use case needs ``MATCH_THRESHOLD`` and, without
any of its keywords, a similarity of at least ``DENSE_ALONE``. A document that fits nothing
gets nothing; at most ``MAX_MATCHES`` matches are kept.

Techniques are tagged from their aliases in the title and abstract (``LSTM`` -> rnn); a paper
that does not name one is tagged when the learned tagger (a classifier per technique trained
on the judged papers, precision >= 0.85 on validation) says so, or, for a technique it has no
labels for, when the vector is close to the technique's description. Alias matching forgives
a plural ``s`` (``LLMs``, ``diffusion models``) and looks inside hyphenated words
(``CNN-based``, ``GPT-4o``).

index/matching.py runs this over the stored vectors and keeps the results.

    prepared = prepare(taxonomy, embedder)
    matches, tags = match_one(doc, vector, prepared, model, probs)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from core.markup import counted
from core.models import Document, Match, TechniqueTag
from index.embedder import Embedder
from index.feedback import Verdict
from index.keyword import find_phrase, tokenize
from index.matcher_model import TECHNIQUE, MatcherModel
from index.taxonomy import Taxonomy, UseCase

DENSE_LOW = 0.15
DENSE_HIGH = 0.55
MATCH_THRESHOLD = 0.45
DENSE_ALONE = 0.55
MAX_MATCHES = 3
# Use cases with fewer judged or confirmed positives than this keep their description-and-
# keywords rule beside the learned sector classifier (neutral on the judged set, and it lets
# rare use cases such as predictive maintenance be found at all).
RULES_SUPPORT = 20
# The lowest similarity at which a rule can still reach MATCH_THRESHOLD (keyword part = 1).
RULE_MIN_SIMILARITY = DENSE_LOW + (DENSE_HIGH - DENSE_LOW) * (MATCH_THRESHOLD - 0.3) / 0.7
TECH_DENSE_THRESHOLD = 0.50
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_RAW_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


# -- prepared taxonomy -------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """A taxonomy with its vectors and tokenised keywords, built once per process."""

    taxonomy: Taxonomy
    use_cases: tuple[UseCase, ...]
    use_case_vectors: np.ndarray
    use_case_phrases: list[list[tuple[str, tuple[str, ...]]]]
    technique_vectors: np.ndarray
    technique_phrases: list[list[tuple[str, tuple[str, ...]]]]


_prepared: dict[tuple[str, str], Prepared] = {}


def _phrases(words: Iterable[str], *, stem: bool) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for word in words:
        tokens = tuple(tokenize(word)) if stem else tuple(_RAW_TOKEN.findall(word.lower()))
        if tokens:
            out.append((word, tokens))
    return out


def _singular(token: str) -> str:
    """``llms`` -> ``llm``, ``networks`` -> ``network``; ``loss``, ``analysis`` kept as is."""
    if len(token) > 3 and token[-1] == "s" and token[-2] not in "siu":
        return token[:-1]
    return token


def technique_tokens(text: str) -> tuple[list[str], list[str], frozenset[str]]:
    """Two token streams for alias matching: hyphenated words kept whole, and split apart;
    then every token of either, so that most aliases are ruled out by one set lookup."""
    whole = [_singular(t) for t in _RAW_TOKEN.findall(text.lower())]
    parts = [_singular(p) for t in whole for p in t.split("-") if p]
    return whole, parts, frozenset(whole) | frozenset(parts)


def _alias_phrases(aliases: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (word, tuple(_singular(t) for t in tokens))
        for word, tokens in _phrases(aliases, stem=False)
    ]


def _has_alias(
    streams: tuple[list[str], list[str], frozenset[str]], phrase: tuple[str, ...]
) -> bool:
    if phrase[0] not in streams[2]:
        return False
    if len(phrase) == 1:
        return True
    return find_phrase(streams[0], phrase) or find_phrase(streams[1], phrase)


def prepare(taxonomy: Taxonomy, embedder: Embedder) -> Prepared:
    key = (embedder.name, taxonomy.fingerprint)
    if key not in _prepared:
        cases = taxonomy.use_cases
        _prepared[key] = Prepared(
            taxonomy=taxonomy,
            use_cases=cases,
            use_case_vectors=embedder.encode([uc.text for uc in cases]),
            use_case_phrases=[_phrases(uc.keywords, stem=True) for uc in cases],
            technique_vectors=embedder.encode([t.text for t in taxonomy.techniques]),
            technique_phrases=[_alias_phrases(t.aliases) for t in taxonomy.techniques],
        )
    return _prepared[key]


# -- scoring -----------------------------------------------------------------------------


def dense_part(similarity: float) -> float:
    return min(1.0, max(0.0, (similarity - DENSE_LOW) / (DENSE_HIGH - DENSE_LOW)))


def keyword_part(found: int) -> float:
    return 1.0 - math.exp(-found / 1.5)


def _best_passage(sentences: list[str], sentence_tokens: list[list[str]], phrases) -> str:
    best, best_hits = sentences[0] if sentences else "", -1
    for sentence, tokens in zip(sentences, sentence_tokens, strict=True):
        hits = sum(1 for _, p in phrases if find_phrase(tokens, p))
        if hits > best_hits:
            best, best_hits = sentence, hits
    return best if len(best) <= 300 else best[:297].rsplit(" ", 1)[0] + "…"


def _legacy_match(
    doc: Document,
    uc: UseCase,
    sim: float,
    phrases,
    sentences: list[str],
    sentence_tokens: list[list[str]],
    all_tokens: list[str],
    token_set: set[str],
) -> Match | None:
    """Description-and-keywords scoring, for sectors the learned matcher cannot judge yet."""
    found = _found(phrases, token_set, all_tokens)
    score = 0.7 * dense_part(sim) + 0.3 * keyword_part(len(found))
    # Without a single keyword of the use case, only a strong meaning match counts.
    if score < MATCH_THRESHOLD or (not found and sim < DENSE_ALONE):
        return None
    passage = _best_passage(sentences, sentence_tokens, phrases)
    terms = found[:6]
    why = (
        f"Close in meaning to '{uc.name}' (similarity {sim:.2f}); {_shared(terms)}; "
        f"best passage: \u201c{passage}\u201d"
    )
    return Match(
        doc_id=doc.id or 0,
        sector=uc.sector,
        use_case=uc.key,
        score=round(score, 4),
        why=why,
        passage=passage,
        terms=terms,
        similarity=round(float(sim), 4),
    )


def _found(phrases, token_set: set[str], all_tokens: list[str]) -> list[str]:
    """The keywords of a use case that occur in a document."""
    return [word for word, p in phrases if p[0] in token_set and find_phrase(all_tokens, p)]


def _use_case_fit(
    uc: UseCase,
    model: MatcherModel | None,
    probs: dict[str, float],
    sim_of: dict[tuple[str, str], tuple[float, list]],
) -> float:
    """How well a document fits one use case of a sector it fits, in [0, 1]: the use case's
    calibrated probability (for a use case with too few examples to learn from, one an
    operator just added, the probability its description rule gives), or, from a matcher
    file without that rule, its description's similarity mapped to [0, 1]."""
    key = f"{uc.sector}/{uc.key}"
    target = model.targets.get(key) if model else None
    if target is None or not (target.mode == "learned" or target.by_description):
        return dense_part(sim_of[(uc.sector, uc.key)][0])
    return probs.get(key, 0.0)


def _shared(terms: list[str]) -> str:
    return (
        f"shares the terms {', '.join(repr(t) for t in terms)}" if terms else "no keyword in common"
    )


def _example_text(examples: list[tuple[str, str, float]]) -> str:
    parts = []
    for key, origin, _sim in examples:
        kind, _, by = origin.partition(":")
        if kind == "feedback":
            parts.append(f"{key}, which {by or 'your team'} confirmed")
        else:
            parts.append(f"{key}, judged relevant by the team")
    return "; ".join(f"like {p}" for p in parts)


def _sector_verdict(
    answers: dict[tuple[str, str | None], Verdict], sector: str
) -> tuple[Verdict | None, str | None]:
    """The answer that decides whether a document fits ``sector``: the latest of the answers
    about the sector as a whole and the "fits use case U" answers; and that U, if any."""
    deciding = [
        (v, uc) for (sec, uc), v in answers.items() if sec == sector and (uc is None or v.fits)
    ]
    if not deciding:
        return None, None
    verdict, uc = max(deciding, key=lambda item: item[0].when)
    return verdict, uc


def match_one(
    doc: Document,
    vector: np.ndarray,
    prepared: Prepared,
    model: MatcherModel | None = None,
    probs: dict[str, float] | None = None,
    answers: dict[tuple[str, str | None], Verdict] | None = None,
) -> tuple[list[Match], list[TechniqueTag]]:
    """The use-case matches and technique tags of one document (pure, no I/O).

    Sectors the learned ``model`` knows are decided by its calibrated probability (``probs``
    holds this document's probability per target); the others by description and keywords.
    What users answered about this document (``answers``: (sector, use case or None) ->
    verdict, the latest answer winning) overrides both, and says so in the reason.
    """
    title = doc.title.rstrip()
    ending = "" if title.endswith((".", "?", "!")) else "."  # not "Forecasting?."
    sentences = [s for s in _SENTENCE.split(f"{title}{ending} {doc.text}") if s.strip()]
    sentence_tokens = [tokenize(s) for s in sentences]
    all_tokens = [t for ts in sentence_tokens for t in ts]
    token_set = set(all_tokens)
    sims = prepared.use_case_vectors @ vector
    sim_of = {
        (uc.sector, uc.key): (float(sim), phrases)
        for uc, sim, phrases in zip(
            prepared.use_cases, sims.tolist(), prepared.use_case_phrases, strict=True
        )
    }
    probs = probs or {}
    matches = []
    for sector in prepared.taxonomy.sectors:
        verdict, confirmed_uc = _sector_verdict(answers or {}, sector.key)
        if verdict is not None and not verdict.fits:
            continue  # the team said it does not fit
        if verdict is not None:
            uc = next((u for u in sector.use_cases if u.key == confirmed_uc), None) or max(
                sector.use_cases, key=lambda u: _use_case_fit(u, model, probs, sim_of)
            )
            sim, phrases = sim_of[(uc.sector, uc.key)]
            found = _found(phrases, token_set, all_tokens)
            passage = _best_passage(sentences, sentence_tokens, phrases)
            matches.append(
                Match(
                    doc_id=doc.id or 0,
                    sector=sector.key,
                    use_case=uc.key,
                    score=1.0,
                    why=(
                        f"Confirmed: {verdict.text}; use case '{uc.name}', similarity "
                        f"{sim:.2f}; {_shared(found[:6])}; best passage: \u201c{passage}\u201d"
                    ),
                    passage=passage,
                    terms=found[:6],
                    similarity=round(sim, 4),
                )
            )
            continue
        if model is not None and model.learned(sector.key):
            p = probs.get(sector.key, 0.0)
            threshold = model.targets[sector.key].threshold
            if p < threshold:
                # A use case with few examples is barely known to the classifier; its
                # description and keywords stay a second way in (with a reason saying so).
                for uc in sector.use_cases:
                    target = model.targets.get(f"{sector.key}/{uc.key}")
                    if target is not None and target.positives >= RULES_SUPPORT:
                        continue
                    sim, phrases = sim_of[(uc.sector, uc.key)]
                    if sim < RULE_MIN_SIMILARITY:
                        continue  # cannot reach MATCH_THRESHOLD even with many keywords
                    rule = _legacy_match(
                        doc, uc, sim, phrases, sentences, sentence_tokens, all_tokens, token_set
                    )
                    if rule is not None:
                        known = target.positives if target is not None else 0
                        rule.why = (
                            f"Matched by the description and keywords of '{uc.name}': the "
                            f"matcher alone would not show it (sector probability {p:.2f}, "
                            f"threshold {threshold:.2f}), and this use case has "
                            f"{counted(known, 'judged example')} that "
                            f"{'fits' if known == 1 else 'fit'}, fewer than {RULES_SUPPORT}, so "
                            "its description still finds papers too; "
                            + rule.why[0].lower()
                            + rule.why[1:]
                        )
                        matches.append(rule)
                continue

            def fit_of(uc: UseCase) -> float:
                return _use_case_fit(uc, model, probs, sim_of)

            ranked = sorted(sector.use_cases, key=lambda uc: -fit_of(uc))
            chosen = ranked[:1] + [
                uc
                for uc in ranked[1:2]
                if fit_of(uc) >= max(0.5, model.targets[f"{sector.key}/{uc.key}"].threshold)
            ]
            for rank, uc in enumerate(chosen):
                sim, phrases = sim_of[(uc.sector, uc.key)]
                found = _found(phrases, token_set, all_tokens)
                passage = _best_passage(sentences, sentence_tokens, phrases)
                p_uc = fit_of(uc)
                like = _example_text(
                    model.nearest_examples(
                        vector, f"{sector.key}/{uc.key}", exclude=doc.canonical_id, k=2
                    )
                    or model.nearest_examples(vector, sector.key, exclude=doc.canonical_id, k=2)
                )
                uc_part = f"use case '{uc.name}' (fit {p_uc:.2f})"
                why = (
                    f"Fits {sector.name} with probability {p:.2f} (threshold {threshold:.2f}); "
                    f"{uc_part}, similarity {sim:.2f}; {_shared(found[:6])}"
                    + (f"; {like}" if like else "")
                    + f"; best passage: \u201c{passage}\u201d"
                )
                matches.append(
                    Match(
                        doc_id=doc.id or 0,
                        sector=sector.key,
                        use_case=uc.key,
                        score=round(p if rank == 0 else p * p_uc, 4),
                        why=why,
                        passage=passage,
                        terms=found[:6],
                        similarity=round(sim, 4),
                    )
                )
            continue
        for uc in sector.use_cases:
            sim, phrases = sim_of[(uc.sector, uc.key)]
            found_match = _legacy_match(
                doc, uc, sim, phrases, sentences, sentence_tokens, all_tokens, token_set
            )
            if found_match is not None:
                matches.append(found_match)
    matches.sort(key=lambda m: -m.score)
    matches = matches[:MAX_MATCHES]

    title_streams = technique_tokens(doc.title)
    text_streams = technique_tokens(doc.text)
    tech_sims = prepared.technique_vectors @ vector
    tags = []
    for tech, sim, phrases in zip(
        prepared.taxonomy.techniques, tech_sims.tolist(), prepared.technique_phrases, strict=True
    ):
        in_title = [w for w, p in phrases if _has_alias(title_streams, p)]
        in_text = [w for w, p in phrases if _has_alias(text_streams, p)]
        learned = model is not None and model.learned(f"{TECHNIQUE}{tech.key}")
        if in_title or in_text:
            gate = (
                model.targets[f"{TECHNIQUE}{tech.key}"].named_threshold
                if model is not None and learned
                else None
            )
            if gate is not None and probs.get(f"{TECHNIQUE}{tech.key}", 0.0) < gate:
                # Named in passing (a baseline, a word with another sense): the tagger learned
                # from judged papers that naming it is not enough here.
                continue
            score = min(1.0, 0.6 + 0.2 * len(in_title) + 0.1 * len(set(in_text) - set(in_title)))
            named = ", ".join(repr(w) for w in dict.fromkeys(in_title + in_text))
            why = f"mentions {named}"
        elif learned:
            # Not named: the tagger learned from judged papers decides (its threshold for
            # papers that do not name the technique, chosen with the one above for the best F1
            # on validation), in place of the similarity fallback below.
            p = probs.get(f"{TECHNIQUE}{tech.key}", 0.0)
            threshold = model.targets[f"{TECHNIQUE}{tech.key}"].threshold
            if p < threshold:
                continue
            score = round(0.5 * p, 4)
            why = f"not named; learned tagger: probability {p:.2f}, threshold {threshold:.2f}"
        elif sim >= TECH_DENSE_THRESHOLD:
            score = 0.5 * dense_part(sim)
            why = f"close in meaning to '{tech.name}' (similarity {sim:.2f}), not named"
        else:
            continue
        tags.append(TechniqueTag(doc.id or 0, tech.key, round(score, 4), why))
    tags.sort(key=lambda t: -t.score)
    return matches, tags
