"""`mmoeex tune`: search hyperparameters with Keras Tuner, export the best."""

from mmoeex_tf.choices import TUNERS
from mmoeex_tf.cli.options import add_config_option, add_run_options, run_config

USAGE = (
    "mmoeex tune [--config FILE] [options] [--tuner random|bayesian|hyperband]",
    "mmoeex tune [options] --tuner-role chief|worker --oracle HOST:PORT",
)


def add_command(commands):
    """Adds the `tune` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "tune",
        help="search hyperparameters with Keras Tuner, export the best model",
        description=(
            "Search MMoEEx hyperparameters with Keras Tuner on a data set, "
            "then save and export the best model."
        ),
    )
    add_config_option(parser)
    add_run_options(parser, exclude=("output",))
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def add_arguments(parser):
    """Adds the search and export options of `mmoeex tune` to a parser.

    The data set and the settings not searched come from the run options
    (`--config`, `--data`, `--epochs`, ...), which `add_command` adds too.

    Args:
        parser: The parser (or subparser) of the command.
    """
    group = parser.add_argument_group("search options")
    group.add_argument(
        "--tuner",
        default="random",
        choices=TUNERS,
        help="search algorithm (random)",
    )
    group.add_argument(
        "--max-trials",
        type=int,
        default=10,
        metavar="N",
        help="trials of random and bayesian search (10)",
    )
    group.add_argument(
        "--objective-task",
        metavar="TASK",
        help="optimise this task's validation metric (the mean over tasks)",
    )
    group.add_argument(
        "--objective-metric",
        metavar="METRIC",
        help="metric of the objective (the task's first metric; for the mean, "
        "the mean score)",
    )
    group.add_argument(
        "--search-dir",
        default="runs/tuning",
        metavar="DIR",
        help="folder of the trials; an existing search resumes (runs/tuning)",
    )
    group.add_argument(
        "--tuner-role",
        choices=("chief", "worker"),
        help="part in a parallel search: the chief serves the trials at "
        "--oracle and exports the best model, workers run the trials (by "
        "default KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and "
        "KERASTUNER_ORACLE_PORT say; without them, the search runs alone)",
    )
    group.add_argument(
        "--oracle",
        metavar="HOST:PORT",
        help="address of the chief's oracle, with --tuner-role",
    )
    group.add_argument(
        "--name", help="name of the exported best model (the data set's name)"
    )
    group.add_argument(
        "--base-dir",
        default="saved_models",
        metavar="DIR",
        help="folder of the served models (saved_models)",
    )


def handle(args):
    """Runs `mmoeex tune` with the run config of the arguments."""
    return tune(run_config(args), args)


def tune(config, args):
    """Searches, then saves and exports the best model.

    Prints the best hyperparameters and objective value, saves the best
    model as `<search dir>/<data set>/best_model.keras` and exports it as
    the next version of `<base dir>/<name>/` for TF Serving. In a parallel
    search the chief does this once every trial has ended; a worker runs
    trials until none is left and writes only the trials.

    Args:
        config: The resolved `RunConfig` of the run options.
        args: The parsed arguments of `add_arguments`.

    Returns:
        The exit code, 0.

    Raises:
        MMoEExError: for invalid options or data, or a parallel search whose
            chief or workers do not come (see
            `mmoeex_tf.integrations.parallel_tuning`).
    """
    from mmoeex_tf.integrations import tuning
    from mmoeex_tf.integrations.parallel_tuning import FINGERPRINT, tuner_role

    tuner = tuning.search(
        config,
        tuner=args.tuner,
        max_trials=args.max_trials,
        objective_task=args.objective_task,
        objective_metric=args.objective_metric,
        directory=args.search_dir,
        role=args.tuner_role,
        oracle=args.oracle,
    )
    if tuner_role() == "worker":
        print(f"Tuner worker {tuner.tuner_id}: no trial left; the chief exports.")
        return 0
    best_trial, model_file, path = tuning.export_best(
        tuner, config, args.search_dir, args.name, args.base_dir
    )
    print(f"Best {tuner.oracle.objective.name}: {best_trial.score:.4f}")
    for name, value in best_trial.hyperparameters.values.items():
        if name != FINGERPRINT:
            print(f"  {name}: {value}")
    print(f"Saved {model_file}; exported to {path}")
    return 0
