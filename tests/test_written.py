"""The team's written examples (index/labels.py): shipped judged, with vectors in step, and
used by the matcher to train only.

Uses the real bundled model (loaded once per session) and the files shipped in
index/data/labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index import labels as labels_module
from index.labels import (
    SECTORS,
    labels_fingerprint,
    parse_written,
    read_written,
    vectors_for_written,
    written_vectors,
)
from index.learner import shipped_matcher
from index.taxonomy import load_taxonomy
from index.training import examples_for, train, written_examples

RETAIL_SHELF = (
    "Counting facings on supermarket shelves from aisle cameras",
    "Store managers lose sales when shelves run empty between restocking rounds. We detect "
    "product facings in photos taken by ceiling cameras in 40 grocery stores, match them to "
    "the planogram, and alert staff to gaps; out-of-shelf time fell by a third in a pilot.",
)


def _line(**fields) -> str:
    base = {
        "key": "retail-001",
        "written_for": "retail",
        "kind": "fits",
        "use_case": "point_of_sale",
        "sectors": {s: s == "retail" for s in SECTORS},
        "title": "A title",
        "abstract": "An abstract.",
    }
    return json.dumps({**base, **fields})


def test_written_examples_are_judged_and_their_vectors_are_shipped(settings) -> None:
    rows = read_written()
    assert len(rows) >= 200
    taxonomy = load_taxonomy(settings)
    for row in rows:
        assert row.written_for in ("finance", "legal", "retail"), row.key
        if row.kind == "fits":
            uc_keys = {uc.key for uc in taxonomy.sector(row.written_for).use_cases}
            assert row.use_case in uc_keys, row.key
        # Every example carries at least one label both judges agreed on.
        assert any(v is not None for v in row.sectors.values()), row.key
    aimed = [r for r in rows if r.kind == "fits" and r.sectors[r.written_for]]
    near = [r for r in rows if r.kind == "near_miss" and r.sectors[r.written_for] is False]
    assert len(aimed) >= 150 and len(near) >= 60
    # A fresh install never embeds them: every text has its bundled vector, digest in step
    # (else run `python -m index.labels --written`, then `python -m index.learner`).
    model, vectors = written_vectors()
    assert model == "bundled:all-MiniLM-L6-v2"
    assert {r.key: r.digest for r in rows} == {k: d for k, (d, _) in vectors.items()}


def test_written_examples_train_but_never_count_in_validation_or_explain(
    settings, real_embedder
) -> None:
    taxonomy = load_taxonomy(settings)
    plain = examples_for(None, taxonomy, real_embedder, use_written=False)
    extra = written_examples(taxonomy, real_embedder)
    assert len(extra) == len(read_written())
    assert all(e.origin == "written" for e in extra)
    targets = [*SECTORS, "retail/point_of_sale"]
    without = train(plain, taxonomy, real_embedder, targets=targets)
    with_written = train(plain + extra, taxonomy, real_embedder, targets=targets)
    # `veille matcher status` counts judged documents only, and its figures come from them.
    for key in targets:
        assert with_written.targets[key].positives == without.targets[key].positives, key
        assert with_written.targets[key].negatives == without.targets[key].negatives, key
    assert with_written.counts["written"] == len(extra)
    # "like ..." evidence cites judged papers or users' answers, never a written abstract.
    assert not [k for k in with_written.example_keys if k.startswith("written:")]
    # And they teach: a shelf-monitoring abstract, a use case with few judged papers, is
    # far more likely retail with them than without.
    vector = real_embedder.encode([f"{RETAIL_SHELF[0]}. {RETAIL_SHELF[1]}"])
    before = without.predict(vector, ["retail"])["retail"][0]
    after = with_written.predict(vector, ["retail"])["retail"][0]
    assert after > before
    assert after >= with_written.targets["retail"].threshold


def test_shipped_matcher_was_trained_with_the_written_examples(settings) -> None:
    shipped = shipped_matcher("bundled:all-MiniLM-L6-v2", load_taxonomy(settings))
    assert shipped is not None and shipped.labels == labels_fingerprint()
    assert shipped.counts.get("written") == len(read_written())


def test_bad_written_lines_are_refused_naming_the_line() -> None:
    good = _line()
    cases = {
        "{oops": "line 2: not JSON",
        _line(kind="maybe", key="retail-002"): "kind 'maybe' is not one of",
        _line(key="retail-001"): "key 'retail-001' appears twice",
        _line(key="retail-003", sectors={"retail": True}): "'sectors' must give a label",
        _line(key="retail-004", title=" "): "empty title or abstract",
        json.dumps({"key": "retail-005"}): "missing field",
    }
    for bad, message in cases.items():
        with pytest.raises(ValueError, match=message) as err:
            parse_written(f"{good}\n{bad}\n", "written.jsonl")
        assert "written.jsonl, line 2" in str(err.value)
    rows = parse_written(good + "\n\n")
    assert rows[0].sectors["retail"] is True and rows[0].use_case == "point_of_sale"


def test_an_edited_text_is_embedded_again_not_read_from_a_stale_vector(
    monkeypatch, real_embedder
) -> None:
    rows = read_written()[:2]
    edited = type(rows[0])(
        rows[0].key,
        rows[0].written_for,
        rows[0].kind,
        rows[0].use_case,
        rows[0].sectors,
        RETAIL_SHELF[0],
        RETAIL_SHELF[1],
    )
    monkeypatch.setattr(labels_module, "read_written", lambda: [edited, rows[1]])
    vectors = vectors_for_written(real_embedder)
    fresh = real_embedder.encode([edited.text])[0]
    assert np.allclose(vectors[edited.key], fresh, atol=1e-4)
    _, shipped = written_vectors()
    assert np.allclose(vectors[rows[1].key], shipped[rows[1].key][1], atol=1e-3)
    assert not np.allclose(vectors[edited.key], shipped[edited.key][1], atol=1e-2)


def test_rewriting_written_vectors_keeps_unchanged_ones(tmp_path: Path, capsys) -> None:
    # The command needs something to do: records, --written, or both.
    with pytest.raises(SystemExit):
        labels_module.main([])
    assert "give the arXiv records, --written, or both" in capsys.readouterr().err
    out = tmp_path / "written_vectors.npz"
    counts = labels_module.write_written_vectors(out)
    assert counts == {"kept": len(read_written()), "embedded": 0, "written": len(read_written())}
    with np.load(out) as data:
        assert [str(k) for k in data["keys"]] == [r.key for r in read_written()]
