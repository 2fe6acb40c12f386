"""What the `mmoeex` sub-commands share: the parser, exit codes and options.

The run options (`--data`, `--epochs`, `--jit-compile`, ...) are made from
the fields of `RunConfig`, one option per field: `--` and the field name
with `-` for `_`. A field's `metadata` gives the help text (`"help"`), the
values listed in it (`"choices"`; `RunConfig` checks them, with a hint for
a misspelt one), the metavar and, for a sequence, `"nargs"` (`"+"` unless
set). The value type comes from the field's type: `int`, `float` or `str`;
`bool` gives `--x` / `--no-x`; a tuple a list of values; a `dict` no option
(such fields are set in the config file only). A field without metadata
gets a help text made from its name, so new `RunConfig` fields become
options without an edit here.

Building the parser imports no model code, nor TensorFlow or Keras: the
data set names are the choices of `RunConfig.data`, the other choices come
from `mmoeex_tf.choices`, and each sub-command imports what it runs in its
handler.
"""

import argparse
import dataclasses
import types
import typing

from mmoeex_tf.choices import ALL_ROWS, SPLITS
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.config import RunConfig

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130

CONFIG_KEYS = tuple(field.name for field in dataclasses.fields(RunConfig))
FIELDS = {field.name: field for field in dataclasses.fields(RunConfig)}
#: The data set names (`mmoeex_tf.datasets.DATASETS`).
DATASETS = FIELDS["data"].metadata["choices"]
#: Options of `add_model_and_data` that go to the data set's loader: the
#: `RunConfig` field (giving the help and metavar) -> the flag.
DATA_OPTIONS = {
    "targets": "--target",
    "id_column": "--id-column",
    "split_column": "--split-column",
    "na_values": "--na-values",
    "smiles_column": "--smiles-column",
    "label_columns": "--label-columns",
    "descriptors": "--descriptors",
}
METAVARS = {int: "N", float: "X", str: "VALUE"}


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one `error: ...` line."""

    def error(self, message):
        self.exit(EXIT_INVALID, f"error: {message} (see '{self.prog} --help')\n")


def value_type(field):
    """The value type of a `RunConfig` field, and the element type of tuples.

    Args:
        field: A `dataclasses.Field`, e.g. of `RunConfig`.

    Returns:
        `(kind, element)`: `kind` is `bool`, `int`, `float`, `str`, `tuple`
        or `dict`; `element` is the type of a tuple's items, else `None`.
        `X | None` counts as `X`; a type that cannot be read from the
        annotation is the type of the default (`str` for `None`).
    """
    annotation = field.type
    if isinstance(annotation, types.UnionType) or (
        typing.get_origin(annotation) is typing.Union
    ):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else None
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        elements = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return tuple, elements[0] if elements else str
    if origin is dict or annotation is dict:
        return dict, None
    if annotation in (bool, int, float, str):
        return annotation, None
    default = _default(field)
    if isinstance(default, (tuple, list)):
        return tuple, type(default[0]) if default else str
    if isinstance(default, (bool, int, float, dict)):
        return type(default), None
    return str, None


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _help(field):
    text = field.metadata.get("help") or field.name.replace("_", " ")
    choices = field.metadata.get("choices")
    if choices:
        text += f": {', '.join(choices)}"
    default = _default(field)
    if isinstance(default, (tuple, list)):
        text += f" ({' '.join(map(str, default)) or 'none'})"
    elif default is not None:
        text += f" ({default})"
    return text


def option_arguments(field):
    """The `add_argument` keyword arguments of a field's option.

    Args:
        field: A `dataclasses.Field`, e.g. of `RunConfig`.

    Returns:
        The keyword arguments (`help`, `metavar`, `type`, `nargs` or
        `action`), or `None` for a mapping field, which has no option.
    """
    kind, element = value_type(field)
    if kind is dict:
        return None
    arguments = {"help": _help(field)}
    if kind is bool:
        arguments["action"] = argparse.BooleanOptionalAction
        return arguments
    if kind is tuple:
        kind = element
        arguments["nargs"] = field.metadata.get("nargs", "+")
    arguments["metavar"] = field.metadata.get("metavar", METAVARS.get(kind, "VALUE"))
    if kind in (int, float):
        arguments["type"] = kind
    return arguments


def add_run_options(parser, exclude=()):
    """Adds an option for every `RunConfig` field but mappings and `exclude`.

    An option not given leaves its key out of the parsed arguments, so the
    config file's value or the default stands (see `run_config`).

    Args:
        parser: The parser of a sub-command.
        exclude: Names of fields without an option in this command.
    """
    group = parser.add_argument_group(
        "run options", "override the config file; defaults in parentheses"
    )
    for field in dataclasses.fields(RunConfig):
        arguments = None if field.name in exclude else option_arguments(field)
        if arguments is not None:
            flag = "--" + field.name.replace("_", "-")
            group.add_argument(
                flag, dest=field.name, default=argparse.SUPPRESS, **arguments
            )


def add_config_option(parser):
    """Adds `--config FILE` and `--recipe/--no-recipe`."""
    mappings = [
        f"{field.name} ({field.metadata.get('help', 'a mapping')})"
        for field in dataclasses.fields(RunConfig)
        if value_type(field)[0] is dict
    ]
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of run options (keys as below with _ for -, "
        f"plus {' and '.join(mappings)})",
    )
    parser.add_argument(
        "--recipe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start from the data set's recipe, the settings chosen on its "
        "validation split (mmoeex_tf/runs/recipes/); --no-recipe starts from "
        "the defaults (on)",
    )


def run_config(args):
    """Resolves the run config; each source overrides the one before.

    The defaults, the data set's recipe (unless `--no-recipe`; its gate mask
    only if experts, alpha and mode are the recipe's, see `over_recipe`), the
    config file, the command-line options.
    """
    from mmoeex_tf.runs.config_files import over_recipe, read_config_file

    values = read_config_file(args.config) if args.config else {}
    values = {**values, **given_run_options(args)}
    return RunConfig.from_dict(over_recipe(values) if args.recipe else values)


def given_run_options(args):
    """The run options given on the command line, as config keys to values."""
    return {key: value for key, value in vars(args).items() if key in CONFIG_KEYS}


def add_target_option(parser, dest="targets"):
    """Adds `--target COLUMN:KIND`, repeatable (tables)."""
    parser.add_argument(
        "--target",
        dest=dest,
        action="extend",
        nargs="+",
        default=argparse.SUPPRESS,
        metavar="COLUMN:KIND",
        help="with --data table: a target column and its kind (binary, "
        "multiclass, multilabel, regression), binary optionally with its "
        "positive value (income:binary:>50K); repeat for each target",
    )


def add_model_and_data(parser, all_rows=False, default_split="test"):
    """Adds a saved model, a data set, its split and its loader options.

    The loader options are those of `mmoeex train` for tables (`--target`,
    `--id-column`, `--split-column`, `--na-values`; a model trained on a
    table knows its own) and MoleculeNet files (`--smiles-column`,
    `--label-columns`).

    Args:
        parser: The parser of a sub-command.
        all_rows: Whether `--split all` (every row of the data set) is a
            choice.
        default_split: The split used without `--split`.
    """
    parser.add_argument("model_file", metavar="MODEL", help="a saved model.keras")
    parser.add_argument(
        "--data",
        required=True,
        metavar="NAME",
        help=f"data set: {', '.join(DATASETS)}",
    )
    parser.add_argument("--data-path", metavar="PATH", help="data file or folder")
    splits = (*SPLITS, ALL_ROWS) if all_rows else SPLITS
    parser.add_argument(
        "--split",
        default=default_split,
        choices=splits,
        help="split to use"
        + (", all: every row" if all_rows else "")
        + f" ({default_split})",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1024, help="examples per pass (1024)"
    )
    group = parser.add_argument_group(
        "data options", "how to read the data file (tables: as saved with the model)"
    )
    add_target_option(group)
    for name, flag in DATA_OPTIONS.items():
        arguments = option_arguments(FIELDS[name])
        if name != "targets" and arguments is not None:
            group.add_argument(flag, dest=name, default=argparse.SUPPRESS, **arguments)


def data_options(args, model):
    """The loader options of `add_model_and_data`'s arguments.

    For a model trained on sequences of a long table (physio4), its saved
    input statistics (`runs.data.saved_data_options`). For `--data table`,
    the options saved with a model trained on a table
    (`TableModel.table_options`: its encoder, target columns and labels,
    missing-value markers) under those given.

    Raises:
        MMoEExError: for `--data table` with a model not trained on a table.
    """
    from mmoeex_tf.datasets.table_model import TableModel
    from mmoeex_tf.runs.data import saved_data_options

    given = {key: value for key, value in vars(args).items() if key in DATA_OPTIONS}
    if args.data != "table":
        return {**saved_data_options(model), **given}
    if not isinstance(model, TableModel):
        raise MMoEExError(
            f"{args.model_file!r} was not trained on a table (it takes encoded "
            "features); --data table needs a model saved by mmoeex train --data table."
        )
    return {**model.table_options(), **given}


def load_model_and_data(args):
    """The saved model and the data set of `add_model_and_data`'s arguments.

    A table is read raw and encoded by the model's own encoder, with the
    model's target labels: never with statistics of the new file.

    Raises:
        MMoEExError: if the model cannot be loaded, the data set is unknown
            or does not fit the model.
    """
    from mmoeex_tf import runs

    model = runs.load_saved_model(args.model_file)
    data = runs.load_data(args.data, args.data_path, data_options(args, model))
    runs.check_compatible(model, data)
    return model, data
