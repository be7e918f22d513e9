"""Names for emerging themes: noun phrases from the theme's own documents.

Each theme is labelled from its most central documents' noun-phrase-like runs of words,
scored by how close their embedding is to the theme's centre, how many central documents
hold them and how rare they are among all titles of the window. A candidate must end with a
noun and end its run of words at least once, so neither "financial" nor the "low-rank" of
"low-rank adaptation" can name a theme; an adverb never enters one. A technique phrase and a
task phrase are joined ("reinforcement learning for LLM reasoning") only when at least two
central documents hold both, a quarter of them hold the technique (not one paper's method),
and some title holds the task (not a piece of an abstract's sentence); a broad technique
alone ("large language models", "multimodal LLMs", "CNNs") never names a theme: what its
papers share does.
A task that studies a model reads "<task> on/in/of <model>" ("attacks on large language
models"); abstract nouns ("constraints", "layers") name nothing, and a word common in the
window's titles ("compression") gives way to a longer phrase its papers share ("video coding").
:func:`theme_keywords` gives the three words shown after the name, those of the theme's
titles rarest elsewhere in the window ("vision language action models (manipulation, robot,
grasping)"): judged blind, a name with its keywords named its group more often than the name
alone or the keywords alone.
Phrase vectors are remembered for the process and, once :func:`use_phrase_file` is called,
in a file under the data directory, since the same phrases recur week to week.

    phrases = label_phrases(central_docs, centre, embedder, titles_df)
    compose_label(phrases)   # "reinforcement learning for LLM reasoning"
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.models import Document
from core.settings import Settings
from index.keyword import STOPWORDS

log = logging.getLogger(__name__)

# A word starts with a letter, accented ones included ("demoiréing", "Poincaré").
_TOKEN = re.compile(r"[^\W\d_][^\W_]*(?:[-'][^\W_]+)*|[.,;:!?()\[\]]")
# Words that end a noun phrase or never head one in an abstract (verbs, hedges, fillers).
_BREAK = frozenset(
    "propose proposes proposed present presents introduce introduces show shows shown "
    "demonstrate demonstrates achieve achieves achieved improve improves improved use uses "
    "used using based via enable enables leverage leverages leveraging study studies "
    "investigate investigates explore explores address addresses remain remains require "
    "requires provide provides perform performs outperform outperforms existing novel new "
    "first two three several various different recent current significant significantly "
    "extensive experiments results paper work approach approaches method methods framework "
    "frameworks task tasks problem problems performance state art effective "
    "efficient efficiently simple towards toward our their its we this these those such can "
    "may also however while both each other well high large-scale key without within across "
    "between through into over under more most less than further evaluating enhancing "
    "improving leveraging rethinking revisiting unlocking exploring boosting bridging "
    "hinder due critical additional crucial challenging beyond enhance enhances enhanced "
    "boost boosts unlock unlocks diverse remarkable promising often many struggle struggles "
    "capability capabilities remain remaining widely increasingly downstream mitigate "
    "mitigates mitigating analyzing analysing reduce reduces reducing ensure ensures ensuring "
    "assess assesses assessing identify identifies identifying measuring quantifying "
    "benchmarking characterizing characterising examining understood advancements predict "
    "predicts yet".split()
)
# Words that may sit inside a phrase but never name a theme on their own.
_VAGUE = frozenset(
    "language ai image images training efficiency data vision learning computational "
    "capabilities benchmark evaluation large deep neural network multimodal human behavior "
    "dataset scene action detection recognition generation understanding analysis system "
    "accuracy quality robustness information knowledge feature representation application "
    "domain challenge limitation setting scenario real-world time cost baseline "
    "large language model text meaning generalization".split()
)
# Phrases too broad to name a theme; they may still start "<technique> for <task>".
_GENERIC = frozenset(
    {
        "large language model",
        "language model",
        "llm",
        "deep learning",
        "machine learning",
        "neural network",
        "deep neural network",
        "foundation model",
        "transformer",
        "multimodal large language model",
        "multimodal llm",
        "mllm",
        "vision-language model",
        "vision language model",
        "vlm",
        "convolutional neural network",
        "deep convolutional neural network",
        "cnn",
        "deep network",
    }
)
# Phrases that sound specific but name a whole field.
_VAGUE_PHRASES = frozenset(
    {
        "natural language",
        "natural language processing",
        "language processing",
        "large language",
        "computer vision",
        "training data",
        "real-world application",
        "downstream task",
        "diverse domain",
        "artificial intelligence",
        "natural language description",
        "machine learning model",
        "deep learning model",
        "learning model",
    }
)
# Nouns that end like adjectives ("signal", "retrieval"); other words ending so are taken as
# adjectives, which cannot end a name ("large language models for financial").
_NOUNS_LIKE_ADJECTIVES = frozenset(
    "signal retrieval interval trial removal material animal hospital journal terminal manual "
    "potential capital proposal approval arrival survival tutorial rival portal logic music "
    "topic graphic clinic traffic metric rubric epidemic pandemic objective incentive "
    "narrative alternative archive representative initiative perspective directive "
    "detective heuristic mosaic speed seed need feed bed".split()
)
_ADJECTIVE_ENDINGS = ("al", "ic", "ive", "ous", "ful", "less", "able", "ible", "ary", "ed")
# Last parts of hyphenated adjectives ("data-driven", "task-specific").
_COMPOUND_ADJECTIVES = frozenset(
    "driven based aware free guided oriented specific agnostic intensive powered grounded "
    "level scale efficient friendly resolution".split()
)
# Modifiers that leave a broad technique broad ("large vision-language models").
_BROAD_MODIFIERS = frozenset({"large", "multimodal", "pre-trained", "pretrained"})
# A task that studies the technique itself reads "<task> <preposition> <technique>":
# "adversarial attacks on deep neural networks", not "... networks for adversarial attacks".
_STUDIED_AS = {
    **dict.fromkeys(("attack", "jailbreak", "jailbreaking", "backdoor", "poisoning"), "on"),
    **dict.fromkeys(("bias", "hallucination", "unlearning", "memorization", "concept"), "in"),
    **dict.fromkeys(
        (
            "safety",
            "fairness",
            "alignment",
            "interpretability",
            "explainability",
            "evaluation",
            "robustness",
            "inference",
            "calibration",
            "reliability",
            "trustworthiness",
            "compression",
            "acceleration",
            "watermarking",
            "watermark",
        ),
        "of",
    ),
}
# Techniques that are models (which a task can study), as opposed to ways of learning.
_MODEL_HEADS = frozenset(
    "model network transformer llm vlm mllm lmm gnn cnn rnn lstm agent".split()
)
# Words of a broad technique that a task may share ("LLMs for low-resource languages").
_BROAD_WORDS = frozenset({"large", "language", "model"})

# Words ending in -ly that can sit in a name ("anomaly detection", "early fusion").
_LY_NOUNS = frozenset(
    "anomaly assembly family supply monopoly butterfly italy daily weekly monthly yearly "
    "hourly quarterly friendly early elderly lonely holy".split()
)

_TECH_HEADS = frozenset(
    "learning network networks transformer transformers diffusion llm llms model agent agents "
    "policy optimization attention retrieval fine-tuning distillation quantization "
    "reinforcement rl gnn gnns cnn cnns rnn lstm vlm vlms vla mllm mllms rag tuning "
    "pruning adaptation embedding embeddings autoencoder generative contrastive "
    "self-supervised federated sparse mixture-of-experts moe gaussian splatting".split()
)


def candidate_phrases(text: str, *, heads: Counter | None = None) -> list[tuple[str, str]]:
    """(normalised key, surface) of the noun-phrase-like runs of a text, 1 to 4 words.

    ``heads``, when given, counts the phrases that end their run: those that are only ever
    followed by more words ("low-rank" of "low-rank adaptation") modify a noun, not name one.
    """
    out: list[tuple[str, str]] = []
    run: list[str] = []

    def flush() -> None:
        for size in range(1, 5):
            for i in range(len(run) - size + 1):
                words = run[i : i + size]
                if size == 1 and _norm(words[0]) in _TECH_HEADS and words[0].islower():
                    continue  # "learning" alone names nothing
                key = _phrase_key(words)
                out.append((key, " ".join(words)))
                if heads is not None and i + size == len(run):
                    heads[key] += 1
        run.clear()

    for token in _TOKEN.findall(text):
        low = token.lower()
        if not token[0].isalnum() or low in STOPWORDS or low in _BREAK or len(low) < 2:
            flush()
        elif len(low) >= 6 and low.endswith("ly") and low not in _LY_NOUNS:
            flush()  # an adverb ("recently", "widely") is never part of a name
        else:
            run.append(token)
    flush()
    return out


def _phrase_key(words: Sequence[str]) -> str:
    """The key a phrase is counted under: its words normalised, as candidate_phrases gives."""
    return " ".join(_norm(w) for w in words)


def _norm(word: str) -> str:
    low = word.lower()
    return low[:-1] if len(low) > 3 and low.endswith("s") and not low.endswith("ss") else low


# Abstract nouns that fit any subject: never a name or a task on their own
# ("reinforcement learning for constraints", "LLMs for responses", "pruning for layers").
# The last ten are words that judges read as no task at all in "<technique> for X"
# ("LLMs for cache", "deep neural networks for gradients"; rounds 11 to 14 of
# BENCHMARKS.md); inside a phrase they stay ("KV cache", "long context").
_ABSTRACT = frozenset(
    map(
        _norm,
        "constraints responses layers attributes research meaning properties structures "
        "relationships aspects factors patterns components elements mechanisms abilities "
        "nature methodologies outputs inputs insights strategies techniques tools solutions "
        "outcomes principles practices advances trends impact role issues questions theory "
        "survey review overview observations "
        "context cache token gradient evidence user simulation communication semantics "
        "judge".split(),
    )
)


class KeyPhrase(NamedTuple):
    """A candidate name of a theme: its text, its score, which central documents hold it
    (their indices in the list given to :func:`label_phrases`), whether a title does, and
    which share of all the window's titles hold it."""

    text: str
    score: float
    holders: frozenset[int]
    titled: bool = True  # some title holds it (else only an abstract's sentence does)
    title_share: float = 0.0  # share of all the window's titles that hold it


def label_phrases(
    docs: list[Document], centre: np.ndarray, embedder, titles_df: Counter | None = None
) -> list[KeyPhrase]:
    """The theme's key phrases, best first.

    A candidate is a noun-phrase-like run of words from a central document's title or first
    two sentences, found in at least two of them and ending with a noun. Its score adds how
    close its embedding is to the theme's centre, how many central documents hold it, how rare
    it is among all titles of the window (``titles_df``, class-based TF-IDF in spirit), and a
    little for length: a precise phrase ("vision-language-action models") beats a word shared
    by a whole field.
    """
    titles_df = titles_df or Counter()
    total = max(titles_df.get("__total__", 0), 1)
    holders: dict[str, set[int]] = defaultdict(set)
    surface: dict[str, Counter] = defaultdict(Counter)
    heads: Counter = Counter()
    titled: set[str] = set()
    for n, doc in enumerate(docs):
        first = re.split(r"(?<=[.!?])\s+", doc.text, maxsplit=2)[:2]
        found = candidate_phrases(doc.title, heads=heads)
        titled.update(key for key, _ in found)
        found += candidate_phrases(" ".join(first), heads=heads)
        for key, shown in found:
            if key in _VAGUE or key in _VAGUE_PHRASES or key in _ABSTRACT:
                continue
            if not _ends_with_noun(shown):
                continue
            surface[key][_tidy(shown)] += 1
            holders[key].add(n)
    # A phrase that never ends its run of words only modifies the next one.
    for key in [k for k in holders if not heads[k]]:
        del holders[key]
    df = {k: len(v) for k, v in holders.items()}
    floor = 2 if len(docs) >= 4 else 1
    pool = [k for k, n in df.items() if n >= floor] or list(df)
    pool.sort(key=lambda k: (-(df[k] * (1 + 0.5 * (k.count(" ")))), k))
    pool = pool[:20]
    if not pool:
        return []
    shown = [surface[k].most_common(1)[0][0] for k in pool]
    closeness = phrase_vectors(embedder, shown) @ centre.astype(np.float32)
    scored = []
    for key, text, sim in zip(pool, shown, closeness, strict=True):
        freq = df[key] / len(docs)
        rarity = math.log((total + 1) / (titles_df.get(key, 0) + 1)) / math.log(total + 1)
        length = min(key.count(" "), 3)
        score = float(0.45 * sim + 0.35 * freq + 0.2 * rarity + 0.05 * length)
        share = titles_df.get(key, 0) / total
        scored.append(KeyPhrase(text, score, frozenset(holders[key]), key in titled, share))
    scored.sort(key=lambda kp: (-kp.score, kp.text))
    chosen: list[KeyPhrase] = []
    for phrase in scored:
        low = phrase.text.lower()
        if any(low in c.text.lower() or c.text.lower() in low for c in chosen):
            continue
        chosen.append(phrase)
    return chosen


def _initials(phrase: str) -> str:
    return "".join(w[0] for w in re.split(r"[\s-]+", phrase.lower()) if w)


def _spells(tech: str, task: str) -> bool:
    """True when an acronym of ``tech`` ends with the task's initials, or is them: "ASR
    models" and "speech recognition", "GUI agents" and "user interface", "RAG" and
    "retrieval-augmented generation"."""
    initials = _initials(task)
    return len(initials) >= 2 and any(
        w.lower().endswith(initials) and (w.isupper() or w.lower() == initials)
        for w in (t.removesuffix("s") for t in tech.split())
        if len(w) >= 2
    )


def _ends_with_noun(phrase: str) -> bool:
    """False when the phrase's last word reads as an adjective ("financial", "adversarial",
    "data-driven")."""
    last = phrase.split()[-1].lower()
    if last.rsplit("-", 1)[-1] in _COMPOUND_ADJECTIVES and "-" in last:
        return False
    return last in _NOUNS_LIKE_ADJECTIVES or not last.endswith(_ADJECTIVE_ENDINGS)


def _tidy(phrase: str) -> str:
    """Title-case words lowered ("Policy Optimization" -> "policy optimization"); acronyms
    and mixed-case names (LLMs, GPT-4o, CLIP) kept as written."""
    return " ".join(_lowered(w) for w in phrase.split())


def _lowered(word: str) -> str:
    """A title-case word in lower case ("Policy"); an acronym or mixed-case name as it is."""
    return word.lower() if word[:1].isupper() and (word[1:].islower() or len(word) == 1) else word


JOIN_SHARE = 0.25  # the technique of a joined name is held by this share of the documents
# A task only the first sentences hold must still be one some titles of the window use.
LOOSE_TASK_SHARE = 0.001
COMMON_WORD = 0.0025  # a one-word name held by more of the window's titles says too little

_phrase_cache: dict[tuple[str, str], np.ndarray] = {}
# Phrase vectors are also kept on disk (data_dir/cache), so a new process, such as each
# `veille trends`, does not embed again the phrases an earlier one did.
_phrase_file: Path | None = None
_phrase_files_read: set[Path] = set()
_phrase_unsaved: set[str] = set()  # embedder names with phrases not yet on disk
PHRASE_FILE_MAX = 50_000  # phrases kept on disk (about 75 MB of float32 vectors at most)


def use_phrase_file(settings: Settings, embedder) -> None:
    """Keep phrase vectors of ``embedder`` in a file of ``settings.data_dir`` from now on."""
    global _phrase_file
    digest = hashlib.sha1(str(embedder.name).encode()).hexdigest()[:12]
    path = Path(settings.data_dir) / "cache" / f"phrases-{digest}.npz"
    _phrase_file = path
    if path in _phrase_files_read:
        return
    _phrase_files_read.add(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            phrases, vectors = data["phrases"].tolist(), data["vectors"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError) as exc:  # a damaged file is rebuilt as phrases come
        log.warning("ignoring the phrase vector cache %s: %s", path, exc)
        return
    if len(phrases) == len(vectors) and vectors.ndim == 2 and vectors.shape[1] == embedder.dim:
        for phrase, vector in zip(phrases, vectors, strict=True):
            _phrase_cache.setdefault((embedder.name, phrase), vector)


def save_phrase_file() -> None:
    """Write the phrase vectors embedded since the last save (once per theme search)."""
    path = _phrase_file
    if path is None or not _phrase_unsaved:
        return
    name = _phrase_unsaved.pop()
    _phrase_unsaved.clear()
    entries = [(p, v) for (model, p), v in _phrase_cache.items() if model == name]
    entries = entries[-PHRASE_FILE_MAX:]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}-{os.getpid()}.npz")
        np.savez(
            partial,
            phrases=np.array([p for p, _ in entries], dtype=str),
            vectors=np.stack([v for _, v in entries]).astype(np.float32),
        )
        os.replace(partial, path)  # readers see the old file or the new one, never half
    except OSError as exc:  # a cache: themes are still right without it
        log.warning("could not save the phrase vector cache %s: %s", path, exc)


def forget_phrase_vectors() -> None:
    """Drop the phrase vectors kept in memory, as a new process starts (the file stays)."""
    _phrase_cache.clear()
    _phrase_files_read.clear()
    _phrase_unsaved.clear()


def phrase_vectors(embedder, phrases: list[str]) -> np.ndarray:
    """Phrase embeddings, remembered for the process and, after ``use_phrase_file``, on disk
    (the same phrases recur week to week)."""
    missing = [p for p in dict.fromkeys(phrases) if (embedder.name, p) not in _phrase_cache]
    if missing:
        if len(_phrase_cache) > 100_000:
            _phrase_cache.clear()
        for phrase, vector in zip(missing, embedder.encode(missing), strict=True):
            _phrase_cache[(embedder.name, phrase)] = vector
        _phrase_unsaved.add(embedder.name)
    return np.stack([_phrase_cache[(embedder.name, p)] for p in phrases])


def compose_label(phrases: list[KeyPhrase], documents: int | None = None) -> str:
    """Name a theme from its key phrases (best first): the :func:`label_parts` joined."""
    return label_text(label_parts(phrases, documents))


def label_text(parts: list[KeyPhrase]) -> str:
    """The name made of :func:`label_parts`: "<technique> for <task>", "<task> on/in/of
    <technique>" when the task studies a model ("hallucination in large language models"),
    or the one phrase."""
    if len(parts) == 2:
        tech, task = parts
        head = task.text.lower().split()[-1]
        forms = (head, _norm(head), head.removesuffix("es"))  # "bias", "attacks", "biases"
        how = next((_STUDIED_AS[f] for f in forms if f in _STUDIED_AS), None)
        if how and _norm(tech.text.lower().split()[-1]) in _MODEL_HEADS:
            return f"{task.text} {how} {tech.text}"
    return " for ".join(p.text for p in parts) or "unnamed theme"


def label_parts(phrases: list[KeyPhrase], documents: int | None = None) -> list[KeyPhrase]:
    """The one or two key phrases a theme's name is made of (none when there is no phrase).

    "<technique> for <task>" when the best phrases hold a technique and a task that appear
    together in at least two central documents, the technique held by :data:`JOIN_SHARE` of
    the ``documents`` the phrases come from (so the name joins neither two papers' words nor
    one paper's method to the theme's task);
    otherwise the best phrase, unless it is a broad technique ("large language models") and a
    task phrase held as widely can say more.
    """
    if not phrases:
        return []
    top = phrases[:8]

    def words(p: KeyPhrase) -> set[str]:
        return {_norm(w) for w in p.text.lower().split()}

    def together(tech: KeyPhrase, other: KeyPhrase) -> bool:
        wide = len(tech.holders) >= JOIN_SHARE * documents  # not one paper's method
        return len(tech.holders & other.holders) >= need and wide

    if documents is None:
        documents = 1 + max((max(p.holders) for p in phrases if p.holders), default=0)
    need = 2 if max(len(p.holders) for p in top) >= 2 else 1
    best = top[0]
    techs = [p for p in top if words(p) & _TECH_HEADS]
    techs = [p for p in techs if not _broad(p)] + [p for p in techs if _broad(p)]
    # A task joined to a technique must be how some title names a subject, not a piece of an
    # abstract's sentence ("translates natural language questions").
    tasks = [p for p in top if not words(p) & _TECH_HEADS and p.titled]
    for tech in techs:
        for task in tasks[:3]:
            if (words(tech) - _BROAD_WORDS) & words(task) or not together(tech, task):
                continue
            if _spells(tech.text, task.text) or _spells(task.text, tech.text):
                continue  # "RAG for retrieval-augmented generation" says it twice
            if best in (tech, task) or _broad(best):
                return [tech, task]
    if _broad(best):
        specific = next(
            (
                p
                for p in techs
                if not _broad(p) and together(p, best) and not words(p) & words(best)
            ),
            None,
        )  # not "learning models for deep learning"
        if specific is not None:
            return [specific, best]
        if tasks and len(tasks[0].holders) >= len(best.holders) / 2:
            return [_narrower(tasks[0], top)]
        # A broad technique alone names nothing ("deep learning" over MRI papers): the best
        # other phrase that some title uses and two papers hold names the theme instead.
        other = next((p for p in top if not _broad(p) and p.titled and len(p.holders) >= 2), None)
        if other is not None:
            return [_narrower(other, top)]
        # No title names a subject: a task the first sentences share with the technique
        # ("interpretability of large language models"), rather than the technique alone.
        loose = next(
            (
                p
                for p in top
                if not words(p) & _TECH_HEADS
                and len(p.holders) >= 2
                and p.title_share >= LOOSE_TASK_SHARE
                and together(best, p)
            ),
            None,
        )
        if loose is not None:
            return [best, loose]
    return [_narrower(best, top)]


def _broad(p: KeyPhrase) -> bool:
    """A technique too broad to name a theme alone ("large vision-language models" is as
    broad as VLMs)."""
    key = [_norm(w) for w in p.text.lower().split()]
    while len(key) > 1 and key[0] in _BROAD_MODIFIERS:
        key = key[1:]
    return " ".join(key) in _GENERIC


def _narrower(name: KeyPhrase, top: list[KeyPhrase]) -> KeyPhrase:
    """A common one-word name ("segmentation", "compression", "brain": in more than
    :data:`COMMON_WORD` of the window's titles) says too little: the best phrase of several
    words that a title uses and that two of the papers holding the word also hold ("video
    coding") names the theme instead. Rare words ("garment", "radar"), acronyms and names
    (CLIP) stay."""
    if " " in name.text or name.text != name.text.lower() or name.title_share <= COMMON_WORD:
        return name
    return next(
        (
            p
            for p in top
            if " " in p.text and p.titled and len(p.holders & name.holders) >= 2 and not _broad(p)
        ),
        name,
    )


def representatives(
    parts: list[KeyPhrase], documents: int, k: int = 3, more_titles: Sequence[str] = ()
) -> list[int]:
    """Which ``k`` documents to show beside a theme's name, so that the examples a reader sees
    are the ones the name speaks of: the most central documents (indices below ``documents``,
    most central first) that hold every part of the name; then, while fewer than ``k`` do,
    the theme's other documents whose title holds every part (``more_titles``, in order of
    centrality, returned as ``documents + j``); then the most central others."""
    holding = set.intersection(*(set(p.holders) for p in parts)) if parts else set()
    first = [i for i in range(documents) if i in holding][:k]
    if parts and len(first) < k:
        keys = [_phrase_key(p.text.split()) for p in parts]
        for j, title in enumerate(more_titles):
            found = {key for key, _ in candidate_phrases(title)}
            if all(key in found for key in keys):
                first.append(documents + j)
                if len(first) == k:
                    break
    return first + [i for i in range(documents) if i not in first][: k - len(first)]


KEYWORDS = 3  # words shown after a theme's name
# Words too common in paper titles to tell one theme from another, though not vague enough to
# be refused as a name's part.
_PLAIN_KEYWORDS = frozenset(
    map(
        _norm,
        "analysis estimation classification object objects long process case foundation prior "
        "robust safe measures papers labels value values method model models point points "
        "prediction modeling modelling framework study need content step generating".split(),
    )
)


def theme_keywords(
    titles: list[str], titles_df: Counter, avoid: str = "", k: int = KEYWORDS
) -> list[str]:
    """The words and short phrases that set a theme's papers apart, class-based TF-IDF over
    titles: how many of the theme's ``titles`` hold a phrase of one or two words, weighed by
    how rare it is among all the window's titles (``titles_df``). At least two titles must
    hold a keyword, at least twice the share of the window's titles that do, and it must end
    a run of words in one of them (not "multimodal large").
    A word mostly seen inside a two-word phrase gives way to it ("remote sensing", not
    "sensing"). Vague words ("learning", "analysis") and the words of ``avoid`` (the theme's
    name) are left out, and no keyword repeats a word of another. Best first, as written in
    the titles, title case lowered ("histopathology", "whole-slide images", "multi-agent")."""
    total = max(titles_df.get("__total__", 0), 1)
    held: Counter = Counter()
    heads: Counter = Counter()
    surface: dict[str, Counter] = defaultdict(Counter)
    for title in titles:
        seen = set()
        for key, shown in candidate_phrases(title, heads=heads):
            if key.count(" ") > 1 or key in seen:
                continue
            if key in _VAGUE or key in _VAGUE_PHRASES or key in _ABSTRACT or key in _GENERIC:
                continue
            if key in _PLAIN_KEYWORDS or not _ends_with_noun(shown):
                continue
            if any(w.isdigit() for w in key.split()):
                continue
            seen.add(key)
            held[key] += 1
            surface[key][_lower_title_case(shown)] += 1
    pairs = [key for key, n in held.items() if " " in key and n >= 2]
    scored = sorted(
        (
            (n * math.log((total + 1) / (titles_df.get(key, 0) + 1)), key)
            for key, n in held.items()
            if n >= 2
            and n / len(titles) >= 2 * titles_df.get(key, 0) / total  # twice as common here
            and heads[key]
            and not any(key in pair.split() and held[pair] >= 0.6 * n for pair in pairs)
        ),
        key=lambda sk: (-sk[0], sk[1]),
    )
    taken = [w for w in re.split(r"[\s-]+", avoid.lower()) if w]
    out: list[str] = []
    for _, key in scored:
        shown = surface[key].most_common(1)[0][0]
        words = [w for w in re.split(r"[\s-]+", shown.lower()) if w]
        if any(_same_word(w, t) for w in words for t in taken):
            continue
        out.append(shown)
        taken += words
        if len(out) == k:
            break
    return out


def _same_word(a: str, b: str) -> bool:
    """ "watermark" and "watermarking", "bias" and "biases": one word, for keywords."""
    short, long = sorted((a, b), key=len)
    return long.startswith(short) if len(short) >= 4 else a == b


def _lower_title_case(phrase: str) -> str:
    """ "Multi-Agent" -> "multi-agent", "Remote Sensing" -> "remote sensing"; acronyms and
    mixed-case names (LiDAR, SQL, GPT-4o) kept."""
    return " ".join("-".join(_lowered(p) for p in w.split("-")) for w in phrase.split())


def with_keywords(name: str, keywords: list[str]) -> str:
    """A theme's name followed by its keywords: "graph neural networks (traffic, road)"."""
    return f"{name} ({', '.join(keywords)})" if keywords else name
