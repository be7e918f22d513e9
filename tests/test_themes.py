"""Emerging themes: real growth within stable categories, never a change in what is crawled.

Synthetic stores: topics are points in a small vector space (vectors written straight into
the embeddings cache), documents carry arXiv categories, dates are fixed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from core.models import Document
from core.store import Store, documents
from index.theme_growth import stratified_growth
from index.theme_labels import (
    KeyPhrase,
    candidate_phrases,
    compose_label,
    forget_phrase_vectors,
    label_phrases,
    representatives,
    theme_keywords,
    with_keywords,
)
from index.theme_window import Window
from index.themes import shown_documents
from index.trends import emerging_themes
from index.vectors import embeddings

DIM = 32
NOW = datetime(2026, 3, 29, 12, tzinfo=UTC)  # a Sunday: the recent part is 4 full weeks
FIRST = NOW - timedelta(weeks=16)
TOPICS = {
    "vision": ("Convolutional segmentation of street scenes", "semantic segmentation"),
    "speech": ("Speech recognition with noisy microphones", "speech recognition"),
    "graphs": ("Graph neural networks for molecules", "molecular property prediction"),
    "tabular": ("Gradient boosting on tabular records", "tabular classification"),
    "retrieval": ("Dense retrieval for question answering", "passage retrieval"),
    "rl_reasoning": ("Reinforcement learning for LLM reasoning", "mathematical reasoning"),
    "codes": ("Polar codes and channel decoding", "channel decoding"),
}


def _centres(seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in TOPICS:
        v = rng.normal(size=DIM)
        out[name] = v / np.linalg.norm(v)
    return out


def make_docs(
    plan: list[tuple[str, str, int, int]], seed: int = 5
) -> list[tuple[Document, np.ndarray]]:
    """plan: (topic, categories joined by "+" (primary first), documents per week before,
    documents per week in the last 4 weeks)."""
    rng = np.random.default_rng(seed)
    centres = _centres()
    out = []
    for part, (topic, category, before, recent) in enumerate(plan):
        title, task = TOPICS[topic]
        for week in range(16):
            per_week = recent if week >= 12 else before
            for i in range(per_week):
                vec = centres[topic] + 0.35 * rng.normal(size=DIM) / np.sqrt(DIM)
                published = FIRST + timedelta(weeks=week, days=int(rng.integers(0, 6)), hours=1)
                doc = Document(
                    f"{topic}-{category}-{part}-{week}-{i}",
                    f"{title}: variant {part}.{week}.{i}",
                    f"We study {task} with {title.lower()}. Results on benchmark {i} follow.",
                    published=published,
                    categories=category.split("+"),
                    extra={"primary_category": category.split("+")[0]},
                )
                out.append((doc, (vec / np.linalg.norm(vec)).astype(np.float32)))
    return out


def fill(store: Store, pairs: list[tuple[Document, np.ndarray]]) -> None:
    store.upsert([d for d, _ in pairs])
    with store.write() as conn:
        conn.execute(
            embeddings.insert(),
            [
                {"model": f"hash:{DIM}", "content_hash": d.content_hash, "vector": v.tobytes()}
                for d, v in pairs
            ],
        )


@pytest.fixture
def hsettings(settings):
    return settings.model_copy(update={"model": f"hash:{DIM}"})


STABLE = [
    ("vision", "cs.CV", 6, 6),
    ("speech", "cs.CL", 4, 4),
    ("graphs", "cs.LG", 4, 4),
    ("tabular", "cs.LG", 4, 4),
    ("retrieval", "cs.IR", 4, 4),
]


def test_a_topic_growing_within_stable_categories_is_found(store, hsettings) -> None:
    fill(store, make_docs([*STABLE, ("rl_reasoning", "cs.LG", 1, 6)]))
    found = emerging_themes(store, hsettings, now=NOW)
    assert found, found.note
    top = found[0]
    assert all(d.canonical_id.startswith("rl_reasoning") for d in top.documents)
    assert len(top.documents) == 3
    assert top.size >= 20 and top.earlier <= 14 and top.growth >= 1.5 and not top.new
    assert top.p_value < 0.01
    assert "reasoning" in top.label.lower() or "reinforcement" in top.label.lower(), top.label
    assert "recent document" in top.summary and "before" in top.summary
    # keywords come from its titles, never the "variant" every title of the window holds
    assert top.keywords and "variant" not in top.keywords, top.keywords
    assert all(k.lower() in "reinforcement learning for llm reasoning" for k in top.keywords)
    assert top.heading == f"{top.label} ({', '.join(top.keywords)})"
    from jobs.cli.insights import theme_json

    shown = theme_json(top)  # `veille trends --json`: the name and its keywords apart
    assert shown["label"] == top.label and shown["keywords"] == top.keywords
    # nothing else grew
    assert not [t for t in found if not t.documents[0].canonical_id.startswith("rl_reasoning")]


def test_a_crawl_mix_shift_creates_no_theme(store, hsettings) -> None:
    plan = [
        *STABLE,
        # cs.CV is collected three times as much now: its topics do not "grow" within it
        ("vision", "cs.CV", 0, 12),
        # an information-theory category enters the crawl (not ML at all)
        ("codes", "cs.IT", 0, 25),
        # and the same category cross-listed to cs.LG: in scope, but no earlier data in it
        ("codes", "cs.IT+cs.LG", 0, 6),
    ]
    fill(store, make_docs(plan))
    found = emerging_themes(store, hsettings, now=NOW)
    assert found == [], [(t.label, t.size, t.earlier, t.growth) for t in found]
    assert "grew enough" in found.note
    assert any("cs.IT" in change for change in found.crawl_changes), found.crawl_changes


def test_no_earlier_data_means_new_this_period(store, hsettings) -> None:
    plan = [(t, c, 0, r) for t, c, _, r in STABLE]
    fill(store, make_docs(plan))
    found = emerging_themes(store, hsettings, now=NOW)
    assert found
    assert all(t.new and t.growth == 0.0 and t.earlier == 0 for t in found)
    assert all(t.summary.startswith("new this period") for t in found)
    assert "new this period" in found.note


def test_too_few_documents_gives_a_reason(store, hsettings) -> None:
    fill(store, make_docs([("vision", "cs.CV", 3, 2)]))
    found = emerging_themes(store, hsettings, now=NOW)
    assert found == []
    assert found.note.startswith("Too few documents to look for themes: 8 machine-learning")


def _members(store, settings, found) -> list[set[str]]:
    out = []
    for theme in found:
        out.append({d.canonical_id for d in theme.documents} | {theme.label})
    return out


def test_same_data_gives_the_same_themes_even_stored_in_another_order(
    store, hsettings, tmp_path
) -> None:
    pairs = make_docs([*STABLE, ("rl_reasoning", "cs.LG", 1, 6), ("graphs", "cs.CL", 1, 5)])
    fill(store, pairs)
    first = emerging_themes(store, hsettings, now=NOW)
    again = emerging_themes(store, hsettings, now=NOW)
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    fill(other, list(reversed(pairs)))  # other row ids, same documents
    shuffled = emerging_themes(other, hsettings, now=NOW)
    other.close()
    assert first and [t.theme_id for t in first] == [t.theme_id for t in again]
    for run in (again, shuffled):
        for a, b in zip(first, run, strict=True):
            sa = {d.canonical_id for d in a.documents}
            sb = {d.canonical_id for d in b.documents}
            assert a.theme_id == b.theme_id and a.label == b.label
            assert len(sa & sb) / len(sa | sb) >= 0.8


def test_theme_ids_carry_over_and_count_the_weeks(store, hsettings) -> None:
    fill(store, make_docs([*STABLE, ("rl_reasoning", "cs.LG", 1, 6)]))
    extra = make_docs([*STABLE, ("rl_reasoning", "cs.LG", 1, 6)], seed=9)
    # one more week of the same pattern, dated after NOW
    later = []
    for doc, vec in extra:
        if doc.published >= NOW - timedelta(weeks=1):
            moved = Document(
                "next-" + doc.canonical_id,
                "Next week: " + doc.title,
                doc.text,
                published=doc.published + timedelta(weeks=1),
                categories=doc.categories,
                extra=doc.extra,
            )
            later.append((moved, vec))
    fill(store, later)
    this_week = emerging_themes(store, hsettings, now=NOW)
    next_week = emerging_themes(store, hsettings, now=NOW + timedelta(weeks=1))
    assert this_week and next_week
    assert this_week[0].theme_id == next_week[0].theme_id
    assert next_week[0].weeks_running >= 2


def test_growth_test_is_within_strata() -> None:
    # cluster 0 lives in stratum 0, cluster 1 in stratum 1; stratum 1 triples its volume
    assign = np.array([0] * 40 + [1] * 40 + [0] * 10 + [1] * 30)
    strata = np.array([0] * 40 + [1] * 40 + [0] * 10 + [1] * 30)
    recent = np.array([False] * 80 + [True] * 40)
    tests, judged = stratified_growth(assign, strata, recent, ~recent, 2)
    assert judged.all()
    assert not tests[1].passed and tests[1].ratio == pytest.approx(1.0, abs=0.1)


def test_phrases_and_labels() -> None:
    keys = {k for k, _ in candidate_phrases("We propose reinforcement learning for LLM reasoning.")}
    assert "reinforcement learning" in keys and "llm reasoning" in keys
    assert "learning" not in keys and "propose" not in keys
    keys = {k for k, _ in candidate_phrases("Recently, graph neural networks widely used.")}
    assert "graph neural network" in keys and not keys & {"recently", "widely"}
    keys = {k for k, _ in candidate_phrases("Early anomaly detection for the elderly")}
    assert "anomaly detection" in keys and "early anomaly detection" in keys
    keys = {k for k, _ in candidate_phrases("Image demoiréing with HDR fusion")}
    assert "image demoiréing" in keys and "ing" not in keys  # accents do not cut a word
    assert compose_label([]) == "unnamed theme"


def _kp(text: str, score: float, *holders: int) -> KeyPhrase:
    return KeyPhrase(text, score, frozenset(holders))


def test_label_joins_technique_and_task_only_when_papers_share_both() -> None:
    together = [
        _kp("reinforcement learning", 0.9, 0, 1, 2, 3),
        _kp("mathematical reasoning", 0.8, 1, 2, 3),
    ]
    assert compose_label(together) == "reinforcement learning for mathematical reasoning"
    # one paper's technique is not joined to the theme's task ("linear attention for image
    # restoration" over image restoration papers, one of which used linear attention)
    apart = [_kp("image restoration", 0.9, 0, 1, 2, 3, 4), _kp("linear attention", 0.8, 5)]
    assert compose_label(apart) == "image restoration"
    # an acronym of the task is not a technique for it
    rag = [_kp("RAG", 0.9, 0, 1, 2), _kp("retrieval-augmented generation", 0.8, 0, 1, 2)]
    assert compose_label(rag) == "RAG"


def test_one_papers_method_or_an_abstracts_wording_is_not_joined_to_the_task() -> None:
    # "calibration network" is held by 2 of 12 central papers: the theme is radar, not it
    method = [_kp("radar", 0.9, *range(8)), _kp("calibration network", 0.8, 0, 1)]
    assert compose_label(method, 12) == "radar"
    # a task phrase no title uses reads as a piece of a sentence
    sentence = [
        _kp("large language models", 0.9, *range(12)),
        KeyPhrase("translates natural language questions", 0.8, frozenset({0, 1, 2}), False),
        _kp("Text-to-SQL", 0.7, 0, 1, 2, 3),
    ]
    assert compose_label(sentence, 12) == "large language models for Text-to-SQL"


def test_a_broad_technique_alone_gives_way_to_what_its_papers_share() -> None:
    joined = [_kp("large language models", 0.9, *range(10)), _kp("reward modeling", 0.7, 2, 3, 4)]
    assert compose_label(joined) == "large language models for reward modeling"
    task = [_kp("large language models", 0.9, *range(8)), _kp("dialect speech", 0.8, *range(8, 12))]
    assert compose_label(task) == "dialect speech"


def test_a_task_that_studies_a_model_reads_as_such() -> None:
    """A name "LLMs for attacks" reads as using LLMs to attack; the papers attack LLMs."""
    attacks = [_kp("large language models", 0.9, *range(10)), _kp("jailbreak attacks", 0.8, 1, 2)]
    assert compose_label(attacks) == "jailbreak attacks on large language models"
    bias = [_kp("LLMs", 0.9, *range(10)), _kp("gender bias", 0.8, 1, 2, 3)]
    assert compose_label(bias) == "gender bias in LLMs"
    # a way of learning is not a model: RL used for safety stays "for"
    rl = [_kp("reinforcement learning", 0.9, *range(6)), _kp("safety", 0.8, 1, 2, 3)]
    assert compose_label(rl) == "reinforcement learning for safety"
    # "large" or "multimodal" in front of a broad technique leaves it broad
    vlm = [
        _kp("large vision-language models", 0.9, *range(10)),
        _kp("visual token pruning", 0.8, *range(5)),
    ]
    assert compose_label(vlm) == "visual token pruning for large vision-language models"
    assert compose_label(vlm[:1] + [_kp("chart understanding", 0.8, *range(10, 16))]) == (
        "chart understanding"
    )
    # an acronym that spells the task is not a technique for it
    asr = [_kp("ASR models", 0.9, *range(6)), _kp("speech recognition", 0.8, *range(6))]
    assert compose_label(asr) == "ASR models"
    gan = [_kp("generative adversarial networks", 0.9, *range(6)), _kp("GANs", 0.8, *range(6))]
    assert compose_label(gan) == "generative adversarial networks"


def _phrases_of(titles: list[str], centre_text: str, hsettings) -> list[KeyPhrase]:
    """The key phrases of papers with these titles (each abstract repeats its title), around
    the embedding of ``centre_text``."""
    from index.embedder import get_embedder

    docs = [Document(f"p-{i}", t, f"{t}. We study it carefully.") for i, t in enumerate(titles)]
    embedder = get_embedder(hsettings.model)
    return label_phrases(docs, embedder.encode([centre_text])[0], embedder)


def test_abstract_nouns_and_architecture_families_do_not_name_a_theme(hsettings) -> None:
    """Words that fit any subject ("constraints", "layers") are neither a name nor the task
    of one, and a CNN over super-resolution papers is their method, not their topic."""
    titles = [
        "Safe reinforcement learning under constraints",
        "Reinforcement learning with hard constraints for robot navigation",
        "Constraints and rewards in reinforcement learning",
        "Primal-dual reinforcement learning for constraints",
    ]
    phrases = _phrases_of(titles, "constrained RL", hsettings)
    assert "reinforcement learning" in {p.text.lower() for p in phrases}
    assert not any(p.text.lower() in ("constraints", "constraint") for p in phrases)
    assert "constraint" not in compose_label(phrases).lower()
    cnn = [
        _kp("deep convolutional neural networks", 0.9, 2, 9),
        _kp("image restoration", 0.8, 0, 7, 8),
    ]
    assert compose_label(cnn, 12) == "image restoration"
    # a broad technique alone names nothing, even when no task is held as widely
    broad = [
        _kp("deep learning", 0.9, 0, 2, 3, 5, 6, 7, 8),
        _kp("multi-modal medical imaging", 0.8, 3, 9),
    ]
    assert compose_label(broad, 12) == "multi-modal medical imaging"


def test_a_common_word_alone_gives_way_to_a_phrase_its_papers_share() -> None:
    video = KeyPhrase("video coding", 0.6, frozenset({0, 10, 11}), True, 0.001)
    common = KeyPhrase("compression", 0.7, frozenset(range(12)), True, 0.0127)
    assert compose_label([common, video], 12) == "video coding"
    rare = KeyPhrase("garment", 0.7, frozenset(range(12)), True, 0.0016)
    assert compose_label([rare, video], 12) == "garment"
    # a phrase only an abstract's sentence uses, or only one paper shares, does not replace it
    loose = KeyPhrase("video coding", 0.6, frozenset({0, 13}), True, 0.001)
    untitled = KeyPhrase("video coding", 0.6, frozenset({0, 10, 11}), False, 0.001)
    assert compose_label([common, loose], 12) == compose_label([common, untitled], 12)
    assert compose_label([common, untitled], 12) == "compression"
    llm = [_kp("large language models", 0.9, *range(10)), _kp("compression", 0.8, 1, 2, 3)]
    assert compose_label(llm, 12) == "compression of large language models"


def test_keywords_say_what_sets_a_themes_titles_apart() -> None:
    """Keywords come from the theme's titles, weighed by how rare they are in the window's."""
    titles = [
        "Vision-Language-Action Models for Robot Manipulation",
        "Grasping Unknown Objects with Vision-Language-Action Models",
        "Scaling Robot Manipulation Policies with Remote Sensing Priors",
        "Dexterous Grasping from Demonstrations",
        "Language Models for Robot Manipulation",
        "Remote Sensing of Crops",
    ]
    window = Counter()
    for title in titles + ["Large Language Models for Translation"] * 40 + ["Grasping"] * 45:
        window.update({key for key, _ in candidate_phrases(title)})
    window["__total__"] = len(titles) + 85
    words = theme_keywords(titles, window)
    # rare words two titles share, best first; "robot" alone gives way to the phrase it sits in
    assert words[0] == "robot manipulation", words  # three titles hold it, two the others
    assert "remote sensing" in words and "grasping" not in words  # 45 other titles hold it
    assert "sensing" not in words and "robot" not in words
    # vague or generic words never, and no word of the name
    assert not {"models", "language models", "learning"} & set(words)
    named = theme_keywords(titles, window, avoid="robot manipulation")
    assert not any("manipulation" in w or "robot" in w for w in named), named
    assert "remote sensing" in named
    assert with_keywords("robot manipulation", named[:2]) == (
        f"robot manipulation ({named[0]}, {named[1]})"
    )
    assert with_keywords("robot manipulation", []) == "robot manipulation"
    assert theme_keywords(titles[:1], window) == []  # nothing two titles share


def test_the_papers_shown_beside_a_theme_are_those_its_name_speaks_of() -> None:
    """Central documents are numbered most central first; the name's phrases say which of
    them hold it. A reader sees those, then the most central others."""
    tomography = _kp("computed tomography", 0.9, 1, 4, 6, 9)
    assert representatives([tomography], 12) == [1, 4, 6]
    # a joined name: both parts must be held
    rl = _kp("reinforcement learning", 0.9, 0, 2, 3, 5)
    reasoning = _kp("mathematical reasoning", 0.8, 2, 5, 7)
    assert representatives([rl, reasoning], 12) == [2, 5, 0]
    assert representatives([], 12) == [0, 1, 2]
    assert representatives([tomography], 2) == [1, 0]
    # too few central ones hold it: the theme's other papers whose title holds every part
    # come next (numbered after the central ones), before central papers that do not
    more = [
        "Mathematical reasoning benchmarks",
        "Reinforcement Learning Improves Mathematical Reasoning in LLMs",
        "Reinforcement learning for robots",
        "Mathematical Reasoning with Reinforcement Learning from Verifiers",
    ]
    assert representatives([rl, reasoning], 12, more_titles=more) == [2, 5, 13]
    assert representatives([rl, reasoning], 12, k=4, more_titles=more) == [2, 5, 13, 15]
    assert representatives([tomography], 12, more_titles=more) == [1, 4, 6]


def test_labels_never_end_on_an_adjective_or_a_modifier(hsettings) -> None:
    """The words a label is made of end with a noun: no "LLMs for financial", and no
    "low-rank" taken out of "low-rank adaptation"."""
    titles = [
        "Large language models for financial analysis of annual reports",
        "Financial question answering with large language models",
        "Low-rank adaptation of large language models for financial forecasting",
        "Benchmarking large language models on financial analysis",
        "Low-rank adaptation for financial sentiment analysis",
        "Data-driven financial analysis with LLMs",
    ]
    phrases = _phrases_of(titles, "large language models for financial analysis", hsettings)
    texts = {p.text.lower() for p in phrases}
    assert "financial analysis" in texts
    assert "financial" not in texts and "low-rank" not in texts
    assert not any(t.endswith("data-driven") for t in texts)
    label = compose_label(phrases)
    assert not label.lower().endswith(("financial", "low-rank"))
    assert all(p.holders <= set(range(len(titles))) for p in phrases)


def test_phrase_vectors_are_kept_on_disk_for_the_next_run(store, hsettings, monkeypatch) -> None:
    """A second `veille trends` (a new process) does not embed the label phrases again, and a
    damaged cache file only costs the time to embed them."""
    from index.embedder import get_embedder

    fill(store, make_docs([*STABLE, ("rl_reasoning", "cs.LG", 1, 6)]))
    forget_phrase_vectors()  # nothing left from earlier tests
    first = emerging_themes(store, hsettings, now=NOW)
    [cache] = list((hsettings.data_dir / "cache").glob("phrases-*.npz"))

    embedder = get_embedder(hsettings.model)
    encoded: list[str] = []
    real_encode = embedder.encode

    def counting(texts, *args, **kwargs):
        encoded.extend(texts)
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode", counting)
    for damaged in (False, True):
        # as in a new process: nothing in memory
        forget_phrase_vectors()
        if damaged:
            cache.write_bytes(b"not a numpy file")
        encoded.clear()
        again = emerging_themes(store, hsettings, now=NOW)
        assert [t.label for t in again] == [t.label for t in first]
        assert bool(encoded) is damaged, encoded


def test_a_word_any_paper_could_use_is_not_the_task_of_a_broad_technique(hsettings) -> None:
    """ "LLMs for cache" and "large language models for context" told judges nothing: such
    words are no task on their own, though a phrase that holds them ("KV cache") still is."""
    titles = [
        "Large language models with a compressed cache",
        "KV cache quantization for large language models",
        "Context and cache: serving large language models",
        "Evicting the KV cache of large language models under a long context",
    ]
    phrases = _phrases_of(titles, "KV cache compression for LLM inference", hsettings)
    texts = {p.text.lower() for p in phrases}
    assert "kv cache" in texts
    assert not texts & {"cache", "context"}
    assert compose_label(phrases, len(titles)).split(" for ")[-1] not in ("cache", "context")
    # a task that only the first sentences hold, studied in the technique's own papers
    studied = [
        KeyPhrase("large language models", 0.9, frozenset(range(10)), True, 0.0667),
        KeyPhrase("interpretability", 0.8, frozenset({1, 2, 3, 4}), False, 0.0017),
    ]
    assert compose_label(studied, 12) == "interpretability of large language models"
    # unless no title of the window uses it: then the technique alone stays
    rare = [studied[0], KeyPhrase("interpretability", 0.8, frozenset({1, 2, 3, 4}), False, 0.0)]
    assert compose_label(rare, 12) == "large language models"


def test_a_theme_shows_papers_beyond_its_central_ones_that_its_name_speaks_of(store) -> None:
    """Only one of the two central papers holds the name: the next paper shown is the one
    further out whose title holds it, read from the store, and then the other central one."""
    titles = [
        "Graph neural networks for molecules",
        "A survey of chemistry benchmarks",
        "Molecular docking at scale",
        "Message passing: graph neural networks for crystals",
    ]
    store.upsert([Document(f"doc-{i}", t, f"{t}. We study it.") for i, t in enumerate(titles)])
    with store.engine.connect() as conn:
        ids = dict(conn.execute(sa.select(documents.c.canonical_id, documents.c.id)).all())
    order = [ids[f"doc-{i}"] for i in range(4)]
    window = Window(
        ids=np.array(order),
        vectors=np.zeros((4, 2), dtype=np.float32),
        times=np.zeros(4),
        strata=["cs.LG"] * 4,
        canonical=[f"doc-{i}" for i in range(4)],
        titles=titles,
    )
    got = store.get_many(order[:2])
    central_docs = [got[i] for i in order[:2]]
    name = [_kp("graph neural networks", 0.9, 0)]
    shown = shown_documents(store, window, np.arange(4), central_docs, name)
    assert [d.canonical_id for d in shown] == ["doc-0", "doc-3", "doc-1"]
    assert shown[1].title == titles[3]
