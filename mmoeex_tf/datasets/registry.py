"""Loading a data set by name."""

import difflib

from mmoeex_tf import datasets
from mmoeex_tf.errors import MMoEExError

#: Data set name -> its loader, a function of `mmoeex_tf.datasets` (imported
#: when a data set is loaded, so that the names need no TensorFlow).
_LOADERS = {
    "census3": "load_census3",
    "physio4": "load_physio4",
    "tox21": "load_tox21",
    "toxcast": "load_toxcast",
    "moleculenet": "load_moleculenet_csv",
    "synthetic": "load_synthetic",
    "table": "load_table",
}
DATASETS = tuple(_LOADERS)


def load(name, **kwargs):
    """Loads a data set by name.

    Args:
        name: One of `DATASETS`: `"census3"`, `"physio4"`, `"tox21"`,
            `"toxcast"`, `"moleculenet"` (any MoleculeNet-style CSV),
            `"synthetic"` or `"table"` (your own file).
        **kwargs: Passed to the data set's loader (`load_census3`,
            `load_physio4`, `load_tox21`, `load_toxcast`,
            `load_moleculenet_csv`, `load_synthetic`, `load_table`), e.g.
            `path=...`.

    Returns:
        A `MultiTaskData`.

    Raises:
        MMoEExError: if `name` is unknown; the message suggests the closest
            valid name.
    """
    if name not in _LOADERS:
        close = difflib.get_close_matches(str(name), DATASETS, n=1, cutoff=0.0)
        raise MMoEExError(
            f"Unknown data set {name!r}; did you mean {close[0]!r}? Valid "
            f"names: {', '.join(DATASETS)}."
        )
    return getattr(datasets, _LOADERS[name])(**kwargs)
