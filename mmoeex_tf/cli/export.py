"""`mmoeex export`: a saved `.keras` model to a TF Serving SavedModel."""

USAGE = ("mmoeex export MODEL [--name NAME] [--version N] [--base-dir DIR]",)


def add_command(commands):
    """Adds the `export` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "export",
        help="export a saved model for TF Serving",
        description="Export a saved model as a SavedModel in the TF Serving layout.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def add_arguments(parser):
    """Adds the arguments of `mmoeex export` to a parser.

    Args:
        parser: The parser (or subparser) of the command.
    """
    parser.add_argument("model_file", metavar="MODEL", help="a saved model.keras")
    parser.add_argument(
        "--name", help="model name, the folder TF Serving serves (the model's name)"
    )
    parser.add_argument(
        "--version",
        type=int,
        help="version number (one more than the largest there)",
    )
    parser.add_argument(
        "--base-dir",
        default="saved_models",
        metavar="DIR",
        help="folder of the served models (saved_models)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version"
    )


def handle(args):
    """Runs `mmoeex export`: exports the model file, prints its signatures.

    Args:
        args: The parsed arguments of `add_arguments`.

    Returns:
        The exit code, 0.

    Raises:
        MMoEExError: if the model file is not a saved `MMoEExModel` or the
            version cannot be written.
    """
    from mmoeex_tf.integrations.export import describe_signatures, export_saved_model
    from mmoeex_tf.runs.folders import load_saved_model

    model = load_saved_model(args.model_file)
    path = export_saved_model(
        model,
        args.name or model.name,
        version=args.version,
        base_dir=args.base_dir,
        overwrite=args.overwrite,
    )
    print(f"Exported {args.model_file} to {path}")
    print(describe_signatures(model))
    return 0
