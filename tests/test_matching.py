"""Taxonomy, sector/technique matching, filters: with the real model on a small corpus."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.models import Document
from core.settings import ConfigError, load_settings
from core.store import Store
from index.indexer import update_index
from index.matching import filter_ids, matches_for, sector_overview, techniques_for
from index.pipeline import index_and_match
from index.taxonomy import load_taxonomy, parse_taxonomy
from jobs.cli import cli

DOCS = [
    Document(
        "fraud-gnn",
        "Graph neural networks catch card fraud",
        "Payment transactions link cards, merchants and devices. A graph neural network passes "
        "messages over this graph and flags fraudulent transactions and money laundering rings "
        "better than a per-transaction classifier.",
        published=datetime(2026, 3, 2, tzinfo=UTC),
    ),
    Document(
        "lstm-rul",
        "LSTM networks predict the remaining useful life of turbofan engines",
        "Vibration and temperature sensors on aircraft engines feed a long short-term memory "
        "network that estimates remaining useful life, so maintenance can be planned before "
        "a failure.",
        published=datetime(2026, 3, 3, tzinfo=UTC),
    ),
    Document(
        "contracts",
        "Extracting obligations from commercial contracts with language models",
        "A large language model reads supply agreements and extracts each clause, the party "
        "it binds and its deadline, helping lawyers review contracts faster.",
        published=datetime(2026, 3, 4, tzinfo=UTC),
    ),
    Document(
        "primes",
        "Gaps between consecutive primes in short intervals",
        "We prove a new upper bound on gaps between consecutive prime numbers using sieve "
        "estimates and exponential sums.",
        published=datetime(2026, 3, 5, tzinfo=UTC),
    ),
]


@pytest.fixture
def matched(settings, store: Store, real_embedder):
    store.upsert(
        [
            Document(**{f: getattr(d, f) for f in ("canonical_id", "title", "text", "published")})
            for d in DOCS
        ]
    )
    report = index_and_match(store, settings, embedder=real_embedder)
    assert report.matched == len(DOCS)
    return {d.canonical_id: d for d in (store.resolve(x.canonical_id) for x in DOCS)}


def test_shipped_taxonomy_covers_the_product(settings) -> None:
    taxonomy = load_taxonomy(settings)
    assert [s.key for s in taxonomy.sectors] == ["finance", "legal", "retail", "industry", "health"]
    assert all(len(s.use_cases) >= 3 for s in taxonomy.sectors)
    keys = {t.key for t in taxonomy.techniques}
    assert {"machine_learning", "deep_learning", "cnn", "rnn", "transformer", "gnn"} <= keys
    assert {"reinforcement_learning", "generative", "time_series", "clustering"} <= keys
    assert taxonomy.use_case("fraud detection").key == "fraud_detection"
    with pytest.raises(KeyError, match="known sectors"):
        taxonomy.sector("space")


def test_broken_taxonomy_names_file_and_line(tmp_path: Path) -> None:
    good_case = '[[sectors.use_cases]]\nkey = "x"\nname = "X"\ndescription = "d"\n'
    tech = '[[techniques]]\nkey = "t"\nname = "T"\ndescription = "d"\n'
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_taxonomy("[[sectors]\n", "bad.toml")
    missing = f'[[sectors]]\nkey = "energy"\n{good_case}{tech}'
    with pytest.raises(ConfigError, match=r"bad.toml, line 2: sector 'energy' is missing"):
        parse_taxonomy(missing, "bad.toml")
    sector_a = '[[sectors]]\nkey = "a"\nname = "A"\n'
    twice = f"{sector_a}{good_case}{sector_a}{good_case}{tech}"
    with pytest.raises(ConfigError, match="used twice"):
        parse_taxonomy(twice, "bad.toml")
    bad_key = f'[[sectors]]\nkey = "Energy Sector"\nname = "E"\n{good_case}{tech}'
    with pytest.raises(ConfigError, match="line 2: key 'Energy Sector'"):
        parse_taxonomy(bad_key, "bad.toml")


def test_documents_get_explained_matches_and_techniques(matched, store: Store) -> None:
    ids = {k: d.id for k, d in matched.items()}
    matches = matches_for(store, ids.values())
    fraud = matches[ids["fraud-gnn"]][0]
    assert (fraud.sector, fraud.use_case) == ("finance", "fraud_detection")
    assert 0 < fraud.score <= 1 and "fraud" in fraud.terms
    assert "similarity" in fraud.why and fraud.passage in matched["fraud-gnn"].embed_text
    assert matches[ids["lstm-rul"]][0].use_case == "predictive_maintenance"
    assert matches[ids["contracts"]][0].use_case == "contract_management"
    assert matches[ids["primes"]] == []  # fits no use case: not forced into one
    techs = techniques_for(store, ids.values())
    assert "gnn" in [t.technique for t in techs[ids["fraud-gnn"]]]
    assert "rnn" in [t.technique for t in techs[ids["lstm-rul"]]]
    assert "mentions 'lstm'" in next(t.why for t in techs[ids["lstm-rul"]] if t.technique == "rnn")
    assert filter_ids(store, load_settings(), sector="finance").tolist() == [ids["fraud-gnn"]]
    assert filter_ids(store, load_settings(), technique="rnn").tolist() == [ids["lstm-rul"]]
    views = sector_overview(store, load_settings(), "industry", per_use_case=3)
    maintenance = next(v for v in views if v.use_case.key == "predictive_maintenance")
    assert [doc.canonical_id for doc, _, _ in maintenance.items] == ["lstm-rul"]


def test_indexing_alone_does_not_match_the_pipeline_does(
    matched, store: Store, settings, real_embedder
) -> None:
    """update_index only indexes; index_and_match indexes, then matches what changed."""
    store.upsert(
        [
            Document(
                "aml-graph",
                "Graph learning flags money laundering rings in bank transfers",
                "Transfers between accounts form a graph; a graph neural network spots "
                "laundering rings and fraudulent accounts.",
                published=datetime(2026, 3, 6, tzinfo=UTC),
            )
        ]
    )
    new_id = store.resolve("aml-graph").id
    indexed = update_index(store, settings, embedder=real_embedder)
    assert (indexed.embedded, indexed.matched) == (1, 0)
    assert matches_for(store, [new_id])[new_id] == []
    report = index_and_match(store, settings, embedder=real_embedder)
    assert (report.embedded, report.matched) == (0, 1)
    assert matches_for(store, [new_id])[new_id][0].sector == "finance"


def test_taxonomy_change_rematches_without_reembedding(
    matched, store: Store, real_embedder, tmp_path, monkeypatch
) -> None:
    custom = tmp_path / "taxonomy.toml"
    custom.write_text(
        '[[sectors]]\nkey = "mathematics"\nname = "Mathematics"\n'
        '[[sectors.use_cases]]\nkey = "number_theory"\nname = "Number theory research"\n'
        'description = "Results about prime numbers, sieves and analytic number theory."\n'
        'keywords = ["prime", "sieve"]\n'
        '[[techniques]]\nkey = "sieve"\nname = "Sieve methods"\ndescription = "Sieve estimates."\n'
        'aliases = ["sieve"]\n'
    )
    monkeypatch.setenv("VEILLE_TAXONOMY_FILE", str(custom))
    settings = load_settings()
    report = index_and_match(store, settings, embedder=real_embedder)
    assert report.embedded == 0 and report.matched == len(DOCS)
    primes = matched["primes"].id
    assert filter_ids(store, settings, sector="mathematics").tolist() == [primes]
    assert matches_for(store, [matched["fraud-gnn"].id])[matched["fraud-gnn"].id] == []


def test_search_filters_and_json_annotations(matched) -> None:
    runner = CliRunner()
    out = runner.invoke(
        cli, ["search", "engines", "--sector", "industry", "--json"], catch_exceptions=False
    )
    hits = json.loads(out.output)
    assert [h["id"] for h in hits] == ["lstm-rul"]
    assert hits[0]["sectors"][0]["use_case"] == "predictive_maintenance"
    assert "rnn" in hits[0]["techniques"]
    out = runner.invoke(
        cli, ["search", "fraud", "--use-case", "fraud detection", "--technique", "gnn", "--json"]
    )
    assert [h["id"] for h in json.loads(out.output)] == ["fraud-gnn"]
    out = runner.invoke(cli, ["search", "x", "--technique", "quantum"])
    assert out.exit_code == 1 and "known techniques" in out.output
    out = runner.invoke(cli, ["sectors", "finance", "--json"], catch_exceptions=False)
    sector = json.loads(out.output)[0]
    fraud = next(u for u in sector["use_cases"] if u["use_case"] == "fraud_detection")
    assert fraud["matches"][0]["id"] == "fraud-gnn" and fraud["matches"][0]["why"]
