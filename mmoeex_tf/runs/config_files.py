"""Run config files: reading and writing them, and the built-in recipes.

A config file is a YAML (or JSON, by its `.json` suffix) mapping of
`RunConfig` keys. A recipe is the config file in `mmoeex_tf/runs/recipes/`
for a built-in data set, chosen on its validation split (how, in
`benchmarks/RESULTS.md`); `mmoeex train --data X` starts from it.
"""

import dataclasses
import json
import pathlib

import yaml

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.config import RunConfig

RECIPES = pathlib.Path(__file__).with_name("recipes")


def read_config_file(path):
    """Reads the mapping of a YAML or JSON config file.

    Files ending in `.json` are read as JSON, any other as YAML.

    Args:
        path: The file.

    Returns:
        The dict of config keys to values, not yet checked.

    Raises:
        MMoEExError: if the file cannot be read, is malformed or does not
            hold a mapping.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MMoEExError(f"config file {str(path)!r} cannot be read: {err}") from err
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            values = yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise MMoEExError(
            f"config file {str(path)!r} is not valid JSON: {err.msg} at line "
            f"{err.lineno}, column {err.colno}."
        ) from err
    except yaml.YAMLError as err:
        raise MMoEExError(
            f"config file {str(path)!r} is not valid YAML: {_yaml_problem(err)}"
        ) from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise MMoEExError(
            f"config file {str(path)!r} must hold a mapping of keys to values, "
            f"got a {type(values).__name__}."
        )
    return values


def recipe_values(data):
    """The recipe of a built-in data set: its config keys, or `{}`.

    Recipes are the run configs in `mmoeex_tf/runs/recipes/` chosen on the
    validation split for each built-in data set (how, in
    `benchmarks/RESULTS.md`); `mmoeex train --data X` starts from them.

    Args:
        data: A data set name.
    """
    path = RECIPES / f"{data}.yaml"
    return read_config_file(path) if path.is_file() else {}


#: The settings a gate mask is written for: changes that set any of them
#: without a `gate_mask` of their own ask for the mask drawn from `alpha`.
MASK_SETTINGS = ("experts", "alpha", "mode")


def redraws_mask(changes):
    """Whether config changes ask for the mask drawn from `alpha` and `mode`.

    A `gate_mask` numbers the experts it was written for, so changes that
    set `experts`, `alpha` or `mode` but no `gate_mask` of their own drop
    the one they change (a recipe's, a base config's).

    Args:
        changes: Mapping of config keys to values.
    """
    return "gate_mask" not in changes and any(key in changes for key in MASK_SETTINGS)


def with_changes(config, changes):
    """`config` with `changes` set, its `gate_mask` dropped if `redraws_mask`.

    Args:
        config: A `RunConfig`.
        changes: Mapping of config keys to values.

    Returns:
        A new, checked `RunConfig`.
    """
    if redraws_mask(changes):
        changes = {"gate_mask": {}, **changes}
    return dataclasses.replace(config, **changes)


def over_recipe(values):
    """Config values over the recipe of their data set.

    The recipe's `gate_mask` is left out where the values `redraws_mask`.

    Args:
        values: Mapping of config keys to values; `data` names the data set
            (`RunConfig`'s default if absent).

    Returns:
        A new dict: the recipe's keys, then `values` over them.
    """
    base = recipe_values(values.get("data", RunConfig.data))
    if redraws_mask(values):
        base.pop("gate_mask", None)
    return {**base, **values}


def recipe(data, changes=None):
    """The recipe of a built-in data set as a `RunConfig` (defaults if none).

    Args:
        data: A data set name.
        changes: Config keys to values set over the recipe (`over_recipe`).
    """
    return RunConfig.from_dict(over_recipe({"data": data, **(changes or {})}))


def config_yaml(config):
    """A config as YAML text, readable by `read_config_file`."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def write_config_file(config, path):
    """Writes a config as YAML, readable by `read_config_file`."""
    pathlib.Path(path).write_text(config_yaml(config), encoding="utf-8")


def _yaml_problem(error):
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{problem}{where}."
