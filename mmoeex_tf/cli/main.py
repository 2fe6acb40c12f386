"""The `mmoeex` command: train, evaluate and inspect multi-task models.

    mmoeex train [--config FILE] [options]
    mmoeex train --resume DIR
    mmoeex evaluate MODEL --data NAME [--data-path PATH] [--split test]
    mmoeex diversity MODEL --data NAME [--data-path PATH] [--output DIR]
    mmoeex export MODEL [--name NAME] [--version N] [--base-dir DIR]
    mmoeex tune [--config FILE] [options] [--tuner random|bayesian|hyperband]

Invalid input (unknown data set, model or config key, a missing or
malformed file) prints one `error: ...` line to stderr and exits with 2.
"""

import argparse
import dataclasses
import pathlib
import sys
import time

import pandas as pd

from mmoeex_tf import runs
from mmoeex_tf.analysis.diversity import (
    diversity_score,
    expert_distance_matrix,
    gate_usage,
    plot_heatmap,
)
from mmoeex_tf.datasets import DATASETS
from mmoeex_tf.datasets.base import SPLITS
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.integrations import export
from mmoeex_tf.runs import grouping_report
from mmoeex_tf.runs.config import (
    EXPERT_KINDS,
    MODELS,
    MODES,
    OPTIMIZATIONS,
    RunConfig,
    read_config_file,
)

DEFAULTS = RunConfig()
CONFIG_KEYS = tuple(field.name for field in dataclasses.fields(RunConfig))
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one `error: ...` line."""

    def error(self, message):
        self.exit(EXIT_INVALID, f"error: {message} (see '{self.prog} --help')\n")


def _choices(values):
    return ", ".join(values)


def _add_run_options(parser, with_output=True):
    group = parser.add_argument_group(
        "run options", "override the config file; defaults in parentheses"
    )

    def option(flag, key, text, **kwargs):
        default = getattr(DEFAULTS, key)
        if isinstance(default, tuple):
            text += f" ({' '.join(map(str, default))})"
        elif default is not None:
            text += f" ({default})"
        group.add_argument(
            flag, dest=key, default=argparse.SUPPRESS, help=text, **kwargs
        )

    option("--data", "data", f"data set: {_choices(DATASETS)}", metavar="NAME")
    option(
        "--data-path",
        "data_path",
        "data file or folder; needed for physio4, tox21 and toxcast",
        metavar="PATH",
    )
    option(
        "--limit-rows",
        "limit_rows",
        "train on a random subset of N training rows (quick runs); "
        "validation and test stay whole",
        type=int,
        metavar="N",
    )
    option("--model", "model", f"architecture: {_choices(MODELS)}", metavar="NAME")
    option("--experts", "experts", "number of experts", type=int, metavar="E")
    option(
        "--expert-units",
        "expert_units",
        "layer widths of each expert",
        type=int,
        nargs="+",
        metavar="U",
    )
    option(
        "--expert-kind",
        "expert_kind",
        f"expert network: {_choices(EXPERT_KINDS)} (all but dense need sequences)",
        metavar="KIND",
    )
    option(
        "--expert-dropout",
        "expert_dropout",
        "dropout in the experts",
        type=float,
        metavar="RATE",
    )
    option(
        "--alpha",
        "alpha",
        "MMoEEx: fraction of experts tied to one task",
        type=float,
        metavar="A",
    )
    option("--mode", "mode", f"MMoEEx: {_choices(MODES)}", metavar="MODE")
    option(
        "--tower-units",
        "tower_units",
        "layer widths of each task tower (none: no tower layer)",
        type=int,
        nargs="*",
        metavar="U",
    )
    option(
        "--tower-dropout",
        "tower_dropout",
        "dropout in the towers",
        type=float,
        metavar="RATE",
    )
    option(
        "--optimization",
        "optimization",
        f"{_choices(OPTIMIZATIONS)} (maml: MAML-MTL)",
        metavar="NAME",
    )
    option(
        "--learning-rate",
        "learning_rate",
        "AdamW learning rate",
        type=float,
        metavar="LR",
    )
    option(
        "--weight-decay", "weight_decay", "AdamW weight decay", type=float, metavar="WD"
    )
    option("--batch-size", "batch_size", "examples per step", type=int, metavar="B")
    option("--epochs", "epochs", "passes over the training data", type=int, metavar="N")
    option("--seed", "seed", "random seed", type=int, metavar="S")
    option(
        "--non-finite",
        "non_finite",
        "a step with a NaN/inf loss or gradient: skip (and count) or stop",
        metavar="POLICY",
    )
    option(
        "--steps-per-execution",
        "steps_per_execution",
        "training steps per call of the compiled loop",
        type=int,
        metavar="N",
    )
    option(
        "--jit-compile",
        "jit_compile",
        "compile the steps with XLA",
        action=argparse.BooleanOptionalAction,
    )
    if with_output:
        option(
            "--output",
            "output",
            "run folder; by default runs/<data>-<model>-<timestamp>",
            metavar="DIR",
        )


def _add_config_option(parser):
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of run options (keys as below with _ for -, "
        "plus data_options and maml: keyword arguments of the data loader "
        "and of MAMLMTL)",
    )


def _add_tune_command(commands):
    tune = commands.add_parser(
        "tune",
        help="search hyperparameters with Keras Tuner, export the best model",
        description=(
            "Search MMoEEx hyperparameters with Keras Tuner on a data set, "
            "then save and export the best model."
        ),
    )
    _add_config_option(tune)
    _add_run_options(tune, with_output=False)
    from mmoeex_tf.integrations import tuning

    tuning.add_tune_arguments(tune)
    tune.set_defaults(handler=lambda args: tuning.run_tune(run_config(args), args))


def _add_group_command(commands):
    group = commands.add_parser(
        "group",
        help="group tasks by head-weight similarity, compare with all-in-one",
        description=(
            "Train all tasks jointly, group them by the similarity of their "
            "head weights (Shiri and Sun), train one model per group and "
            "compare it on the test split with one model for all tasks (and, "
            "with --single-task, one model per task). Writes summary.csv, "
            "task_scores.csv, groups.txt and similarity.png. The model options "
            "describe every model trained."
        ),
    )
    _add_config_option(group)
    _add_run_options(group)
    group.add_argument(
        "--groups",
        type=int,
        nargs="+",
        default=[2, 4, 8],
        metavar="N",
        help="candidate numbers of groups, chosen on validation (2 4 8)",
    )
    group.add_argument(
        "--single-task", action="store_true", help="also train one model per task"
    )
    group.set_defaults(handler=_group)


def _group(args):
    config = run_config(args)
    default = f"runs/{config.data}-group-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = runs.new_output_folder(
        dataclasses.replace(config, output=config.output or default)
    )
    data = runs.load_run_data(config)

    def build(tasks):
        return runs.build_model(config, tasks, data.x["train"].shape[1:])

    comparison = grouping_report.compare_groupings(
        data, build, args.groups, config.epochs, config.batch_size, args.single_task
    )
    with runs.staged_folder(folder) as staging:
        grouping_report.write_report(comparison, staging)
    print(comparison.table().to_string(index=False))
    print(f"Groups: {[len(g) for g in comparison.grouping.groups]}; folder: {folder}")
    return 0


def _add_model_and_data(parser):
    parser.add_argument("model_file", metavar="MODEL", help="a saved model.keras")
    parser.add_argument(
        "--data", required=True, metavar="NAME", help=f"data set: {_choices(DATASETS)}"
    )
    parser.add_argument("--data-path", metavar="PATH", help="data file or folder")
    parser.add_argument(
        "--split", default="test", choices=SPLITS, help="split to use (test)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1024, help="examples per pass (1024)"
    )


def build_parser():
    """Returns the `mmoeex` argument parser."""
    parser = _Parser(
        prog="mmoeex",
        description="Heterogeneous multi-task learning with mixtures of experts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
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
    _add_config_option(train)
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the killed run in DIR from its last checkpoint, with its "
        "saved config (no other run option)",
    )
    train.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or summary"
    )
    _add_run_options(train)
    train.set_defaults(handler=_train)
    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model on a data set",
        description="Score a saved model on one split of a data set.",
    )
    _add_model_and_data(evaluate)
    evaluate.set_defaults(handler=_evaluate)
    diversity = commands.add_parser(
        "diversity",
        help="expert diversity and gate usage of a saved model",
        description=(
            "Print the expert distance matrix, the diversity score (its mean) "
            "and the mean gate weights of a saved model on a data set; save "
            "diversity.png, distance_matrix.csv and gate_usage.csv."
        ),
    )
    _add_model_and_data(diversity)
    diversity.add_argument(
        "--output", metavar="DIR", help="folder of the files (the model's folder)"
    )
    diversity.set_defaults(handler=_diversity)
    exporter = commands.add_parser(
        "export",
        help="export a saved model for TF Serving",
        description="Export a saved model as a SavedModel in the TF Serving layout.",
    )
    export.add_export_arguments(exporter)
    exporter.set_defaults(handler=export.run_export)
    _add_tune_command(commands)
    _add_group_command(commands)
    return parser


def run_config(args):
    """Resolves the run config: defaults, then the config file, then options."""
    values = read_config_file(args.config) if args.config else {}
    options = {key: value for key, value in vars(args).items() if key in CONFIG_KEYS}
    return RunConfig.from_dict({**values, **options})


def _train(args):
    verbose = 0 if args.quiet else 1
    if args.resume is None:
        run = runs.run(run_config(args), verbose=verbose)
    else:
        given = [key for key in vars(args) if key in CONFIG_KEYS] + (
            ["config"] if args.config else []
        )
        if given:
            raise MMoEExError(
                f"--resume continues a run with its saved config; do not pass "
                f"{', '.join('--' + key.replace('_', '-') for key in given)}."
            )
        run = runs.resume(args.resume, verbose=verbose)
    result = run.result
    if result.best_epoch is None:
        where = "of the initial weights (no epoch finished)"
    else:
        where = (
            f"at epoch {result.best_epoch} of {len(result.history)} "
            f"(best validation score {result.best_score:.4f})"
        )
    print(f"\nTest metrics {where}, {result.seconds:.0f} s of training:")
    print(runs.format_scores(run.scores["test"]))
    print(f"Run folder: {run.folder}")
    skipped = int(result.history["non_finite_steps"].sum())
    if skipped:
        print(
            f"warning: {skipped} training step(s) had a NaN or infinite loss or "
            "gradient and were skipped",
            file=sys.stderr,
        )
    if result.interrupted:
        print(
            "interrupted: outputs written with the best weights so far; finish "
            f"the run with 'mmoeex train --resume {run.folder}'",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _model_and_data(args):
    model = runs.load_saved_model(args.model_file)
    data = runs.load_data(args.data, args.data_path)
    runs.check_compatible(model, data)
    return model, data


def _evaluate(args):
    model, data = _model_and_data(args)
    scores = runs.score_split(model, data, args.split, args.batch_size)
    print(f"{data.name} {args.split} metrics of {args.model_file}:")
    print(runs.format_scores(scores))
    return 0


def _diversity(args):
    model, data = _model_and_data(args)
    x = data.x[args.split]
    usage = gate_usage(model, x, args.batch_size)
    experts = list(usage.columns)
    distances = pd.DataFrame(
        expert_distance_matrix(model, x, args.batch_size),
        index=pd.Index(experts, name="expert"),
        columns=experts,
    )
    score = diversity_score(distances.to_numpy())
    print(f"Diversity score on {data.name} {args.split}: {score:.4f}")
    print("\nExpert distance matrix (normalised to a largest entry of 1):")
    print(distances.to_string(float_format="{:.3f}".format))
    print("\nMean gate weight per task and expert:")
    print(usage.to_string(float_format="{:.3f}".format))
    folder = pathlib.Path(args.output or pathlib.Path(args.model_file).parent)
    with runs.staged_folder(folder) as staging:
        distances.to_csv(staging / "distance_matrix.csv")
        usage.to_csv(staging / "gate_usage.csv")
        plot_heatmap(
            distances,
            staging / "diversity.png",
            title=f"Expert distances, {data.name} {args.split} (score {score:.3f})",
        )
    print(f"\nWrote diversity.png, distance_matrix.csv, gate_usage.csv to {folder}")
    return 0


def main(argv=None):
    """Runs the `mmoeex` command.

    Args:
        argv: The arguments after the program name; `sys.argv[1:]` if
            `None`.

    Returns:
        The exit code: 0 on success, 2 for invalid input, 130 when Ctrl-C
        interrupted (after training: the outputs are still written).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed
        return stop.code if isinstance(stop.code, int) else EXIT_INVALID
    try:
        return args.handler(args)
    except MMoEExError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
