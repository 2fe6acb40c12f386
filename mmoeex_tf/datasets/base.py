"""The container every loader returns, and the helpers the loaders share."""

import dataclasses
import gzip
import pathlib
import zlib

import numpy as np
import pandas as pd
import tensorflow as tf

from mmoeex_tf.choices import SPLITS
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import Task, check_tasks

SPLIT_SEED = 2021


@dataclasses.dataclass
class MultiTaskData:
    """Inputs and per-task labels of a data set, split into train, val and test.

    Attributes:
        name: Name of the data set, e.g. `"census3"`.
        tasks: The `Task` of every label, in a fixed order.
        x: Split name -> float32 inputs, `(n, features)` or
            `(n, steps, features)`.
        y: Split name -> task name -> float32 labels; `NaN` marks a missing
            label.
        feature_names: One name per input feature (the last axis of `x`).
        label_columns: Task name -> the source's name for the label, where
            the two differ (tasks named after sanitised CSV columns).
        info: Data-set specific details, e.g. the source rows or record ids
            of each split, or the generator's weights.
    """

    name: str
    tasks: tuple[Task, ...]
    x: dict[str, np.ndarray]
    y: dict[str, dict[str, np.ndarray]]
    feature_names: list[str]
    label_columns: dict[str, str] = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.tasks = check_tasks(self.tasks)

    def split(self, name):
        """Returns the inputs and the labels of one split.

        Args:
            name: `"train"`, `"val"` or `"test"`.

        Returns:
            `(x, y)`: the float32 inputs and a dict task name -> labels.

        Raises:
            MMoEExError: if `name` is not a split.
        """
        if name not in SPLITS:
            raise MMoEExError(
                f"Data set {self.name!r} has splits {SPLITS}, not {name!r}."
            )
        return self.x[name], self.y[name]

    def tf_dataset(self, split, batch_size=512, shuffle=False, seed=0):
        """Returns one split as a `tf.data.Dataset` of `(x, y)` batches.

        Each batch is gathered from the split's arrays by row number
        (`index_batches`), shuffled afresh on every iteration when `shuffle`
        is set, and prefetched.

        Args:
            split: `"train"`, `"val"` or `"test"`.
            batch_size: Examples per batch; the last batch may be smaller.
            shuffle: Whether to shuffle the examples.
            seed: Seed of the shuffle.

        Returns:
            A dataset yielding `(x, y)` with `y` a dict task name -> labels.
        """
        x, y = self.split(split)
        return gathered(x, y, index_batches(len(x), batch_size, shuffle, seed))

    def shuffled_epochs(self, split, batch_size, seed, epochs, first_epoch=0):
        """Shuffled batches of epochs `first_epoch` to `epochs - 1`, in one stream.

        Epoch `e` visits the examples in a permutation drawn from `(seed, e)`
        alone, so a run resumed at epoch `e` sees the same batches as a run
        that never stopped. Pass the returned step count to `fit` as
        `steps_per_epoch` (with `initial_epoch=first_epoch`).

        Args:
            split: `"train"`, `"val"` or `"test"`.
            batch_size: Examples per batch; each epoch's last batch may be
                smaller.
            seed: Seed of the permutations.
            epochs: One more than the last epoch's number.
            first_epoch: Number of the first epoch.

        Returns:
            `(dataset, steps_per_epoch)`: the `(x, y)` batches of all the
            epochs, and the number of batches in one.
        """
        x, y = self.split(split)
        rows = len(x)

        def epoch_order(epoch):
            epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(
                tf.range(rows, dtype=tf.int64), seed=epoch_seed
            )
            return order_batches(order, batch_size)

        orders = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
        return gathered(x, y, orders), -(-rows // batch_size)

    def summary(self):
        """Describes the data set in a few lines of text.

        Returns:
            Rows per split, the feature count, and per task its kind, its
            missing-label rate and its positive rate (binary), class count
            (multiclass) or mean and standard deviation (regression), over
            all splits.
        """
        rows = ", ".join(f"{s} {len(self.x[s]):,}" for s in SPLITS)
        shape = " x ".join(str(d) for d in self.x["train"].shape[1:])
        head = f"{self.name}: {rows} rows; {len(self.feature_names)} features"
        lines = [f"{head}, one example {shape}"]
        for task in self.tasks:
            labels = np.concatenate([self.y[s][task.name].ravel() for s in SPLITS])
            known = labels[~np.isnan(labels)]
            missing = 1.0 - known.size / labels.size
            if task.kind == "binary":
                detail = f"positive rate {known.mean():.2%}"
            elif task.kind == "multiclass":
                detail = f"{task.output_size} classes"
            else:
                detail = f"mean {known.mean():.3g}, sd {known.std():.3g}"
            lines.append(
                f"  {task.name} ({task.kind}): missing {missing:.2%}, {detail}"
            )
        return "\n".join(lines)


def index_batches(rows, batch_size, shuffle=False, seed=0):
    """Batches of the row numbers `0, ..., rows - 1`, for `gathered`.

    Args:
        rows: Number of rows.
        batch_size: Row numbers per batch; the last batch may be smaller.
        shuffle: Whether to shuffle the rows, afresh on every iteration.
        seed: Seed of the shuffle.

    Returns:
        A `tf.data.Dataset` of int64 vectors.
    """
    if not shuffle:
        return order_batches(tf.range(rows, dtype=tf.int64), batch_size)
    order = tf.data.Dataset.range(rows)
    order = order.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size)


def order_batches(order, batch_size):
    """Consecutive pieces of a vector of row numbers, one per batch.

    The full pieces are the rows of one matrix, sliced by the dataset
    without a function call per batch (and not the rows as elements of
    their own batched again: 512 dataset elements per batch of 512); a
    shorter last piece follows them.

    Args:
        order: An int64 vector of row numbers, of static length.
        batch_size: Row numbers per piece; the last piece may be shorter.

    Returns:
        A `tf.data.Dataset` of int64 vectors.
    """
    rows = order.shape[0]
    full = rows // batch_size * batch_size
    pieces = tf.data.Dataset.from_tensor_slices(
        tf.reshape(order[:full], (-1, batch_size))
    )
    if full < rows:
        pieces = pieces.concatenate(tf.data.Dataset.from_tensors(order[full:]))
    return pieces


def gathered(x, y, orders):
    """Batches of in-memory inputs and labels, gathered by row number.

    No row goes through the pipeline on its own: with hundreds of label
    columns a row is hundreds of tensors, which a row-by-row `cache` or
    `shuffle` of a 600-task split holds by the million (0.6 GB for
    toxcast's training split). The label columns of one shape and dtype are
    stacked once, so a batch takes one gather per such group, not one per
    task.

    Args:
        x: The inputs, rows on the first axis.
        y: Dict task name -> labels, rows on the first axis.
        orders: A `tf.data.Dataset` of row-number vectors, one per batch.

    Returns:
        A prefetched `tf.data.Dataset` of `(x, y)` batches, one per vector.
    """
    groups = {}
    for name, values in y.items():
        groups.setdefault((values.shape[1:], values.dtype.str), []).append(name)
    names = list(groups.values())
    blocks = tuple(np.stack([y[name] for name in group], -1) for group in names)

    def batch(examples, order):
        inputs, label_blocks = examples
        labels = {}
        for group, block in zip(names, label_blocks):
            columns = tf.unstack(tf.gather(block, order), axis=-1)
            labels.update(zip(group, columns))
        return tf.gather(inputs, order), {name: labels[name] for name in y}

    examples = tf.data.Dataset.from_tensors((x, blocks)).repeat()
    batches = tf.data.Dataset.zip(examples, orders)
    batches = batches.map(batch, num_parallel_calls=tf.data.AUTOTUNE)
    # The arrays are constants of the dataset's graph, which `tf.data`'s
    # default rewrites serialise, arrays and all, for every new iterator
    # (every `fit`, every validation); they have nothing to rewrite here.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


def split_indices(num_rows, fractions, seed=SPLIT_SEED):
    """Splits row numbers at random into train, val and test.

    The rows are permuted by `numpy.random.default_rng(seed).permutation`;
    train takes the first `fractions[0]` of the permutation (rounded down),
    val the next `fractions[1]`, test the rest. Each split's rows are
    returned in ascending order.

    Args:
        num_rows: Number of rows to split.
        fractions: Train and val shares in percent, e.g. `(60, 20)`.
        seed: Seed of the permutation.

    Returns:
        A dict split name -> sorted int64 row numbers.
    """
    order = np.random.default_rng(seed).permutation(num_rows)
    num_train = num_rows * fractions[0] // 100
    num_val = num_rows * fractions[1] // 100
    parts = np.split(order, [num_train, num_train + num_val])
    return {name: np.sort(part) for name, part in zip(SPLITS, parts)}


def split_arrays(x, labels, rows):
    """Cuts full arrays into the per-split `x` and `y` dicts of `MultiTaskData`.

    Args:
        x: Inputs of all rows.
        labels: Task name -> labels of all rows.
        rows: Split name -> row numbers, as from `split_indices`.

    Returns:
        `(x, y)` dicts keyed by split name, float32.
    """
    x_split = {s: np.ascontiguousarray(x[r], dtype=np.float32) for s, r in rows.items()}
    y_split = {
        s: {t: np.asarray(v[r], dtype=np.float32) for t, v in labels.items()}
        for s, r in rows.items()
    }
    return x_split, y_split


def existing_path(path, what):
    """Returns `path` as a `Path`, or raises if nothing is there.

    Args:
        path: A file or folder path.
        what: What the path should hold, for the error message.

    Raises:
        MMoEExError: if the path does not exist.
    """
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise MMoEExError(f"{what}: {str(path)!r} does not exist.")
    return path


def read_csv(source, what, **kwargs):
    """Reads a CSV file with pandas, turning read errors into `MMoEExError`.

    Args:
        source: The file (plain or compressed, by its suffix) or a file
            object.
        what: The file and what it should hold, for error messages, e.g.
            `"census3 data file 'x.csv'"`.
        **kwargs: Passed to `pandas.read_csv`.

    Returns:
        The `DataFrame`.

    Raises:
        MMoEExError: if the file is empty, truncated, not valid UTF-8, not
            a CSV or has values of the wrong type.
    """
    try:
        return pd.read_csv(source, **kwargs)
    except pd.errors.EmptyDataError as err:
        raise MMoEExError(f"{what} is empty.") from err
    except UnicodeDecodeError as err:
        raise MMoEExError(
            f"{what} is not UTF-8 text ({err.reason} at byte {err.start})."
        ) from err
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise MMoEExError(f"{what} is not a complete gzip file ({err}).") from err
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise MMoEExError(f"{what} could not be read as CSV: {err}") from err
