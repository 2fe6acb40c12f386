"""Splitting a batch's rows into an inner and an outer part, and back.

MAML-MTL takes its temporary steps on the inner rows of a batch and
evaluates them on the outer rows. The rows are split by a pattern that
repeats every `period` rows, so that the shards of a batch split by
`tf.distribute` (each a multiple of `period` rows) split as the whole batch.
"""

import tensorflow as tf


def split_rows(num_rows, period, outer_per_period):
    """Inner and outer row numbers of a batch, as two int32 vectors.

    In every group of `period` consecutive rows the last `outer_per_period`
    are outer rows. A batch without any outer row uses all rows for both.

    Args:
        num_rows: The batch's row count (a scalar tensor).
        period: Rows per group.
        outer_per_period: Outer rows per group, in [1, period).
    """
    inner_per_period = period - outer_per_period
    groups, rest = num_rows // period, num_rows % period
    num_inner = groups * inner_per_period + tf.minimum(rest, inner_per_period)
    whole = tf.equal(num_inner, num_rows)
    rows = tf.range(tf.where(whole, num_rows, num_inner))
    inner = tf.where(
        whole, rows, rows // inner_per_period * period + rows % inner_per_period
    )
    rows = tf.range(tf.where(whole, num_rows, num_rows - num_inner))
    outer = tf.where(
        whole,
        rows,
        rows // outer_per_period * period + inner_per_period + rows % outer_per_period,
    )
    return inner, outer


def split_batch(batch, period, outer_per_period):
    """Returns the inner and outer parts of a batch, `(*batch, rows)` each.

    Args:
        batch: `(x, labels, weights)`, tensors or dicts of tensors with the
            rows first.
        period: Rows per group of the split pattern (see `split_rows`), or
            `None` for no split: then both parts are one and the same
            object, the whole batch with `rows` `None`.
        outer_per_period: Outer rows per group.
    """
    if period is None:
        part = (*batch, None)
        return part, part
    rows = split_rows(tf.shape(batch[0])[0], period, outer_per_period)
    return tuple(
        (*tf.nest.map_structure(lambda t, r=r: tf.gather(t, r), batch), r) for r in rows
    )


def merge_rows(parts, rows, num_rows):
    """Puts per-part logits back in the batch's row order.

    Args:
        parts: Dicts of logits per task, one per part.
        rows: The parts' row numbers in the batch, one int32 vector each.
        num_rows: The batch's row count.
    """
    merged = {}
    indices = tf.concat(rows, 0)[:, None]
    for name in parts[0]:
        values = tf.concat([part[name] for part in parts], 0)
        shape = tf.concat([[num_rows], tf.shape(values)[1:]], 0)
        merged[name] = tf.tensor_scatter_nd_update(
            tf.zeros(shape, values.dtype), indices, values
        )
    return merged
