"""The learned sector matcher, users' feedback, and the signed digest links.

Uses the real bundled model (loaded once per session) and the judged set shipped in
index/data/labels; documents are written here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from core.models import Document
from core.settings import load_settings
from core.store import Store
from index import labels as labels_module
from index.feedback import export_tsv, feedback_rows, import_tsv, record_feedback, verdicts
from index.labels import (
    SECTORS,
    labels_fingerprint,
    read_labels,
    shipped_named,
    shipped_vectors,
)
from index.learner import load_matcher, matcher_path, matcher_status, shipped_matcher
from index.match_rules import match_one, prepare
from index.matcher_model import MatcherModel, neighbour_scores
from index.matching import matches_for, retrain_matcher
from index.pipeline import index_and_match
from index.taxonomy import load_taxonomy
from index.training import _fit, examples_for, pick_named_gate, pick_threshold, train, whitening
from jobs.cli import cli

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

DOCS = [
    Document(
        "robot-grasp",
        "Learning dexterous grasping for bin picking in warehouses",
        "A robot arm with a parallel gripper learns to pick unknown parts out of cluttered bins "
        "on an assembly line. Policies trained in simulation transfer to the real factory cell "
        "and reach a 94% pick success rate.",
        published=datetime(2026, 11, 2, tzinfo=UTC),
    ),
    Document(
        "ct-lesions",
        "Segmenting liver lesions in contrast-enhanced CT scans",
        "We train a segmentation network on abdominal CT volumes from three hospitals and "
        "outline liver tumours for radiologists; Dice improves on the public benchmark and a "
        "reader study shows faster diagnosis.",
        published=datetime(2026, 11, 3, tzinfo=UTC),
    ),
    Document(
        "primes",
        "Gaps between consecutive primes in short intervals",
        "We prove a new upper bound on gaps between consecutive prime numbers using sieve "
        "estimates and exponential sums.",
        published=datetime(2026, 11, 4, tzinfo=UTC),
    ),
]


@pytest.fixture
def indexed(settings, store: Store, real_embedder):
    store.upsert(DOCS)
    index_and_match(store, settings, embedder=real_embedder)
    return {d.canonical_id: store.resolve(d.canonical_id) for d in DOCS}


def _sectors(store: Store, doc: Document) -> dict[str, str]:
    return {m.sector: m.why for m in matches_for(store, [doc.id])[doc.id]}


# -- the shipped judged set -----------------------------------------------------------------


def test_shipped_labels_are_judged_papers_listed_before_july_2025() -> None:
    rows = read_labels()
    assert len(rows) > 1500
    for row in rows:
        # New-style ids start with the submission month (YYMM): nothing from 2025-07 on.
        prefix = row.arxiv_id.split(".")[0]
        assert prefix.isdigit() and int(prefix) <= 2506, row.arxiv_id
        assert row.split in ("train", "test", "audit")
    positives = {s: sum(1 for r in rows if r.sectors[s]) for s in SECTORS}
    assert positives["health"] >= 150 and positives["industry"] >= 150
    assert min(positives.values()) >= 30
    negatives = sum(1 for r in rows if not any(r.sectors.values()))
    assert negatives > 1000
    model, vectors = shipped_vectors()
    assert model == "bundled:all-MiniLM-L6-v2"
    assert {r.arxiv_id for r in rows} <= set(vectors)
    norms = np.linalg.norm(np.stack(list(vectors.values())), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-3)


def test_shipped_vectors_say_which_techniques_each_paper_names(settings) -> None:
    rows = read_labels()
    named = shipped_named()
    assert set(named) == {r.arxiv_id for r in rows}
    keys = {t.key for t in load_taxonomy(settings).techniques}
    assert set().union(*named.values()) <= keys
    # Most papers the judges tagged with CNNs name one of its aliases, not all do.
    cnn = [r.arxiv_id for r in rows if r.techniques and "cnn" in r.techniques]
    share = sum("cnn" in named[i] for i in cnn) / len(cnn)
    assert 0.5 < share < 1.0


def test_rewriting_label_vectors_refuses_bad_records_and_keeps_the_shipped_file(
    tmp_path: Path, capsys
) -> None:
    shipped = Path(labels_module.__file__).parent / "data" / "labels" / "vectors.npz"
    before = shipped.read_bytes()
    missing = tmp_path / "missing.jsonl"
    assert labels_module.main([str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    partial = tmp_path / "partial.jsonl"
    partial.write_text('{"id": "2501.00001", "title": "T", "abstract": "A"}\n', encoding="utf-8")
    assert labels_module.main([str(partial)]) == 2
    assert f"{partial} lacks {len(read_labels())} judged papers" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    assert labels_module.main([str(broken)]) == 2
    assert f"{broken}, line 1: not JSON" in capsys.readouterr().err
    assert shipped.read_bytes() == before


def test_shipped_matcher_is_in_step_with_the_shipped_labels(settings) -> None:
    taxonomy = load_taxonomy(settings)
    shipped = shipped_matcher("bundled:all-MiniLM-L6-v2", taxonomy)
    # None here means the labels or the taxonomy changed: run `python -m index.learner`.
    assert shipped is not None
    assert shipped.labels == labels_fingerprint() and shipped.feedback_mark == "0:0"
    assert all(shipped.learned(s) for s in SECTORS)


def test_neighbour_score_says_which_labelled_documents_a_paper_is_closest_to() -> None:
    # Unit vectors in the plane: two labelled "fits" near the x axis, two "does not fit"
    # near the y axis, one unlabelled on the x axis itself.
    def unit(deg: float) -> np.ndarray:
        return np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))], dtype=np.float32)

    examples = np.stack([unit(5), unit(-5), unit(85), unit(95), unit(0)])
    labels = np.array([[1, 1], [1, -1], [0, 0], [0, 0], [-1, 0]], dtype=np.int8)
    scores = neighbour_scores(np.stack([unit(2), unit(88)]), examples, labels, k=2)
    assert scores[0, 0] > 0.5 and scores[1, 0] < -0.5  # near the fits / the counter-examples
    # The unlabelled example counts for neither side; the second target has one fit only.
    assert scores[0, 1] == pytest.approx(
        float(unit(2) @ unit(5)) - (unit(2) @ unit(0) + unit(2) @ unit(85)) / 2, abs=1e-6
    )
    empty = neighbour_scores(unit(2)[None, :], examples, np.full((5, 1), 1, np.int8))
    assert empty.tolist() == [[0.0]]  # no counter-example: no evidence either way


def test_matcher_file_keeps_its_neighbours_and_an_older_format_is_refused(
    settings, tmp_path: Path
) -> None:
    shipped = shipped_matcher("bundled:all-MiniLM-L6-v2", load_taxonomy(settings))
    assert shipped is not None and set(shipped.neighbour_targets) == set(SECTORS)
    path = tmp_path / "matcher.npz"
    shipped.save(path)
    again = MatcherModel.load(path)
    _, vectors = shipped_vectors()
    probe = np.stack([vectors[i] for i in list(vectors)[:50]]).astype(np.float32)
    for sector in SECTORS:
        assert np.allclose(
            again.predict(probe, [sector])[sector], shipped.predict(probe, [sector])[sector]
        )
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format"] = 2
    arrays["meta"] = np.array(json.dumps(meta))
    with path.open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError, match="has format 2"):
        MatcherModel.load(path)


def test_threshold_keeps_precision_floor() -> None:
    probs = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    gold = np.array([1, 1, 0, 1, 1, 0, 0, 1])
    threshold, precision, recall, f1 = pick_threshold(probs, gold, min_precision=0.85)
    assert precision >= 0.85
    assert 0.8 < threshold < 0.9  # only the two sure positives keep precision >= 0.85
    loose = pick_threshold(probs, gold, min_precision=0.0)
    assert loose[3] >= f1 and loose[0] < threshold


def _quiet_sector(n: int, fitting: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors whose variance sits in 4 loud directions; the few papers that fit a sector
    differ from the rest only along one quiet direction."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 40)) * np.r_[np.full(4, 1.0), np.full(36, 0.005)]
    y = np.zeros(n, dtype=np.int64)
    y[:fitting] = 1
    x[:fitting, 20] += 0.015
    return x, y


def test_a_rare_sector_is_found_in_whitened_coordinates() -> None:
    x, y = _quiet_sector(600, 12, seed=1)
    unseen, gold = _quiet_sector(2000, 40, seed=2)
    found = {}
    for name, whiten in (("raw", None), ("whitened", whitening(x))):
        coef, intercept = _fit(x, y, np.ones(len(y)), whiten)
        scores = unseen @ coef + intercept  # the weights apply to raw vectors either way
        found[name] = int(gold[np.argsort(-scores)[:40]].sum())
    # With 12 positives, the penalty keeps raw weights on the loud directions.
    assert found["whitened"] >= 10 and found["whitened"] >= 2 * found["raw"]
    assert whitening(x[:50]) is None  # too few documents to estimate the spread


def test_naming_a_technique_is_not_enough_when_judges_said_so() -> None:
    # Ten papers name the technique: six use it, four only mention it (a baseline, another
    # sense of the word) and the tagger gives those four low probabilities. Of six papers that
    # do not name it, two use it anyway.
    probs = np.array([0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.2, 0.15, 0.1, 0.05])
    probs = np.r_[probs, [0.95, 0.9, 0.3, 0.2, 0.1, 0.05]]
    gold = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    named = np.array([True] * 10 + [False] * 6)
    named_threshold, other, precision, recall, f1 = pick_named_gate(probs, gold, named)
    assert named_threshold is not None and 0.2 < named_threshold < 0.6
    assert 0.3 < other < 0.9
    assert precision == recall == f1 == 1.0
    # When every paper that names it uses it, naming it is enough: no gate.
    gold[6:10] = 1
    assert pick_named_gate(probs, gold, named)[0] is None


def test_a_title_ending_in_a_question_mark_is_quoted_without_a_stray_full_stop(
    settings, real_embedder
) -> None:
    taxonomy = load_taxonomy(settings)
    model = shipped_matcher(real_embedder.name, taxonomy)
    doc = Document(
        "question",
        "Can deep learning find pneumonia and lung nodules on chest X-ray radiographs?",
        "We test it on 20,000 images from three hospitals.",
    )
    vector = real_embedder.encode([doc.embed_text])[0]
    probs = {k: float(v[0]) for k, v in model.predict(vector[None, :]).items()}
    matches = match_one(doc, vector, prepare(taxonomy, real_embedder), model, probs)[0]
    [health] = [m for m in matches if m.sector == "health"][:1]
    assert health.passage.endswith("radiographs?"), health.passage
    assert "?." not in health.why


def test_technique_named_in_passing_is_left_out_by_the_gate(settings, real_embedder) -> None:
    taxonomy = load_taxonomy(settings)
    model = train(examples_for(None, taxonomy, real_embedder), taxonomy, real_embedder)
    prepared = prepare(taxonomy, real_embedder)
    doc = Document(
        "baseline",
        "A vision transformer for chest X-ray triage",
        "We fine-tune a vision transformer on chest radiographs; it beats a random forest "
        "baseline on hand-made features by eight points of AUC.",
    )
    vector = real_embedder.encode([doc.embed_text])[0]
    probs = {k: float(v[0]) for k, v in model.predict(vector[None, :]).items()}
    target = model.targets["technique:machine_learning"]

    def tagged() -> set[str]:
        return {t.technique for t in match_one(doc, vector, prepared, model, probs)[1]}

    target.named_threshold = None  # naming "random forest" is enough
    assert "machine_learning" in tagged()
    target.named_threshold = probs["technique:machine_learning"] + 0.01
    assert "machine_learning" not in tagged()
    assert {"transformer", "deep_learning"} <= tagged()


def test_matcher_trained_from_shipped_labels_is_calibrated_and_validated(
    settings, real_embedder
) -> None:
    taxonomy = load_taxonomy(settings)
    model = train(examples_for(None, taxonomy, real_embedder), taxonomy, real_embedder)
    for key in (*SECTORS, "technique:cnn", "technique:time_series"):
        target = model.targets[key]
        assert target.mode == "learned", key
        assert 0.0 < target.threshold < 1.0
        # Sectors keep the precision floor; a technique tag takes its best F1 (naming it, or a
        # high enough probability when it is not named).
        assert target.precision >= (0.85 if ":" not in key else 0.6), key
        assert target.f1 >= 0.6, key
        assert target.positives >= 30 and target.negatives > 1000, key
    # Probabilities: a clearly medical abstract is near 1 for health and low for legal.
    vector = real_embedder.encode([f"{DOCS[1].title}. {DOCS[1].text}"])
    probs = model.predict(vector)
    assert probs["health"][0] > 0.9 and probs["legal"][0] < 0.1


# -- matching with the learned matcher ----------------------------------------------------------


def test_status_on_a_fresh_data_directory_shows_the_shipped_matcher(store: Store, settings) -> None:
    """Before any indexing, `veille matcher status` shows the model the first `veille
    index` starts from, with its figures, rather than an empty table."""
    assert not matcher_path(settings, settings.model).exists()
    shipped = shipped_matcher(settings.model, load_taxonomy(settings))
    out = CliRunner().invoke(cli, ["matcher", "status"])
    assert out.exit_code == 0, out.output
    assert "No matcher trained in this data directory yet" in out.output
    assert "shipped with Veille" in out.output and "judged papers" in out.output
    health = shipped.targets["health"]
    row = next(line for line in out.output.splitlines() if line.startswith("Health "))
    assert f"{health.f1:.2f}" in row and str(health.positives) in row
    # Once someone answers, the shipped model no longer applies: training is needed.
    store.upsert(DOCS[:1])
    record_feedback(store, settings, "robot-grasp", sector="industry", fits=True)
    status = matcher_status(store, settings, load_taxonomy(settings))
    assert status["source"] is None and status["waiting"]
    out = CliRunner().invoke(cli, ["matcher", "status"]).output
    assert "has not been trained yet" in out
    # Each sector's row counts the team's answers about it: fits / does not fit.
    industry = next(line for line in out.splitlines() if line.startswith("Industry "))
    assert industry.split()[-1] == "1/0"


def test_learned_matches_explain_themselves(indexed, store: Store, settings) -> None:
    robot = _sectors(store, indexed["robot-grasp"])
    assert "industry" in robot
    assert "probability" in robot["industry"] and "threshold" in robot["industry"]
    # The nearest judged examples are named: "like 2504.01234, judged relevant by the team".
    assert re.search(r"like \d{4}\.\d{4,5}, judged relevant by the team", robot["industry"])
    assert "health" in _sectors(store, indexed["ct-lesions"])
    assert _sectors(store, indexed["primes"]) == {}
    assert matcher_path(settings, settings.model).is_file()


def test_feedback_overrides_the_item_and_the_matcher_learns(
    indexed, store: Store, settings, real_embedder
) -> None:
    robot = indexed["robot-grasp"]
    record_feedback(store, settings, robot.canonical_id, sector="industry", fits=False, by="ana")
    record_feedback(
        store, settings, "primes", sector="finance", use_case="market_prediction", fits=True
    )
    status = matcher_status(store, settings, load_taxonomy(settings))
    assert status["answers"] == 2 and status["waiting"]
    # The first indexing saved the shipped model here: until a training, it is still that one.
    assert status["source"] == "trained" and status["shipped"]
    out = CliRunner().invoke(cli, ["matcher", "status"])
    assert "The matcher shipped with Veille, trained " in out.output, out.output
    # The shipped labels make industry weigh its nearest judged papers; use cases never do.
    by_target = {t["target"]: t for t in status["targets"]}
    assert by_target["industry"]["neighbours"] and not by_target["industry/robotics"]["neighbours"]
    # Finance has 35 judged positives and is fitted on whitened vectors; health has hundreds.
    assert by_target["finance"]["whitened"] and not by_target["health"]["whitened"]
    before = load_matcher(settings, settings.model, load_taxonomy(settings))
    model, matched = retrain_matcher(store, settings, embedder=real_embedder)
    assert matched == len(DOCS) and model.version != before.version
    assert model.counts.get("feedback") == 2
    assert "industry" not in _sectors(store, robot)
    primes = _sectors(store, indexed["primes"])
    assert "finance" in primes and primes["finance"].startswith("Confirmed: your team said")
    assert matches_for(store, [indexed["primes"].id])[indexed["primes"].id][0].use_case == (
        "market_prediction"
    )
    after = matcher_status(store, settings, load_taxonomy(settings))
    assert not after["waiting"] and not after["shipped"]


def _stubs(titles: list[str]) -> list[Document]:
    """Documents on other subjects, each with a one-line abstract."""
    return [
        Document(f"other-{i}", title, "A short abstract about " + title.lower() + ".")
        for i, title in enumerate(titles)
    ]


def test_a_new_sector_matches_from_its_description_then_learns_from_answers(
    tmp_path: Path, monkeypatch, real_embedder
) -> None:
    shipped = Path(__file__).resolve().parents[1] / "index" / "data" / "taxonomy.toml"
    energy = (
        '\n[[sectors]]\nkey = "energy"\nname = "Energy"\ndescription = "Power grids."\n'
        '  [[sectors.use_cases]]\n  key = "grid_forecasting"\n  name = "Grid load forecasting"\n'
        '  description = "Forecasting electricity demand and renewable output on power grids."\n'
        '  keywords = ["electricity demand", "power grid", "load forecasting", "wind power"]\n'
    )
    text = shipped.read_text(encoding="utf-8")
    cut = text.index("[[techniques]]")
    (tmp_path / "taxonomy.toml").write_text(text[:cut] + energy + text[cut:], encoding="utf-8")
    monkeypatch.setenv("VEILLE_TAXONOMY_FILE", str(tmp_path / "taxonomy.toml"))
    settings = load_settings()
    store = Store.from_settings(settings)
    grid = [
        Document(f"grid-{i}", title, body)
        for i, (title, body) in enumerate(
            [
                (
                    "Forecasting hourly electricity demand on a regional power grid",
                    "Gradient boosting on weather and calendar features predicts the load of a "
                    "regional transmission grid a day ahead.",
                ),
                (
                    "Wind power output prediction for grid operators",
                    "A temporal network forecasts the output of wind farms so that the grid "
                    "operator can schedule reserves.",
                ),
                (
                    "Short-term load forecasting for distribution substations",
                    "We forecast substation load from smart-meter data to plan grid operation.",
                ),
                (
                    "Solar generation nowcasting for balancing the electricity grid",
                    "Sky images and inverter data predict photovoltaic output for grid balancing.",
                ),
                (
                    "Probabilistic forecasts of national electricity consumption",
                    "Quantile regression gives day-ahead intervals of national power demand.",
                ),
                (
                    "Predicting peak demand on urban power networks",
                    "City-scale electricity peaks are forecast from temperature and holidays.",
                ),
            ]
        )
    ]
    held_out = Document(
        "grid-new",
        "Day-ahead prediction of electricity load for a utility's grid",
        "Weather forecasts and past consumption predict tomorrow's hourly electricity load "
        "for a utility, helping dispatch power plants on the grid.",
    )
    others = _stubs(
        [
            "Image captioning with transformers",
            "Proofs about prime gaps",
            "Speech recognition for meetings",
            "Protein structure prediction",
            "Machine translation of subtitles",
            "Graph coloring heuristics",
            "Music generation with diffusion",
            "Question answering over tables",
            "Weather radar precipitation nowcasting",
            "Traffic sign recognition",
        ]
    )
    store.upsert([*grid, held_out, *others])
    index_and_match(store, settings, embedder=real_embedder)
    taxonomy = load_taxonomy(settings)
    model = load_matcher(settings, settings.model, taxonomy)
    assert model.targets["energy"].mode == "fallback"  # no labels yet: description rules
    for doc in grid:
        record_feedback(store, settings, doc.canonical_id, sector="energy", fits=True)
    for doc in others:
        record_feedback(store, settings, doc.canonical_id, sector="energy", fits=False)
    model, _ = retrain_matcher(store, settings, embedder=real_embedder)
    assert model.targets["energy"].mode == "learned"
    found = store.resolve("grid-new")
    assert "energy" in _sectors(store, found)
    assert "Fits Energy with probability" in _sectors(store, found)["energy"]
    store.close()


def test_corrupt_matcher_file_is_rebuilt_and_matches_stay_until_then(
    indexed, store: Store, settings, real_embedder
) -> None:
    path = matcher_path(settings, settings.model)
    before = _sectors(store, indexed["ct-lesions"])
    path.write_bytes(b"not a matcher file")
    with pytest.raises(ValueError, match="cannot read matcher file"):
        MatcherModel.load(path)
    assert _sectors(store, indexed["ct-lesions"]) == before  # nothing was dropped
    store.upsert([Document("late", "A late paper on chest X-ray triage", "Radiographs are read.")])
    index_and_match(store, settings, embedder=real_embedder)
    assert MatcherModel.load(path).targets["health"].mode == "learned"
    assert "health" in _sectors(store, store.resolve("late"))


def test_scheduled_matcher_job_retrains_only_after_new_feedback(
    indexed, store: Store, settings
) -> None:
    from jobs.runner import run_job

    idle = run_job("matcher", settings, store=store)
    assert idle.outcome == "skipped" and "no new feedback" in idle.message
    record_feedback(store, settings, "primes", sector="legal", fits=True, by="ana")
    ran = run_job("matcher", settings, store=store)
    assert ran.outcome == "ok" and "re-matched" in ran.message, ran.message
    assert "legal" in _sectors(store, indexed["primes"])
    assert run_job("matcher", settings, store=store).outcome == "skipped"


# -- feedback: CLI, bad input, exchange, orphans ------------------------------------------------


def test_feedback_cli_records_and_refuses_bad_input(indexed, store: Store, settings) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["feedback", "ct-lesions", "--sector", "health", "--fits", "--by", "ana"]
    )
    assert ok.exit_code == 0, ok.output
    assert "Recorded: ct-lesions fits health." in ok.output
    again = runner.invoke(cli, ["feedback", "ct-lesions", "--sector", "health", "--does-not-fit"])
    assert "1 fits, 1 does not fit; the latest answer" in again.output
    use_case = runner.invoke(
        cli,
        [
            "feedback",
            "ct-lesions",
            "--sector",
            "health",
            "--use-case",
            "diagnosis_support",
            "--fits",
        ],
    )
    assert "Recorded: ct-lesions fits health/diagnosis_support" in use_case.output
    for args, named in [
        (["feedback", "no-such-doc", "--sector", "health", "--fits"], "no-such-doc"),
        (["feedback", "ct-lesions", "--sector", "space", "--fits"], "space"),
        (
            ["feedback", "ct-lesions", "--sector", "health", "--use-case", "astrology", "--fits"],
            "astrology",
        ),
    ]:
        bad = runner.invoke(cli, args)
        assert bad.exit_code == 1 and named in bad.output, bad.output
    assert len(feedback_rows(store)) == 3  # the refused answers left nothing behind
    verdict = verdicts(store)[("ct-lesions", "health", None)]
    assert verdict.fits is False and verdict.not_fits_count == 1
    status = runner.invoke(cli, ["matcher", "status"])
    assert status.exit_code == 0 and "Health" in status.output and "F1" in status.output
    assert "Technique: Deep learning" in status.output
    assert "Technique: Transformers, attention and large language models " in status.output
    # The shipped tagger learned that naming deep learning is not always enough.
    assert re.search(r"Technique: Deep learning .* named: 0\.\d\d", status.output)
    assert "wait for the next training" in status.output
    assert re.search(r"Retail +learned\+w", status.output)  # whitened: few positives
    # What it learned from, in words: judged papers, written abstracts, descriptions.
    assert re.search(
        r"on \d+ judged papers, \d+ team-written abstracts, \d+ use-case descriptions\.",
        status.output,
    )


def test_an_answer_moves_its_item_at_once_before_any_training(
    indexed, store: Store, settings, tmp_path: Path
) -> None:
    runner = CliRunner()
    ct, primes = indexed["ct-lesions"], indexed["primes"]
    assert "health" in _sectors(store, ct) and "finance" not in _sectors(store, primes)
    taxonomy = load_taxonomy(settings)
    version = load_matcher(settings, settings.model, taxonomy).version
    no = runner.invoke(cli, ["feedback", "ct-lesions", "--sector", "health", "--does-not-fit"])
    assert no.exit_code == 0 and "Its matches follow it already." in no.output, no.output
    assert "health" not in _sectors(store, ct)  # out of the sector now, not at the next training
    # An answer that comes in a file is followed too.
    answers = tmp_path / "answers.tsv"
    answers.write_text(
        "document\tsector\tuse_case\tverdict\tby\torigin\twhen\n"
        "primes\tfinance\tmarket_prediction\tfits\tli\tcli\t2026-11-30T10:00:00+00:00\n",
        encoding="utf-8",
    )
    imported = runner.invoke(cli, ["feedback", "import", str(answers)])
    assert "The matches of 1 document follow the answers already." in imported.output
    assert _sectors(store, primes)["finance"].startswith("Confirmed: your team said it fits")
    assert load_matcher(settings, settings.model, taxonomy).version == version  # no training
    both = runner.invoke(
        cli, ["feedback", "primes", "--sector", "legal", "--fits", "--does-not-fit"]
    )
    assert both.exit_code == 2 and "not both" in both.output
    assert len(feedback_rows(store)) == 2  # the contradictory answer was not recorded


def test_an_answer_is_kept_when_matching_it_again_fails(
    indexed, store: Store, settings, monkeypatch
) -> None:
    """A database locked by another writer while the document is matched again: the answer
    stays recorded, the command succeeds, and it says when the item will follow."""
    import sqlalchemy as sa

    import index.matching as matching

    def locked(*_args, **_kwargs):
        raise sa.exc.OperationalError("UPDATE doc_matches", {}, Exception("database is locked"))

    monkeypatch.setattr(matching, "match_documents", locked)
    out = CliRunner().invoke(
        cli, ["feedback", "ct-lesions", "--sector", "health", "--does-not-fit"]
    )
    assert out.exit_code == 0, out.output
    assert "Its matches follow it once it is indexed, or at the next training." in out.output
    assert [(f.canonical_id, f.fits) for f in feedback_rows(store)] == [("ct-lesions", False)]
    assert "health" in _sectors(store, indexed["ct-lesions"])  # unchanged until then


def test_feedback_export_import_roundtrip_and_bad_file(
    indexed, store: Store, settings, tmp_path: Path
) -> None:
    record_feedback(store, settings, "robot-grasp", sector="industry", fits=True, by="li", now=NOW)
    record_feedback(
        store, settings, "primes", sector="legal", fits=False, now=NOW + timedelta(hours=1)
    )
    text = export_tsv(store)
    assert text.splitlines()[0] == "document\tsector\tuse_case\tverdict\tby\torigin\twhen"
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    report = import_tsv(other, settings, text)
    assert (report.added, report.already, report.not_in_store) == (2, 0, 2)
    assert import_tsv(other, settings, text).added == 0  # importing twice adds nothing
    broken = text + "robot-grasp\tspace\t\tfits\t\tcli\t2026-11-30T10:00:00+00:00\n"
    with pytest.raises(ValueError, match=r"line 4: unknown sector 'space'"):
        import_tsv(other, settings, broken)
    assert len(feedback_rows(other)) == 2
    other.close()


def test_removed_use_case_keeps_its_feedback_marked_orphaned(
    indexed, store: Store, settings, tmp_path: Path, monkeypatch
) -> None:
    record_feedback(
        store, settings, "ct-lesions", sector="health", use_case="augmented_surgery", fits=True
    )
    shipped = Path(__file__).resolve().parents[1] / "index" / "data" / "taxonomy.toml"
    text = shipped.read_text(encoding="utf-8")
    start = text.index('  key = "augmented_surgery"')
    start = text.rindex("[[sectors.use_cases]]", 0, start)
    end = text.index("[[", start + 5)
    (tmp_path / "tax.toml").write_text(text[:start] + text[end:], encoding="utf-8")
    monkeypatch.setenv("VEILLE_TAXONOMY_FILE", str(tmp_path / "tax.toml"))
    result = CliRunner().invoke(cli, ["matcher", "status"])
    assert result.exit_code == 0, result.output
    assert "1 answer names a sector or use case no longer in the taxonomy" in result.output
    assert "ct-lesions  health/augmented_surgery  fits" in result.output
    assert "augmented_surgery" in export_tsv(store)  # kept


# -- signed digest links ------------------------------------------------------------------------


def test_signed_feedback_link_records_and_forged_one_is_refused(
    indexed, store: Store, settings
) -> None:
    from jobs.feedback_links import feedback_url, read_token, record_from_token

    url = feedback_url(settings, store, "ct-lesions", "health", "diagnosis_support", fits=True)
    assert url.startswith(settings.public_url.rstrip("/") + "/feedback?token=")
    token = url.split("token=", 1)[1]
    link = read_token(settings, store, token)
    assert (link.document, link.sector, link.use_case, link.fits) == (
        "ct-lesions",
        "health",
        "diagnosis_support",
        True,
    )
    payload, mac = token.rsplit(".", 1)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    other_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (f"{flipped}.{mac}", f"{payload}.{other_mac}", "e30.abc"):
        with pytest.raises(ValueError, match="invalid or has been altered"):
            record_from_token(store, settings, forged)
    assert feedback_rows(store) == []
    answer = record_from_token(store, settings, token)
    assert answer.origin == "digest" and answer.by == "a digest reader"
    assert "@" not in answer.by  # no subscriber address is stored with the answer


SLEEP_USE_CASE = (
    '\n  [[sectors.use_cases]]\n  key = "sleep_medicine"\n  name = "Sleep medicine"\n'
    '  description = "Staging sleep and detecting sleep apnea from polysomnography, EEG '
    'and wearable recordings of patients at night."\n'
    '  keywords = ["sleep staging", "sleep apnea", "polysomnography"]\n'
)
SLEEP_PAPERS = [
    Document(
        "sleep-1",
        "Automatic sleep staging from single-channel EEG with a convolutional network",
        "We classify 30-second epochs of overnight polysomnography into sleep stages and "
        "flag apnea events, matching the agreement of sleep technicians on 200 patients.",
    ),
    Document(
        "sleep-2",
        "Detecting obstructive sleep apnea from a wrist-worn device",
        "Heart rate and blood oxygen recorded by a smartwatch at night let a small "
        "recurrent network detect apnea episodes, validated against polysomnography.",
    ),
    Document(
        "xray",
        "Pneumonia detection on chest X-rays with deep learning",
        "A convolutional network reads chest radiographs and flags pneumonia for "
        "radiologists, evaluated on 5,000 hospital images.",
    ),
]


def _with_sleep_medicine(tmp_path: Path, monkeypatch) -> object:
    """Settings whose taxonomy is the shipped one plus a "Sleep medicine" use case in Health
    (the file's last sector), as an operator would add it."""
    shipped = Path(__file__).resolve().parents[1] / "index" / "data" / "taxonomy.toml"
    text = shipped.read_text(encoding="utf-8")
    cut = text.index("[[techniques]]")
    (tmp_path / "taxonomy.toml").write_text(text[:cut] + SLEEP_USE_CASE + text[cut:], "utf-8")
    monkeypatch.setenv("VEILLE_TAXONOMY_FILE", str(tmp_path / "taxonomy.toml"))
    return load_settings()


def test_a_use_case_added_to_a_sector_starts_from_its_description(
    tmp_path: Path, monkeypatch, real_embedder
) -> None:
    settings = _with_sleep_medicine(tmp_path, monkeypatch)
    taxonomy = load_taxonomy(settings)
    assert taxonomy.use_cases[-1].key == "sleep_medicine"  # health is the file's last sector
    examples = examples_for(None, taxonomy, real_embedder, feedback=[])
    model = train(examples, taxonomy, real_embedder)
    target = model.targets["health/sleep_medicine"]
    assert target.mode == "description" and target.by_description and target.positives == 0
    # Among the 7,085 judged papers, the one on sleep staging (2506.06912) comes first and is
    # flagged; a fit on the description as a single positive gave it 0.06. The use case
    # flags a short list (0.5% of the papers), not the sector.
    _, judged = shipped_vectors()
    ids = list(judged)
    probs = model.predict(np.stack([judged[i] for i in ids]))["health/sleep_medicine"]
    assert ids[int(np.argmax(probs))] == "2506.06912" and probs.max() >= target.threshold
    assert 0 < int((probs >= target.threshold).sum()) < 0.01 * len(ids)
    papers = SLEEP_PAPERS
    vectors = real_embedder.encode([f"{d.title}. {d.text}" for d in papers])
    per_target = model.predict(vectors)
    prepared = prepare(taxonomy, real_embedder)
    shown = {}
    for i, doc in enumerate(papers):
        mine = {k: float(v[i]) for k, v in per_target.items()}
        found = match_one(doc, vectors[i], prepared, model, mine)[0]
        shown[doc.canonical_id] = [m.use_case for m in found if m.sector == "health"]
    # Health is matched by its learned classifier; the new use case is the one shown first
    # for the papers its description speaks of, and not for another health paper.
    assert shown["sleep-1"][:1] == ["sleep_medicine"] == shown["sleep-2"][:1]
    assert shown["xray"] and "sleep_medicine" not in shown["xray"]
    # With a paper or two confirmed it keeps the description rule (leaning towards them):
    # no boundary is fitted on so few.
    for e in examples:
        if e.key == "2506.06912":
            e.labels["health/sleep_medicine"] = True
    again = train(examples, taxonomy, real_embedder).targets["health/sleep_medicine"]
    assert again.by_description and again.positives == 1


def test_a_use_case_learning_from_its_description_asks_about_its_likeliest_papers(
    tmp_path: Path, monkeypatch, real_embedder
) -> None:
    from index.learner import uncertain_documents
    from index.reports import ask_items

    settings = _with_sleep_medicine(tmp_path, monkeypatch)
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings)
    others = _stubs(
        [
            "Image captioning with transformers",
            "Speech recognition for meetings",
            "Graph coloring heuristics",
            "Protein structure prediction for drug design",
            "Segmenting brain tumours in MRI scans",
        ]
    )
    store.upsert([*SLEEP_PAPERS, *others])
    index_and_match(store, settings, embedder=real_embedder)

    def ids(picked: list[tuple[int, float]]) -> list[str]:
        docs = store.get_many([d for d, _ in picked])
        return [docs[d].canonical_id for d, _ in picked]

    # Most likely first: both sleep papers before any other health paper.
    first = ids(
        uncertain_documents(store, settings, taxonomy, "health", n=3, use_case="sleep_medicine")
    )
    assert sorted(first[:2]) == ["sleep-1", "sleep-2"]
    items = ask_items(store, settings, "health", n=2)
    asked = [i for i in items if i.use_case == "sleep_medicine"]
    assert len(asked) == 1 and asked[0].canonical_id in ("sleep-1", "sleep-2")
    assert "Veille knows 0 papers of the use case 'Sleep medicine'" in asked[0].why
    assert all(i.use_case == "" for i in items if i not in asked)  # the sector's own questions
    assert len({i.canonical_id for i in items}) == len(items)  # nobody is asked twice
    # Finance's use cases with few judged papers are scored by description too, but no paper
    # here comes close to theirs: no question rather than a wasted one.
    assert not [i for i in ask_items(store, settings, "finance", n=0) if i.use_case]
    # An answer about the use case is not asked again; the matcher learns from it.
    record_feedback(
        store, settings, "sleep-1", sector="health", use_case="sleep_medicine", fits=True
    )
    retrain_matcher(store, settings, embedder=real_embedder)
    again = ids(
        uncertain_documents(store, settings, taxonomy, "health", n=3, use_case="sleep_medicine")
    )
    assert again[0] == "sleep-2" and "sleep-1" not in again
    asked = [i for i in ask_items(store, settings, "health", n=0) if i.use_case]
    assert [i.canonical_id for i in asked] == ["sleep-2"]
    assert "knows 1 paper of" in asked[0].why
    store.close()
