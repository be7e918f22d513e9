"""Trend detection: bursts found quickly, no false alarms on flat series; real counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from core.models import Document
from core.store import Store
from index.embedder import HashEmbedder
from index.pipeline import index_and_match
from index.trends import build_report, trend_report, week_start

STARTS = [datetime(2026, 1, 5) + timedelta(weeks=i) for i in range(12)]


def test_injected_burst_is_found_within_two_weeks_and_flat_series_are_quiet() -> None:
    rng = np.random.default_rng(3)
    alarms = 0
    found_at = []
    for _trial in range(100):
        totals = rng.poisson(60, size=12).tolist()
        flat = rng.poisson(5, size=12).tolist()
        burst = rng.poisson(5, size=12).tolist()
        # the burst starts in week 11: check the report that ends that very week...
        burst_first_week = burst[:10] + [burst[10] + 12]
        report = build_report(
            "technique",
            STARTS[:11],
            {"flat": flat[:11], "burst": burst_first_week},
            totals[:11],
            {},
        )
        item = {i.key: i for i in report.items}
        if item["burst"].burst:
            found_at.append(1)
        else:
            # ...or the next one (two weeks in)
            series = burst_first_week + [burst[11] + 12]
            report = build_report("technique", STARTS, {"burst": series}, totals, {})
            found_at.append(2 if report.items[0].burst else 0)
        alarms += item["flat"].burst
    assert all(f in (1, 2) for f in found_at), found_at
    assert np.mean([f == 1 for f in found_at]) > 0.8
    assert alarms <= 2  # p < 0.01 per series: about one false alarm in a hundred at most


def test_small_counts_and_new_items() -> None:
    totals = [20] * 12
    quiet = build_report(
        "technique", STARTS, {"rare": [0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0]}, totals, {}
    )
    assert not quiet.items[0].burst  # one or two documents never make a burst
    new = build_report("technique", STARTS, {"fresh": [0] * 10 + [3, 4]}, totals, {})
    assert new.items[0].new and new.items[0].burst
    busy_week = build_report(
        "technique", STARTS, {"steady": [5] * 10 + [10, 10]}, [50] * 10 + [100, 100], {}
    )
    assert not busy_week.items[0].burst  # twice the documents that week, same share


def test_trend_report_counts_real_documents(settings, store: Store) -> None:
    base = datetime(2026, 2, 2, tzinfo=UTC)
    docs = []
    for week in range(8):
        for i in range(3 if week < 6 else 9):
            docs.append(
                Document(
                    f"w{week}-{i}",
                    f"LSTM model number {week}-{i}"
                    if week >= 6
                    else f"Random forest study {week}-{i}",
                    "A recurrent LSTM network for sequences."
                    if week >= 6
                    else "Gradient boosting and a random forest.",
                    published=base + timedelta(weeks=week, days=1),
                )
            )
    store.upsert(docs)
    settings = settings.model_copy(update={"model": "hash:64"})
    index_and_match(store, settings, embedder=HashEmbedder(64))
    report = trend_report(
        store, settings, by="technique", weeks=8, now=base + timedelta(weeks=7, days=3)
    )
    assert report.weeks[0] == week_start(base).date().isoformat()
    assert report.totals == [3, 3, 3, 3, 3, 3, 9, 9]
    rnn = next(i for i in report.items if i.key == "rnn")
    assert rnn.weekly == [0, 0, 0, 0, 0, 0, 9, 9] and rnn.burst and rnn.new
    ml = next(i for i in report.items if i.key == "machine_learning")
    assert ml.weekly[:6] == [3] * 6 and not ml.burst
    # the window ends on the Thursday of its last week: that week's counts are partial
    assert report.last_week_days == 4 and report.to_json()["last_week_days"] == 4
    sunday_night = base + timedelta(weeks=8, seconds=-1)
    whole = trend_report(store, settings, by="technique", weeks=8, now=sunday_night)
    assert whole.last_week_days == 7
    assert rnn.label == rnn.name  # a technique belongs to no sector
    # A use case is shown under its sector's name, as people know it, not its key.
    cases = trend_report(store, settings, by="use_case", weeks=8, now=sunday_night)
    fraud = next(i for i in cases.items if i.key == "fraud_detection")
    assert (
        fraud.sector == "finance"
        and fraud.label == "Financial services: Fraud detection and anti-money laundering"
    )
