"""`mmoeex evaluate`: the Keras metrics of a saved model on one split or all."""

from mmoeex_tf.cli.options import add_model_and_data, load_model_and_data

USAGE = ("mmoeex evaluate MODEL --data NAME [--data-path PATH] [--split test|all]",)


def add_command(commands):
    """Adds the `evaluate` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "evaluate",
        help="score a saved model on a data set",
        description=(
            "Score a saved model on one split of a data set, or on all its "
            "rows: each task's loss and metrics, as in the run folder's "
            "metrics.json, and their means over tasks. A metric that the "
            "split's labels leave undefined (one class only, or no label) is "
            "nan and left out of the mean. A model trained on a table reads "
            "a new table file with its own encoder and target labels (never "
            "with the new file's statistics); give --target, --id-column, "
            "--split-column or --na-values only where the file differs."
        ),
    )
    add_model_and_data(parser, all_rows=True)
    parser.set_defaults(handler=handle)


def handle(args):
    """Runs `mmoeex evaluate`; returns the exit code."""
    from mmoeex_tf import runs

    model, data = load_model_and_data(args)
    scores = runs.score_split(model, data, args.split, args.batch_size)
    print(f"{data.name} {args.split} metrics of {args.model_file}:")
    print(runs.format_scores(scores))
    return 0
