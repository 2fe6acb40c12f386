"""The `mmoeex` command: train, evaluate and inspect multi-task models.

    mmoeex train [--config FILE] [options]
    mmoeex train --data table --data-path FILE --target COLUMN:KIND ... [options]
    mmoeex train --resume DIR
    mmoeex evaluate MODEL --data NAME [--data-path PATH] [--split test|all]
    mmoeex predict MODEL --data NAME [--data-path PATH] --output CSV [--split S]
    mmoeex diversity MODEL --data NAME [--data-path PATH] [--output DIR]
    mmoeex export MODEL [--name NAME] [--version N] [--base-dir DIR]
    mmoeex tune [--config FILE] [options] [--tuner random|bayesian|hyperband]
    mmoeex tune [options] --tuner-role chief|worker --oracle HOST:PORT
    mmoeex group [--config FILE] [options] [--groups N ...] [--single-task]

Each sub-command is a module of `mmoeex_tf.cli` with its `USAGE` lines, an
`add_command` that adds its parser and the `handle` function that runs it;
`COMMANDS` lists them; a handler imports the model code it runs, so that
parsing the arguments (`--help`, a usage error) imports neither TensorFlow
nor Keras. The commands that read a saved model's data take the data
options of `train` (`--target`, `--id-column`, `--na-values`,
`--smiles-column`, ...); a model trained on a table brings its own. Invalid
input (unknown data set, model or config key, a missing or malformed file)
prints one `error: ...` line to stderr and exits with 2. TensorFlow's log
lines are off (mmoeex_tf silences its native start-up lines, `main` its
Python absl warnings); set `TF_CPP_MIN_LOG_LEVEL=0` to see them.
"""

import argparse
import os
import sys

from mmoeex_tf.cli import diversity, evaluate, export, group, predict, train, tune
from mmoeex_tf.cli.options import EXIT_INTERRUPTED, EXIT_INVALID, Parser
from mmoeex_tf.errors import MMoEExError

COMMANDS = (train, evaluate, predict, diversity, export, tune, group)


def usage_lines():
    """The usage lines of every sub-command, in the order of `COMMANDS`."""
    return [line for command in COMMANDS for line in command.USAGE]


def build_parser():
    """Returns the `mmoeex` argument parser, a sub-parser per command."""
    parser = Parser(
        prog="mmoeex",
        description="Heterogeneous multi-task learning with mixtures of experts.",
        epilog="usage of the commands (see 'mmoeex COMMAND --help'):\n"
        + "\n".join(f"  {line}" for line in usage_lines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_command(commands)
    return parser


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
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() not in ("0", "1"):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
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
