"""The package's layout: imports run down the folder order only, modules stay
short, and the public names exist.

Folder order (a module imports only its own folder and those ranked lower):
rank 0 the top-level modules `errors`, `_checks`, `choices`, `_lazy_import`,
`tasks` and `layers`;
1 `training` (losses, metrics, optimizations: the model's train step uses
them, nothing in them needs the model class); 2 `models`; 3 `datasets`;
4 `analysis`; 5 `runs`; 6 `integrations`; 7 `cli`. The package's
`__init__.py` and `__main__.py` may import anything.
"""

import ast
from pathlib import Path

import mmoeex_tf

PACKAGE = Path(mmoeex_tf.__file__).resolve().parent
RANKS = {
    "errors": 0,
    "_checks": 0,
    "choices": 0,
    "_lazy_import": 0,
    "tasks": 0,
    "layers": 0,
    "training": 1,
    "models": 2,
    "datasets": 3,
    "analysis": 4,
    "runs": 5,
    "integrations": 6,
    "cli": 7,
}
# The package itself (`import mmoeex_tf`, `from mmoeex_tf import Task`): it
# imports every folder, so it ranks above them all.
PACKAGE_RANK = max(RANKS.values()) + 1
FREE = {"__init__", "__main__"}  # top-level modules that may import anything
MAX_LINES = 400


def modules():
    """Every Python source file of the package, in a stable order."""
    return sorted(PACKAGE.rglob("*.py"))


def dotted(path):
    """`mmoeex_tf/runs/loop.py` -> `("runs", "loop")`; `__init__` dropped."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(path, tree):
    """`(line, target)` of every import of the package in a module.

    Targets are the dotted names below `mmoeex_tf` (`()` for the package
    itself); function-level imports count too. For `from mmoeex_tf.x import
    y`, `y` counts as a module when there is a file or folder for it.
    """
    package = path.relative_to(PACKAGE).parent.parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mmoeex_tf":
                    yield node.lineno, tuple(parts[1:])
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                base = package[: len(package) - (node.level - 1)]
                parts = (*base, *(node.module.split(".") if node.module else ()))
            elif (node.module or "").split(".")[0] == "mmoeex_tf":
                parts = tuple(node.module.split(".")[1:])
            else:
                continue
            for alias in node.names:
                child = PACKAGE.joinpath(*parts, alias.name)
                if child.is_dir() or child.with_suffix(".py").is_file():
                    yield node.lineno, (*parts, alias.name)
                else:
                    yield node.lineno, tuple(parts)


def rank(parts):
    """The rank of a module given by its dotted parts below the package."""
    if not parts:
        return PACKAGE_RANK
    return RANKS[parts[0]]


def upward_imports():
    """Every import from a module to a folder ranked above its own."""
    found = []
    for path in modules():
        own = dotted(path)
        if not own or own[0] in FREE:  # the package's __init__ or __main__
            continue
        if own[0] not in RANKS:
            found.append(f"{path.relative_to(PACKAGE.parent)}: not in any rank")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported(path, tree):
            if target and target[0] not in RANKS:
                found.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports "
                    f"mmoeex_tf.{'.'.join(target)}, which is in no rank"
                )
            elif rank(target) > rank(own):
                name = ".".join(("mmoeex_tf", *target))
                found.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} ({own[0]}, rank "
                    f"{rank(own)}) imports {name} (rank {rank(target)})"
                )
    return found


def test_the_checker_sees_every_folder():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    top = {p.stem for p in PACKAGE.glob("*.py")} - FREE
    assert folders | top <= set(RANKS), sorted((folders | top) - set(RANKS))
    assert list(modules()), "no modules found"


def test_imports_run_down_the_folder_order():
    found = upward_imports()
    assert not found, "imports against the folder order:\n" + "\n".join(found)


def test_no_module_is_over_400_lines():
    long = [
        f"{path.relative_to(PACKAGE.parent)}: {lines} lines"
        for path in modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_every_public_name_exists():
    names = mmoeex_tf.__all__
    assert len(names) == len(set(names)), "names listed twice in __all__"
    missing = [name for name in names if not hasattr(mmoeex_tf, name)]
    assert not missing, f"in mmoeex_tf.__all__ but not defined: {missing}"
