"""`mmoeex group`: group tasks by head weights, compare with all-in-one."""

import dataclasses
import time

from mmoeex_tf.cli.options import add_config_option, add_run_options, run_config

USAGE = ("mmoeex group [--config FILE] [options] [--groups N ...] [--single-task]",)


def add_command(commands):
    """Adds the `group` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "group",
        help="group tasks by head-weight similarity, compare with all-in-one",
        description=(
            "Train all tasks jointly, group them by the similarity of their "
            "head weights (Shiri and Sun), train one model per group and "
            "compare it on the test split with one model for all tasks (and, "
            "with --single-task, one model per task). Writes summary.csv, "
            "task_scores.csv, groups.txt and similarity.png. The model options "
            "describe every model trained, MMoEEx masks drawn from alpha (a "
            "config's gate_mask is not used)."
        ),
    )
    add_config_option(parser)
    add_run_options(parser)
    parser.add_argument(
        "--groups",
        type=int,
        nargs="+",
        default=[2, 4, 8],
        metavar="N",
        help="candidate numbers of groups, chosen on validation (2 4 8)",
    )
    parser.add_argument(
        "--single-task", action="store_true", help="also train one model per task"
    )
    parser.set_defaults(handler=handle)


def handle(args):
    """Runs `mmoeex group`; returns the exit code."""
    from mmoeex_tf import runs
    from mmoeex_tf.runs import grouping_report

    # The groups' models draw their masks: a gate_mask names all the tasks.
    config = dataclasses.replace(run_config(args), gate_mask={})
    default = f"runs/{config.data}-group-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = runs.new_output_folder(
        dataclasses.replace(config, output=config.output or default)
    )
    data = runs.load_run_data(config)

    def build(tasks):
        train = data.x["train"]
        model = runs.build_model(config, tasks, train.shape[1:], len(train))
        return runs.adapt_model(model, config, data.y["train"], train)

    comparison = grouping_report.compare_groupings(
        data, build, args.groups, config.epochs, config.batch_size, args.single_task
    )
    with runs.staged_folder(folder) as staging:
        grouping_report.write_report(comparison, staging)
    print(comparison.table().to_string(index=False))
    print(f"Groups: {[len(g) for g in comparison.grouping.groups]}; folder: {folder}")
    return 0
