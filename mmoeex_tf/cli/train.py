"""`mmoeex train`: train a model and write a run folder, or resume a run."""

import sys

from mmoeex_tf.cli.options import (
    EXIT_INTERRUPTED,
    add_config_option,
    add_run_options,
    add_target_option,
    given_run_options,
    run_config,
)
from mmoeex_tf.errors import MMoEExError

USAGE = (
    "mmoeex train [--config FILE] [options]",
    "mmoeex train --data table --data-path FILE --target COLUMN:KIND ... [options]",
    "mmoeex train --resume DIR",
)


def add_command(commands):
    """Adds the `train` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "train",
        help="train a model and write a run folder",
        description=(
            "Train a model and write a run folder: model.keras (weights of "
            "the epoch with the best validation score), metrics.json, "
            "metrics.csv, history.csv, learning_curves.png, config.yaml. "
            "Without options: MMoEEx on the bundled census3 data. Ctrl-C "
            "stops training, keeps the best weights so far and still writes "
            "the folder (exit code 130). A checkpoint is kept after every "
            "epoch: --resume continues a run that was killed."
        ),
    )
    add_config_option(parser)
    parser.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the killed run in DIR from its last checkpoint, with its "
        "saved config (no other run option)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar, data summary or metrics table: print the run "
        "folder only (and warnings)",
    )
    add_run_options(parser, exclude=("targets",))
    add_target_option(parser)
    parser.set_defaults(handler=handle)


def handle(args):
    """Runs `mmoeex train`; returns the exit code (130 after Ctrl-C)."""
    from mmoeex_tf import runs

    verbose = 0 if args.quiet else 1
    if args.resume is None:
        run = runs.run(run_config(args), verbose=verbose)
    else:
        given = list(given_run_options(args)) + (["config"] if args.config else [])
        if given:
            raise MMoEExError(
                f"--resume continues a run with its saved config; do not pass "
                f"{', '.join('--' + key.replace('_', '-') for key in given)}."
            )
        run = runs.resume(args.resume, verbose=verbose)
    _print_summary(run, args.quiet)
    if run.result.interrupted:
        print(
            "interrupted: outputs written with the best weights so far; finish "
            f"the run with 'mmoeex train --resume {run.folder}'",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _print_summary(run, quiet):
    from mmoeex_tf.runs.report import format_scores

    result = run.result
    if run.folder is None:  # a worker of a multi-worker run
        print("Worker done; the chief wrote the run folder.")
        return
    if result.best_epoch is None:
        where = "of the initial weights (no epoch finished)"
    else:
        where = (
            f"at epoch {result.best_epoch} of {len(result.history)} "
            f"(best validation score {result.best_score:.4f})"
        )
    if not quiet:
        print(f"\nTest metrics {where}, {result.seconds:.0f} s of training:")
        print(format_scores(run.scores["test"]))
    print(f"Run folder: {run.folder}")
    skipped = int(result.history["non_finite_steps"].sum())
    if skipped:
        print(
            f"warning: {skipped} training step(s) had a NaN or infinite loss or "
            "gradient and were skipped",
            file=sys.stderr,
        )
