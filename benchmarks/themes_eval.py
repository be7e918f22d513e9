"""Emerging themes judged by people: blind theme cards from each method, then the scores.

    .venv/bin/python benchmarks/themes_eval.py --data-dir DIR --dump /work/themes-judging/cards.json
    .venv/bin/python benchmarks/themes_eval.py --score answers_a.json answers_b.json \
        --key /work/themes-judging/cards.json.key.json

DIR is an indexed, matched store of arXiv sample papers published **before 2025-07-01** only
(papers from 2025-07-01 on are held out; the script refuses a window that reaches them).
Windows end on six dates two weeks apart (2025-04-28 ... 2025-06-23, and 2025-06-30); each
has a 4-week recent part and, as baseline, the weeks before it back to the first sample day
(2025-03-18), at most 12 weeks.

Methods, each giving its top 5 themes per window:
- ``old``: the k-means + class-based TF-IDF of the previous release, over every document
  (kept below, unchanged in substance, for this comparison only); its card counts, in both
  periods, the documents within the cluster's radius (25th percentile of its members' cosine);
- ``new``: ``index.trends.emerging_themes`` (scope, growth within strata, key-phrase labels);
- ``bertopic``: BERTopic (UMAP + HDBSCAN + c-TF-IDF, fitted on the stored vectors with
  ``embeddings=``, nothing re-embedded) over the same in-scope documents as ``new``, its topics
  ranked by the same within-strata growth test; labelled with BERTopic's own top 3 topic words
  (English stop words removed, as BERTopic's best practices advise).
  Skipped, with the import error, when the package is not installed.

``--dump`` writes one shuffled JSON list of cards (opaque id, window, label, three
representative titles with their abstract's first sentence, recent and earlier counts and
shares) and, beside it, ``FILE.key.json`` mapping card ids to methods. What ``--dump`` prints
names the method of every theme: keep that log with the key, away from the judges.
Two more ways to dump, for the naming questions: ``--paired --windows DAYS`` names each of the
new method's themes twice (this labeller and PREV_LABELLER's, the latter read from the
repository's history, ``--prev``) and deals the cards into two decks; ``--clusters K
--sample N`` names N of K fresh k-means groups of all pre-July papers in each of
``--namings`` (one deck each), leaving out the groups of earlier rounds (``--exclude``) and,
with ``--kmeans-seed S --unlike K0:S0``, the groups that nearly copy a group of an earlier
round's k-means. Both also write ``FILE.pairs.json``, which ``--score ... --pairs`` reads to
compare the namings theme by theme.

``--score`` reads two judges' answers ``{card_id: {"a": 0/1, "b": 0/1, "c": 0/1}}`` and
prints, per method and question, the precision with a Wilson 95% interval (a card passes only
when both judges say 1; a disagreement counts as not passing) and Cohen's kappa between the
judges.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import random
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import snowballstemmer
import sqlalchemy as sa
from _common import ROOT  # puts the repository on sys.path

from core.settings import load_settings
from core.store import Store, documents
from index import themes as _themes
from index.embedder import get_embedder
from index.keyword import STOPWORDS
from index.theme_growth import stratified_growth
from index.theme_labels import KeyPhrase
from index.theme_window import load_window
from index.themes import find_themes
from index.vectors import vectors_for

HELD_OUT_FROM = datetime(2025, 7, 1, tzinfo=UTC)
FIRST_DAY = datetime(2025, 3, 18, tzinfo=UTC)
WINDOW_ENDS = ["2025-04-28", "2025-05-12", "2025-05-26", "2025-06-09", "2025-06-23", "2025-06-30"]
RECENT_WEEKS = 4
TOP = 5


def window_end(day: str) -> datetime:
    """The last second of ``day`` (UTC): the window includes that day."""
    end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1, seconds=-1)
    if end >= HELD_OUT_FROM:
        sys.exit(f"refused: the window ending {day} reaches held-out papers (from 2025-07-01)")
    return end


def baseline_weeks(end: datetime) -> int:
    recent_from = end - timedelta(weeks=RECENT_WEEKS)
    return max(0, min(12, math.ceil((recent_from - FIRST_DAY).days / 7)))


def windows(days: str):
    """(day, end, baseline weeks, description) of each comma-separated window end day."""
    for day in days.split(","):
        end = window_end(day)
        base = baseline_weeks(end)
        recent_from = end - timedelta(weeks=RECENT_WEEKS, seconds=-1)
        yield day, end, base, f"{recent_from.date()}..{end.date()} (baseline {base} weeks)"


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip(), maxsplit=1)[0][:400]


# -- the previous release's method (for comparison only) -------------------------------------

_stemmer = snowballstemmer.stemmer("english")
_GENERIC = frozenset(
    "model data learn system task perform result base approach framework train dataset "
    "achiev improv effect evalu experi demonstr introduc present work also howev provid "
    "address enabl challeng signific exist novel state art large propos method use show new "
    "paper studi via across outperform high low level process real world applic design "
    "develop analysi general key complex gain suggest keep make need want get take give like "
    "one two first way well better sever differ compar includ known often mani may can "
    "current recent specif import lead focus aim allow offer help build set time".split()
)
_WORD = re.compile(r"[a-z][a-z0-9]+(?:-[a-z0-9]+)*")


def old_themes(store: Store, settings, now: datetime, base_weeks: int) -> list[dict]:
    """k-means of recent documents; growth = recent share / share of the earlier documents
    within the cluster's radius; labels = top class-based TF-IDF terms (previous release)."""
    dim = get_embedder(settings.model, max_chars=settings.embed_max_chars).dim
    recent_from = now - timedelta(weeks=RECENT_WEEKS)
    base_from = recent_from - timedelta(weeks=base_weeks)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents.c.id, documents.c.published).where(
                documents.c.published >= base_from.replace(tzinfo=None),
                documents.c.published <= now.replace(tzinfo=None),
            )
        ).all()
    recent_ids = [r[0] for r in rows if r[1].replace(tzinfo=UTC) >= recent_from]
    earlier_ids = [r[0] for r in rows if r[1].replace(tzinfo=UTC) < recent_from]
    r_ids, r_vecs = vectors_for(store, settings.model, dim, ids=np.array(recent_ids))
    e_ids, e_vecs = (
        vectors_for(store, settings.model, dim, ids=np.array(earlier_ids))
        if earlier_ids
        else (np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))
    )
    k = int(min(12, max(2, round(math.sqrt(len(r_ids) / 2)))))
    kmeans = faiss.Kmeans(dim, k, niter=25, seed=7, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(r_vecs))
    _, assign = kmeans.index.search(r_vecs, 1)
    assign = assign.ravel()
    central = []
    for c in range(k):
        members = r_ids[assign == c]
        centre = kmeans.centroids[c] / (np.linalg.norm(kmeans.centroids[c]) or 1.0)
        if len(members):
            members = members[np.argsort(-(r_vecs[assign == c] @ centre))[:150]]
        central.append(members)
    docs = store.get_many(np.concatenate(central).tolist())
    surface: dict[str, Counter] = defaultdict(Counter)
    tokens = []
    for c in range(k):
        counter: Counter = Counter()
        for i in central[c].tolist():
            counter.update(_old_terms(f"{docs[i].title} {docs[i].text}", surface))
        tokens.append(counter)
    overall: Counter = Counter()
    for counter in tokens:
        overall.update(counter)
    avg = sum(sum(c.values()) for c in tokens) / max(k, 1)
    out = []
    for c in range(k):
        members = r_ids[assign == c]
        if len(members) < 3:
            continue
        centre = kmeans.centroids[c] / (np.linalg.norm(kmeans.centroids[c]) or 1.0)
        radius = float(np.percentile(r_vecs[assign == c] @ centre, 25))
        earlier = int((e_vecs @ centre >= radius).sum()) if len(e_ids) else 0
        growth = (len(members) / len(r_ids)) / ((earlier + 0.5) / (len(e_ids) + 1))
        # The card shows direct counts with one definition in both periods: documents within
        # the cluster's radius. (The ranking above keeps the previous release's formula, which
        # set every recent member against only the earlier documents within the radius.)
        recent_within = int((r_vecs @ centre >= radius).sum())
        scores = {t: n * math.log(1 + avg / overall[t]) for t, n in tokens[c].items() if n >= 2}
        chosen: list[str] = []
        for term, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
            parts = set(term.split())
            if any(parts <= set(x.split()) for x in chosen):
                continue
            chosen = [x for x in chosen if not (" " in term and set(x.split()) <= parts)]
            chosen.append(term)
            if len(chosen) >= 6:
                break
        terms = [surface[t].most_common(1)[0][0] for t in chosen]
        out.append(
            {
                "label": " · ".join(terms[:3]),
                "growth": growth,
                "recent": recent_within,
                "earlier": earlier,
                "recent_total": len(r_ids),
                "earlier_total": len(e_ids),
                "docs": [docs[int(i)] for i in central[c][:3]],
            }
        )
    out.sort(key=lambda t: (-t["growth"], -t["recent"]))
    return [t for t in out if t["growth"] > 1.0][:TOP]


def _old_terms(text: str, surface: dict[str, Counter]) -> set[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 2]
    stems = [_stemmer.stemWord(w) for w in words]
    terms: set[str] = set()
    for i, (word, stem) in enumerate(zip(words, stems, strict=True)):
        if stem in _GENERIC or word in _GENERIC or stem.isdigit():
            continue
        terms.add(stem)
        surface[stem][word] += 1
        if i + 1 < len(words):
            nxt, nstem = words[i + 1], stems[i + 1]
            if nstem not in _GENERIC and nxt not in _GENERIC and not nstem.isdigit():
                terms.add(f"{stem} {nstem}")
                surface[f"{stem} {nstem}"][f"{word} {nxt}"] += 1
    return terms


# -- the new method --------------------------------------------------------------------------


def new_themes(store: Store, settings, now: datetime, base_weeks: int) -> list[dict]:
    found = find_themes(store, settings, now=now, baseline_weeks=base_weeks, limit=TOP)
    return [theme_dict(t) | {"extra": t.summary} for t in found]


# -- the previous labeller (for the paired label comparison only) ----------------------------

PREV_LABELLER = "a5068cc"  # the release whose labels the first judging round found wanting


def previous_labeller(commit: str = PREV_LABELLER):
    """index/theme_labels.py as it was at ``commit``, read from the repository's history
    (so both namings of the very same themes can be judged; nothing is copied)."""
    import subprocess  # noqa: PLC0415
    import types  # noqa: PLC0415

    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:index/theme_labels.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("prev_theme_labels")
    module.__dict__["__name__"] = "prev_theme_labels"
    sys.modules["prev_theme_labels"] = module  # dataclasses and typing look modules up here
    exec(compile(source, f"{commit}:index/theme_labels.py", "exec"), module.__dict__)  # noqa: S102
    return module


# -- BERTopic --------------------------------------------------------------------------------


def bertopic_themes(store: Store, settings, now: datetime, base_weeks: int) -> list[dict]:
    from bertopic import BERTopic  # noqa: PLC0415
    from hdbscan import HDBSCAN  # noqa: PLC0415
    from sklearn.feature_extraction.text import CountVectorizer  # noqa: PLC0415
    from umap import UMAP  # noqa: PLC0415

    dim = get_embedder(settings.model, max_chars=settings.embed_max_chars).dim
    recent_from = now - timedelta(weeks=RECENT_WEEKS)
    start = recent_from - timedelta(weeks=base_weeks)
    window, _ = load_window(store, settings, start, now + timedelta(seconds=1), dim)
    docs = store.get_many(window.ids.tolist())
    texts = [f"{docs[int(i)].title}. {docs[int(i)].text}" for i in window.ids]
    model = BERTopic(
        umap_model=UMAP(n_neighbors=15, n_components=5, metric="cosine", random_state=7),
        hdbscan_model=HDBSCAN(min_cluster_size=10, prediction_data=True),
        # BERTopic's default CountVectorizer keeps English stop words, which then fill topic
        # words ("the · of · and"); its documentation's best practice removes them.
        vectorizer_model=CountVectorizer(stop_words="english", min_df=2, ngram_range=(1, 2)),
        calculate_probabilities=False,
    )
    topics, _ = model.fit_transform(texts, embeddings=window.vectors)
    topics = np.asarray(topics)
    recent = window.times >= recent_from.timestamp()
    earlier = ~recent
    names = sorted(set(window.strata))
    strata_idx = np.array([names.index(s) for s in window.strata])
    valid = topics >= 0
    k = int(topics.max()) + 1 if valid.any() else 0
    if k == 0:
        return []
    assign = np.where(valid, topics, k)  # outliers as one extra group, never reported
    tests, _ = stratified_growth(assign, strata_idx, recent, earlier, k + 1)
    chosen = sorted(
        (c for c in range(k) if tests[c].passed), key=lambda c: (tests[c].p, -tests[c].observed)
    )[:TOP]
    out = []
    for c in chosen:
        words = [w for w, _ in model.get_topic(c)][:3]
        members = np.flatnonzero((topics == c) & recent)
        centre = window.vectors[topics == c].mean(0)
        order = members[np.argsort(-(window.vectors[members] @ centre), kind="stable")][:3]
        out.append(
            {
                "label": " · ".join(words),
                "recent": int(((topics == c) & recent).sum()),
                "earlier": int(((topics == c) & earlier).sum()),
                "recent_total": int(recent.sum()),
                "earlier_total": int(earlier.sum()),
                "docs": [docs[int(window.ids[i])] for i in order],
            }
        )
    return out


# -- dump and score --------------------------------------------------------------------------


def card(
    method: str, window: str, theme: dict, rng: random.Random, taken: dict
) -> tuple[dict, str]:
    recent_total = theme.get("recent_total")
    earlier_total = theme.get("earlier_total")
    recent_share = theme.get("recent_share", theme["recent"] / max(recent_total or 1, 1))
    earlier_share = theme.get("earlier_share", theme["earlier"] / max(earlier_total or 1, 1))
    card_id = f"{rng.getrandbits(32):08x}"
    while card_id in taken:
        card_id = f"{rng.getrandbits(32):08x}"
    return {
        "card_id": card_id,
        "window": window,
        "label": theme["label"],
        "documents": [
            {"title": d.title, "first_sentence": first_sentence(d.text)} for d in theme["docs"]
        ],
        "recent_documents": theme["recent"],
        "earlier_documents": theme["earlier"],
        "recent_share_percent": round(100 * recent_share, 2),
        "earlier_share_percent": round(100 * earlier_share, 2),
    }, card_id


def dump(args: argparse.Namespace) -> None:
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    with store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(documents.c.published))).scalar()
    print(f"store: {args.data_dir} (newest document {newest})")
    methods = {"old": old_themes, "new": new_themes, "bertopic": bertopic_themes}
    try:
        import bertopic  # noqa: F401, PLC0415
    except Exception as exc:  # noqa: BLE001
        print(f"bertopic skipped: {type(exc).__name__}: {exc}")
        methods.pop("bertopic")
    rng = random.Random(args.seed)
    cards, key = [], {}
    for _day, end, base, window in windows(args.windows or ",".join(WINDOW_ENDS)):
        print(f"\n## window {window}")
        for name, method in methods.items():
            t0 = time.perf_counter()
            themes = method(store, settings, end, base)
            took = time.perf_counter() - t0
            print(f"### {name}: {len(themes)} theme(s) in {took:.1f} s")
            for theme in themes:
                c, cid = card(name, window, theme, rng, key)
                cards.append(c)
                key[cid] = name
                print(
                    f"- {theme['label']} | recent {c['recent_documents']} "
                    f"({c['recent_share_percent']}%) vs before {c['earlier_documents']} "
                    f"({c['earlier_share_percent']}%)"
                )
                for d in c["documents"]:
                    print(f"    * {d['title'][:110]}")
    rng.shuffle(cards)
    out = Path(args.dump)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cards, indent=1, ensure_ascii=False), encoding="utf-8")
    Path(f"{out}.key.json").write_text(json.dumps(key, indent=1, sort_keys=True), "utf-8")
    print(f"\n{len(cards)} cards -> {out} (methods: {dict(Counter(key.values()))})")
    print(f"key -> {out}.key.json")


def write_decks(out: Path, decks, key: dict, pairs: dict, rng: random.Random) -> None:
    """Each deck shuffled to OUT_1, OUT_2, ...; the key and the pairs beside OUT."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for n, deck in enumerate(decks, start=1):
        rng.shuffle(deck)
        path = out.with_name(f"{out.stem}_{n}{out.suffix}")
        path.write_text(json.dumps(deck, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"deck {n}: {len(deck)} cards -> {path}")
    Path(f"{out}.key.json").write_text(json.dumps(key, indent=1, sort_keys=True), "utf-8")
    Path(f"{out}.pairs.json").write_text(json.dumps(pairs, indent=1, sort_keys=True), "utf-8")
    print(f"key -> {out}.key.json, pairs -> {out}.pairs.json")


def theme_dict(t, *, keywords: bool = True) -> dict:
    """A theme for a card, named as Veille shows it (with its keywords) or by its name alone."""
    return {
        "label": t.heading if keywords else t.label,
        "recent": t.size,
        "earlier": t.earlier,
        "recent_share": t.recent_share,
        "earlier_share": t.earlier_share,
        "docs": t.documents,
    }


def namer_of(labeller):
    """A labeller module's namer as one call, ``namer(phrases, documents, embedder, vectors,
    members)``: its ``name_parts`` where it has one (e043719 checked a name against the
    window's papers), else its ``label_parts`` (told the number of documents where it takes
    it), else, for the first releases, its composed name as a single part that no paper is
    said to hold (shown, as then, with the three most central papers)."""
    if hasattr(labeller, "name_parts"):
        return labeller.name_parts
    if not hasattr(labeller, "representatives"):
        return lambda phrases, *_: [KeyPhrase(labeller.compose_label(phrases), 0.0, frozenset())]
    takes_count = "documents" in inspect.signature(labeller.label_parts).parameters
    return lambda phrases, documents, *_: (
        labeller.label_parts(phrases, documents) if takes_count else labeller.label_parts(phrases)
    )


JUDGED_WINDOWS = WINDOW_ENDS + [
    "2025-04-21",
    "2025-05-05",
    "2025-05-19",
    "2025-06-02",
    "2025-06-16",
    "2025-06-26",
]  # the window ends of the first and second rounds (their themes were judged)


def other_days(first: str = "2025-04-22", last: str = "2025-06-29") -> str:
    """Every window end day from ``first`` to ``last`` that no round judged."""
    day, end, out = datetime.fromisoformat(first), datetime.fromisoformat(last), []
    while day <= end:
        if day.date().isoformat() not in JUDGED_WINDOWS:
            out.append(day.date().isoformat())
        day += timedelta(days=1)
    return ",".join(out)


def fresh_windows_dump(args: argparse.Namespace) -> None:
    """Emerging themes as Veille shows them, from window ends no round judged, leaving out
    every theme whose recent papers nearly copy (Jaccard >= --max-jaccard) those of a theme
    of the judged windows (their top ``--unlike-top``) or of a theme already drawn. The
    themes left are drawn at random (``--sample``) into one deck; the pairs file names each
    card's window and theme."""
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)

    def top(day: str, limit: int):
        end = window_end(day)
        return find_themes(
            store, settings, now=end, baseline_weeks=baseline_weeks(end), limit=limit
        )

    seen: list[set[int]] = []
    for day in JUDGED_WINDOWS:
        seen += [set(t.member_ids) for t in top(day, args.unlike_top)]
    print(f"{len(seen)} themes of the {len(JUDGED_WINDOWS)} judged windows to stay unlike")

    def copies(members: set[int]) -> bool:
        return any(len(members & s) / len(members | s) >= args.max_jaccard for s in seen)

    fresh = []
    for day, end, base, window in windows(args.windows or other_days()):
        themes = find_themes(store, settings, now=end, baseline_weeks=base, limit=TOP)
        kept = 0
        for t in themes:
            members = set(t.member_ids)
            if not copies(members):
                seen.append(members)
                fresh.append((day, window, t))
                kept += 1
        print(f"{window}: {len(themes)} theme(s), {kept} fresh")
    rng = random.Random(args.seed)
    drawn = rng.sample(fresh, min(args.sample, len(fresh)))
    print(f"\n{len(fresh)} fresh themes; {len(drawn)} drawn")
    deck, key, pairs = [], {}, {}
    for day, window, t in drawn:
        c, cid = card("new", window, theme_dict(t), rng, key)
        deck.append(c)
        key[cid] = "new"
        pairs[f"{day}/{t.theme_id}"] = {"new": cid}
        print(f"- {window}: {t.heading} | {t.size} recent, {t.earlier} before, x{t.growth}")
    write_decks(Path(args.dump), [deck], key, pairs, rng)


def paired_dump(args: argparse.Namespace) -> None:
    """The new method's themes, each named twice (this labeller and PREV_LABELLER's), dealt
    into two decks so that no judge sees the same theme twice: judges A and B take deck 1,
    C and D deck 2."""
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    prev = previous_labeller(args.prev)
    namer = namer_of(prev)

    def prev_label_parts(phrases, documents=None):
        return namer(phrases, documents)

    rng = random.Random(args.seed)
    decks: tuple[list, list] = ([], [])
    key: dict[str, str] = {}
    pairs: dict[str, dict[str, str]] = {}
    for day, end, base, window in windows(args.windows or ",".join(WINDOW_ENDS)):
        now_themes = find_themes(store, settings, now=end, baseline_weeks=base, limit=TOP)
        saved = _themes.label_phrases, _themes.label_parts, _themes.label_text
        _themes.label_parts = prev_label_parts
        _themes.label_phrases = prev.label_phrases
        if hasattr(prev, "representatives"):  # shown as that release showed it
            _themes.label_text = getattr(prev, "label_text", _themes.label_text)
        try:
            prev_themes = find_themes(store, settings, now=end, baseline_weeks=base, limit=TOP)
        finally:
            _themes.label_phrases, _themes.label_parts, _themes.label_text = saved
        print(f"\n## window {window}: {len(now_themes)} theme(s)")
        for new, old in zip(now_themes, prev_themes, strict=True):
            assert new.theme_id == old.theme_id
            first = rng.random() < 0.5
            pair = {}
            for method, theme, deck in (
                ("new", new, 0 if first else 1),
                ("prev-label", old, 1 if first else 0),
            ):
                shown = theme_dict(theme, keywords=method == "new" or not args.prev_bare)
                c, cid = card(method, window, shown, rng, key)
                decks[deck].append(c)
                key[cid] = method
                pair[method] = cid
            pairs[f"{day}/{new.theme_id}"] = pair
            print(f"- new: {new.heading} | previous: {old.label}")
    write_decks(Path(args.dump), decks, key, pairs, rng)


def cluster_dump(args: argparse.Namespace) -> None:
    """Fresh groups of papers for the naming questions (a) and (b): a seeded k-means of every
    in-scope paper before 2025-07-01 into ``--clusters`` groups, ``--sample`` of them drawn at
    random among those with at least 15 papers (leaving out the groups of ``--exclude``, the
    pairs files of earlier rounds on the same groups). Each group gets one card per naming of
    ``--namings``, dealt into as many decks (no judge sees a group twice):
    ``prev`` (the labeller of ``--prev``, shown as that release showed it), ``new-central``
    (this labeller's name, the 3 most central papers) and ``new`` (this labeller's name, shown
    with the central papers that hold it, as Veille shows it)."""
    from index import theme_labels  # noqa: PLC0415
    from index.theme_labels import (  # noqa: PLC0415
        label_phrases,
        label_text,
        theme_keywords,
        with_keywords,
    )
    from index.theme_window import background  # noqa: PLC0415
    from index.themes import CENTRAL_DOCS, shown_documents  # noqa: PLC0415

    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    embedder = get_embedder(settings.model, max_chars=settings.embed_max_chars)
    window, _ = load_window(
        store, settings, FIRST_DAY - timedelta(days=1), HELD_OUT_FROM, embedder.dim
    )

    def partition(k: int, seed: int) -> np.ndarray:
        kmeans = faiss.Kmeans(embedder.dim, k, niter=25, seed=seed, spherical=True, verbose=False)
        kmeans.train(window.vectors)
        return kmeans.index.search(window.vectors, 1)[1].ravel()

    assign = partition(args.clusters, args.kmeans_seed)
    sizes = np.bincount(assign, minlength=args.clusters)
    rng = random.Random(args.seed)
    done = set()
    for path in (args.exclude or "").split(","):
        if path:
            done |= set(json.loads(Path(path).read_text("utf-8")))
    eligible = [c for c in range(args.clusters) if sizes[c] >= 15 and f"group-{c}" not in done]
    if args.unlike or args.unlike_judged:  # not a near-copy of a group judged before
        old_sets = []
        for spec in (args.unlike or "").split(","):
            if spec:
                k, seed = (int(x) for x in spec.split(":"))
                old = partition(k, seed)
                old_sets += [set(np.flatnonzero(old == g)) for g in range(k)]
        for spec in (args.unlike_judged or "").split(","):
            if spec:  # K:SEED=PAIRS: only the groups of that partition a round judged
                part, path = spec.split("=", 1)
                k, seed = (int(x) for x in part.split(":"))
                old = partition(k, seed)
                for name in json.loads(Path(path).read_text("utf-8")):
                    where, _, group = name.rpartition("/")
                    if where in ("", part):
                        old_sets.append(set(np.flatnonzero(old == int(group.split("-")[1]))))

        def overlap(c: int) -> float:
            members = set(np.flatnonzero(assign == c))
            return max(len(members & o) / len(members | o) for o in old_sets)

        eligible = [c for c in eligible if overlap(c) < args.max_jaccard]
    prev = previous_labeller(args.prev)
    prev_parts, name_parts = namer_of(prev), namer_of(theme_labels)
    titles_df = background(window)

    def both_names(c: int):
        members = np.flatnonzero(assign == c)
        centre = window.vectors[members].mean(0)
        centre = centre / np.linalg.norm(centre)
        order = members[np.argsort(-(window.vectors[members] @ centre), kind="stable")]
        got = store.get_many([int(window.ids[i]) for i in order[:CENTRAL_DOCS]])
        central = [got[int(window.ids[i])] for i in order[:CENTRAL_DOCS]]
        old_phrases = prev.label_phrases(central, centre, embedder, titles_df)
        old_parts = prev_parts(old_phrases, len(central), embedder, window.vectors, members)
        if hasattr(prev, "representatives"):  # a release that showed the papers a name holds
            old_name = getattr(prev, "label_text", label_text)(old_parts)
            old_shown = [central[i] for i in prev.representatives(old_parts, len(central))]
        else:
            old_name, old_shown = old_parts[0].text, central[:3]
        phrases = label_phrases(central, centre, embedder, titles_df)
        parts = name_parts(phrases, len(central), embedder, window.vectors, members)
        name = label_text(parts)
        shown = shown_documents(store, window, order, central, parts)
        titles = [window.titles[i] for i in members]
        keywords = theme_keywords(titles, titles_df, avoid=name)
        words = theme_keywords(titles, titles_df)
        # PREV_LABELLER's name with its own keywords, as that release showed it
        old_keywords = getattr(prev, "theme_keywords", lambda *a, **k: [])(
            titles, titles_df, avoid=old_name
        )
        old_shown_name = with_keywords(old_name, old_keywords)
        return (old_name, old_shown, old_shown_name), (name, shown), central, (keywords, words)

    named: dict[int, tuple] = {}
    if args.changed_only:  # only groups the two labellers name differently
        for c in eligible:
            named[c] = both_names(c)
        eligible = [c for c in eligible if named[c][0][0] != named[c][1][0]]
    chosen = sorted(rng.sample(eligible, min(args.sample, len(eligible))))
    print(
        f"{len(window.ids)} in-scope papers, {args.clusters} groups, {len(eligible)} with >= 15"
        f" papers and not judged before"
        + (
            f" (Jaccard < {args.max_jaccard} with every group of {args.unlike or ''}"
            + (f" and the judged groups of {args.unlike_judged}" if args.unlike_judged else "")
            + ")"
            if args.unlike or args.unlike_judged
            else ""
        )
        + (" that the two labellers name differently" if args.changed_only else "")
    )
    wanted = args.namings.split(",")
    decks: tuple[list, ...] = tuple([] for _ in wanted)
    key: dict[str, str] = {}
    pairs: dict[str, dict[str, str]] = {}
    for c in chosen:
        (old_name, old_shown, old_with), (name, shown), central, (keywords, words) = named.get(
            c
        ) or both_names(c)
        namings = {
            "prev": (old_name, old_shown),
            "prev-keywords": (old_with, old_shown),
            "new-central": (name, central[:3]),
            "new": (name, shown),
            "keywords": (with_keywords(name, keywords), shown),
            "words": (" · ".join(words), central[:3]),
        }
        slots = list(range(len(wanted)))
        rng.shuffle(slots)
        pair = {}
        for method, deck in zip(wanted, slots, strict=True):
            label, docs = namings[method]
            cid = f"{rng.getrandbits(32):08x}"
            while cid in key:
                cid = f"{rng.getrandbits(32):08x}"
            decks[deck].append(
                {
                    "card_id": cid,
                    "label": label,
                    "papers_in_group": int(sizes[c]),
                    "documents": [
                        {"title": d.title, "first_sentence": first_sentence(d.text)} for d in docs
                    ],
                }
            )
            key[cid] = method
            pair[method] = cid
        pairs[f"group-{c}"] = pair
        print(
            f"- group {c} ({sizes[c]} papers): prev {old_with!r} | new {name!r} | "
            f"keywords {with_keywords(name, keywords)!r} | words {' · '.join(words)!r}"
        )
    write_decks(Path(args.dump), decks, key, pairs, rng)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def kappa(a: list[int], b: list[int]) -> float:
    n = len(a)
    if n == 0:
        return float("nan")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if chance == 1 else (observed - chance) / (1 - chance)


def score(args: argparse.Namespace) -> None:
    key = json.loads(Path(args.key).read_text("utf-8"))
    if len(args.score) % 2:
        sys.exit("--score takes answer files in pairs: the two judges of each deck")
    first: dict = {}
    second: dict = {}
    for a, b in zip(args.score[0::2], args.score[1::2], strict=True):
        first.update(json.loads(Path(a).read_text("utf-8")))
        second.update(json.loads(Path(b).read_text("utf-8")))
    missing = [c for c in key if c not in first or c not in second]
    if missing:
        print(f"{len(missing)} card(s) lack an answer from a judge; counted as not passing")
    asked = [q for q in "abc" if any(q in answer for answer in first.values())]
    print("A card passes a question only when both judges answer 1 (a disagreement fails).\n")
    print("| method | question | cards | pass | precision | Wilson 95% |")
    print("|---|---|---:|---:|---:|---|")
    for method in sorted(set(key.values())):
        cards = [c for c in key if key[c] == method]
        for q in asked:
            passed = sum(
                1 for c in cards if first.get(c, {}).get(q) == 1 and second.get(c, {}).get(q) == 1
            )
            lo, hi = wilson(passed, len(cards))
            prec = passed / len(cards) if cards else 0.0
            print(f"| {method} | {q} | {len(cards)} | {passed} | {prec:.2f} | {lo:.2f}-{hi:.2f} |")
    print("\n| question | Cohen's kappa (all cards both judges answered) |")
    print("|---|---:|")
    both = [c for c in key if c in first and c in second]
    for q in asked:
        a = [int(first[c].get(q, 0)) for c in both]
        b = [int(second[c].get(q, 0)) for c in both]
        print(f"| {q} | {kappa(a, b):.2f} |")
    if args.pairs:
        paired_counts(json.loads(Path(args.pairs).read_text("utf-8")), first, second)


def paired_counts(pairs: dict, first: dict, second: dict) -> None:
    """The same themes named (or shown) two ways: how often each passes, per question."""

    def ok(cid: str, q: str) -> bool:
        return first.get(cid, {}).get(q) == 1 and second.get(cid, {}).get(q) == 1

    methods = sorted(set.intersection(*(set(p) for p in pairs.values())))
    n = len(pairs)
    for i, m1 in enumerate(methods):
        for m2 in methods[i + 1 :]:
            for q in "ab":
                both = sum(ok(p[m1], q) and ok(p[m2], q) for p in pairs.values())
                only1 = sum(ok(p[m1], q) and not ok(p[m2], q) for p in pairs.values())
                only2 = sum(ok(p[m2], q) and not ok(p[m1], q) for p in pairs.values())
                line = (
                    f"\n({q}) {m1} vs {m2} on the same {n} themes: both pass {both}, only "
                    f"{m1} {only1}, only {m2} {only2}, neither {n - both - only1 - only2}"
                )
                if only1 + only2:
                    # exact two-sided sign test on the discordant pairs (McNemar)
                    k, m = min(only1, only2), only1 + only2
                    tail = sum(math.comb(m, j) for j in range(k + 1)) / 2**m
                    line += f"; McNemar exact p = {min(1.0, 2 * tail):.3f}"
                print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default="/work/themes-cache/store")
    ap.add_argument("--dump", help="write the blind cards here (and FILE.key.json)")
    ap.add_argument(
        "--score",
        nargs="+",
        metavar="ANSWERS",
        help="answer files in pairs, the two judges of each deck: A B [C D]",
    )
    ap.add_argument(
        "--paired",
        action="store_true",
        help="with --dump: the new method's themes, each named by this labeller and by "
        "PREV_LABELLER, dealt into two decks (FILE_1, FILE_2; FILE.pairs.json)",
    )
    ap.add_argument("--windows", help="window end days (default: the first round's six)")
    ap.add_argument(
        "--fresh-windows",
        action="store_true",
        help="with --dump: emerging themes of window ends no round judged (--windows, default "
        "every other day from 2025-04-22 to 2025-06-29) that copy no theme of the judged "
        "windows nor each other, --sample of them in one deck",
    )
    ap.add_argument(
        "--unlike-top",
        type=int,
        default=10,
        help="with --fresh-windows: how many themes of each judged window to stay unlike",
    )
    ap.add_argument("--pairs", help="with --score: FILE.pairs.json of a --paired dump")
    ap.add_argument(
        "--clusters",
        type=int,
        help="with --dump: name fresh k-means groups of all pre-July papers instead of "
        "emerging themes (three decks: prev, new-central, new)",
    )
    ap.add_argument("--sample", type=int, default=30, help="groups drawn for --clusters")
    ap.add_argument(
        "--namings",
        default="prev,new-central,new",
        help="with --clusters: the namings to judge, one deck each: prev, prev-keywords "
        "(PREV_LABELLER's name and its keywords), new-central, new, keywords (the name "
        "followed by its keywords, as Veille shows it), words (keywords alone, as topic "
        "models show them)",
    )
    ap.add_argument("--kmeans-seed", type=int, default=7, help="with --clusters: k-means seed")
    ap.add_argument(
        "--unlike",
        metavar="K:SEED[,K:SEED]",
        help="with --clusters: leave out groups that nearly copy a group of the k-means into K "
        "groups with SEED (Jaccard of their papers >= --max-jaccard)",
    )
    ap.add_argument(
        "--unlike-judged",
        metavar="K:SEED=PAIRS[,...]",
        help="with --clusters: like --unlike, but only the groups of that k-means that a "
        "round judged (the keys of its pairs file, 'group-N' or 'K:SEED/group-N')",
    )
    ap.add_argument(
        "--changed-only",
        action="store_true",
        help="with --clusters: draw only groups that --prev and this labeller name differently",
    )
    ap.add_argument("--max-jaccard", type=float, default=0.5)
    ap.add_argument("--prev", default=PREV_LABELLER, help="the commit whose labeller is 'prev'")
    ap.add_argument(
        "--prev-bare",
        action="store_true",
        help="with --paired: show the 'prev' names without keywords (names only)",
    )
    ap.add_argument(
        "--exclude",
        help="with --clusters: the pairs files (comma-separated) of groups already judged",
    )
    ap.add_argument(
        "--key", help="the key file (default: /work/themes-judging/cards.json.key.json)"
    )
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    if args.score:
        args.key = args.key or "/work/themes-judging/cards.json.key.json"
        score(args)
    elif args.dump and args.clusters:
        cluster_dump(args)
    elif args.dump and args.fresh_windows:
        fresh_windows_dump(args)
    elif args.dump and args.paired:
        paired_dump(args)
    elif args.dump:
        dump(args)
    else:
        ap.error("give --dump FILE or --score ANSWERS_A ANSWERS_B")


if __name__ == "__main__":
    main()
