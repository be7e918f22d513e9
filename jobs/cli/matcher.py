"""`veille matcher` and `veille feedback`: train the learned matcher, see how it does, and
tell it which matches fit."""

from __future__ import annotations

from pathlib import Path

import click

from core.markup import counted
from jobs.cli.common import (
    AppContext,
    command_options,
    echo_json,
    friendly_errors,
    name_column,
)


def _figure(value: float | None) -> str:
    return "   —" if value is None else f"{value:4.2f}"


@click.group("matcher")
def matcher_group() -> None:
    """The learned sector matcher: `veille matcher status`, `veille matcher train`."""


@matcher_group.command("train")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def train_cmd(app: AppContext, as_json: bool) -> None:
    """Train the matcher now from the team's labels, everyone's feedback and the taxonomy,
    then re-match every document from its stored vector (nothing is embedded again).

    The scheduler does this by itself after new feedback (job `matcher`).
    """
    from index.learner import matcher_status
    from index.matching import retrain_matcher
    from index.taxonomy import load_taxonomy

    store, settings = app.store(), app.settings()
    model, matched = retrain_matcher(store, settings, show_progress=not as_json)
    status = matcher_status(store, settings, load_taxonomy(settings))
    if as_json:
        echo_json({**status, "matched": matched})
        return
    click.echo(
        f"Trained in {model.seconds:.1f}s on "
        + _examples_text(model.counts)
        + f"; {counted(matched, 'document')} re-matched."
    )
    _print_targets(status, sectors_only=True)


# What each kind of training example is, in the words `veille matcher` prints.
ORIGIN_WORDS = {
    "team": "judged papers",
    "feedback": "documents with users' answers",
    "description": "use-case descriptions",
    "written": "team-written abstracts",
}


def _examples_text(counts: dict[str, int]) -> str:
    """ "3154 judged papers, 22 use-case descriptions, ..." (largest first)."""
    return ", ".join(
        f"{n} {ORIGIN_WORDS.get(origin, origin)}"
        for origin, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def _print_targets(status: dict, *, sectors_only: bool) -> None:
    from index.training import DESCRIPTION_Z, MIN_POSITIVES, is_sector

    shown = [t for t in status["targets"] if not (sectors_only and "/" in t["target"])]
    names = [
        t["name"] if "/" not in t["target"] else "  " + t["name"].split(" › ", 1)[1] for t in shown
    ]
    width, fit = name_column(["sector / use case / technique", *names])
    click.echo(
        f"\n{fit('sector / use case / technique')} {'mode':<12} {'pos':>4} {'neg':>5} "
        f"{'thr':>5} {'P':>4} {'R':>4} {'F1':>4} {'answers':>9}"
    )
    for t, name in zip(shown, names, strict=True):
        thr = "    —" if t["threshold"] is None else f"{t['threshold']:5.2f}"
        gate = t.get("named_threshold")
        given = t.get("answers") or {}
        answers = (
            f"{given.get('fits', 0)}/{given.get('does_not_fit', 0)}"
            if is_sector(t["target"])
            else ""
        )
        click.echo(
            f"{fit(name)} {_mode(t):<12} {t['positives']:>4} {t['negatives']:>5} {thr} "
            f"{_figure(t['precision'])} {_figure(t['recall'])} {_figure(t['f1'])} {answers:>9}"
            + (f"  named: {gate:.2f}" if gate is not None else "")
        )
    click.echo(
        "\nP, R and F1 are validation figures (out-of-fold, on the labels above). answers: "
        "the team's answers about a sector, fits/does not fit. "
        "A sector's "
        f"threshold gives the best F1 with precision at least {status['min_precision']:.2f}; "
        "a use case's, the best F1. A technique has two, chosen together for the best F1: "
        "thr for papers that do not name it, and 'named' for papers that do (when it is not "
        "shown, naming the technique is enough). "
        "mode: learned = calibrated classifier; learned+nn = the same, also weighing how much "
        "closer a document is to the nearest judged papers that fit than to those that do not; "
        "+w = fitted on whitened vectors, as a sector or technique with few positives is; "
        f"description = a use case with fewer than {MIN_POSITIVES} positives: a document fits "
        "when its similarity to the description (and the few confirmed papers) stands "
        f"{DESCRIPTION_Z:g} standard deviations above the judged papers' mean; "
        "fallback = description and keywords."
    )


def _mode(target: dict) -> str:
    return (
        target["mode"]
        + ("+w" if target.get("whitened") else "")
        + ("+nn" if target.get("neighbours") else "")
    )


@matcher_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--use-cases", is_flag=True, help="Also show every use case.")
@command_options
@click.pass_obj
@friendly_errors
def status_cmd(app: AppContext, as_json: bool, use_cases: bool) -> None:
    """Labels per sector, validation precision/recall/F1, and feedback waiting for training."""
    from index.learner import matcher_status
    from index.taxonomy import load_taxonomy

    store, settings = app.store(), app.settings()
    status = matcher_status(store, settings, load_taxonomy(settings))
    if as_json:
        echo_json(status)
        return
    if status["trained_at"] is None:
        click.echo(
            "The matcher has not been trained yet: run `veille index` or `veille matcher train`."
        )
    elif status["source"] == "shipped":
        click.echo(
            "No matcher trained in this data directory yet: the first `veille index` starts "
            f"from the one shipped with Veille, trained {status['trained_at']} on "
            f"{_examples_text(status['examples'])}. Its figures:"
        )
    elif status["shipped"]:
        click.echo(
            f"The matcher shipped with Veille, trained {status['trained_at']} on "
            f"{_examples_text(status['examples'])}. It stays in use until this data directory "
            "trains its own from your team's answers."
        )
    else:
        click.echo(
            f"Trained {status['trained_at']} in {status['seconds']:.1f}s on "
            f"{_examples_text(status['examples'])}."
        )
    click.echo(
        counted(status["answers"], "feedback answer")
        + (
            "; new answers wait for the next training."
            if status["waiting"]
            else "; all trained on."
        )
    )
    _print_targets(status, sectors_only=not use_cases)
    if status["orphaned"]:
        one = len(status["orphaned"]) == 1
        click.echo(
            f"\n{counted(len(status['orphaned']), 'answer')} {'names' if one else 'name'} a "
            f"sector or use case no longer in the taxonomy; {'it is' if one else 'they are'} kept "
            "(exported with `veille feedback export`) but not trained on:"
        )
        for o in status["orphaned"][:20]:
            click.echo(f"  {o['document']}  {o['sector']}/{o['use_case'] or '*'}  {o['verdict']}")


class _FeedbackGroup(click.Group):
    """`veille feedback ID ...` gives an answer; `veille feedback export|import` exchange."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["give", *args]
        return super().parse_args(ctx, args)


@click.group("feedback", cls=_FeedbackGroup)
def feedback_group() -> None:
    """Say whether a match fits: `veille feedback ID --sector S --fits` (or --does-not-fit).

    Answers are kept with who and when; the latest answer on an item counts. The matcher
    learns from them at its next training. `veille feedback export FILE` and
    `veille feedback import FILE` exchange answers as TSV between teams.
    """


@feedback_group.command("give")
@click.argument("document")
@click.option("--sector", required=True, help="Sector key or name (e.g. health).")
@click.option("--use-case", help="Optional: the use case it belongs to (e.g. diagnosis_support).")
@click.option("--fits", "says_fits", is_flag=True, help="Your answer: it fits.")
@click.option("--does-not-fit", "says_not", is_flag=True, help="Your answer: it does not fit.")
@click.option("--by", default="", help="Who answers (shown beside the item).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def give_cmd(
    app: AppContext,
    document: str,
    sector: str,
    use_case: str | None,
    says_fits: bool,
    says_not: bool,
    by: str,
    as_json: bool,
) -> None:
    """Record that DOCUMENT (arXiv id, URL or canonical id) fits SECTOR, or does not.

    The document's matches follow the answer at once (this loads the embedding model); the
    matcher learns from it at its next training."""
    from index.feedback import record_feedback, verdicts
    from index.matching import follow_answers

    if says_fits == says_not:
        raise click.UsageError(
            "say either --fits or --does-not-fit" + (", not both" if says_fits else "")
        )
    fits = says_fits
    store, settings = app.store(), app.settings()
    answer = record_feedback(
        store, settings, document, sector=sector, use_case=use_case, fits=fits, by=by
    )
    followed = follow_answers(store, settings, [answer.canonical_id])
    verdict = verdicts(store, [answer.canonical_id])[
        (answer.canonical_id, answer.sector, answer.use_case)
    ]
    if as_json:
        echo_json(
            {
                "document": answer.canonical_id,
                "sector": answer.sector,
                "use_case": answer.use_case,
                "fits": answer.fits,
                "by": answer.by,
                "when": answer.created.isoformat(),
                "verdict": verdict.text,
            }
        )
        return
    target = answer.sector + (f"/{answer.use_case}" if answer.use_case else "")
    click.echo(f"Recorded: {answer.canonical_id} {'fits' if fits else 'does not fit'} {target}.")
    click.echo(
        f"Verdict now: {verdict.text}. "
        + (
            "Its matches follow it already."
            if followed
            else "Its matches follow it once it is indexed, or at the next training."
        )
    )
    click.echo(
        "The matcher learns from it at its next training (scheduled, or `veille matcher train`)."
    )


@feedback_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@command_options
@click.pass_obj
@friendly_errors
def export_cmd(app: AppContext, file: str) -> None:
    """Write every answer as TSV to FILE (standard output by default)."""
    from index.feedback import export_tsv

    text = export_tsv(app.store())
    if file == "-":
        click.echo(text, nl=False)
        return
    Path(file).write_text(text, encoding="utf-8")
    click.echo(f"Wrote {counted(text.count(chr(10)) - 1, 'answer')} to {file}.")


@feedback_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@command_options
@click.pass_obj
@friendly_errors
def import_cmd(app: AppContext, file: str) -> None:
    """Add the answers of a TSV made by `veille feedback export` (checked first: a bad line
    stops the import and nothing is recorded; answers already here are skipped)."""
    from index.feedback import import_tsv
    from index.matching import follow_answers

    try:
        text = Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text") from None
    store, settings = app.store(), app.settings()
    report = import_tsv(store, settings, text, source=file)
    followed = follow_answers(store, settings, report.documents) if report.added else 0
    click.echo(
        f"Imported {counted(report.added, 'answer')} from {file}; {report.already} already present"
        + (
            f"; {report.not_in_store} about documents not in this store (kept, used once collected)"
            if report.not_in_store
            else ""
        )
        + "."
    )
    if report.added:
        click.echo(
            f"The matches of {counted(followed, 'document')} follow the answers already. "
            "Run `veille matcher train` to learn from them now."
        )


COMMANDS = [matcher_group, feedback_group]
