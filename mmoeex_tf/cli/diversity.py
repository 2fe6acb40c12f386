"""`mmoeex diversity`: expert distances and gate usage of a saved model."""

import pathlib

from mmoeex_tf.cli.options import add_model_and_data, load_model_and_data

USAGE = ("mmoeex diversity MODEL --data NAME [--data-path PATH] [--output DIR]",)
FILES = ("diversity.png", "distance_matrix.csv", "gate_usage.csv")


def add_command(commands):
    """Adds the `diversity` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "diversity",
        help="expert diversity and gate usage of a saved model",
        description=(
            "Print the expert distance matrix, the diversity score (its mean) "
            "and the mean gate weights of a saved model on a data set; save "
            f"{', '.join(FILES)}."
        ),
    )
    add_model_and_data(parser)
    parser.add_argument(
        "--output", metavar="DIR", help="folder of the files (the model's folder)"
    )
    parser.set_defaults(handler=handle)


def handle(args):
    """Runs `mmoeex diversity`; returns the exit code."""
    from mmoeex_tf.analysis.diversity import diversity_report
    from mmoeex_tf.runs.folders import staged_folder

    model, data = load_model_and_data(args)
    report = diversity_report(model, data.x[args.split], args.batch_size)
    print(f"Diversity score on {data.name} {args.split}: {report.score:.4f}")
    print("\nExpert distance matrix (normalised to a largest entry of 1):")
    print(report.distances.to_string(float_format="{:.3f}".format))
    print("\nMean gate weight per task and expert:")
    print(report.usage.to_string(float_format="{:.3f}".format))
    folder = pathlib.Path(args.output or pathlib.Path(args.model_file).parent)
    with staged_folder(folder) as staging:
        report.distances.to_csv(staging / "distance_matrix.csv")
        report.usage.to_csv(staging / "gate_usage.csv")
        report.plot(
            staging / "diversity.png",
            title=f"Expert distances, {data.name} {args.split}",
        )
    print(f"\nWrote {', '.join(FILES)} to {folder}")
    return 0
