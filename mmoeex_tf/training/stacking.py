"""Stacking per-task tensors that were split from one tensor, without a copy.

Inside a step, per-task tensors are often the slices of one stacked tensor:
the heads compute every task's logits as one tensor and hand them out per
task, and `losses.prepare_labels` cleans the labels of like tasks as one.
The task losses and the batched AUC stack them again, and TensorFlow's graph
optimiser does not fold a stack of an unstack: with hundreds of tasks each
such stack is a copy of the whole block (and, in the gradient, an unstack of
it), a tenth of a 617-task training step (`benchmarks/RESULTS.md`, "Many
tasks").
"""

import tensorflow as tf


def task_axis(per_step):
    """The axis like tasks' tensors are stacked on: after the batch (and step) axes.

    The task losses and the batched AUC both stack on it, so that they can
    share one stacked tensor.
    """
    return 2 if per_step else 1


def stack_tasks(tensors, axis):
    """`tf.stack(tensors, axis)`, free if they are one `tf.unstack`'s slices.

    Args:
        tensors: Tensors of one shape and dtype.
        axis: The axis to stack them on.

    Returns:
        The stacked tensor: in a traced function, when `tensors` are all the
        outputs of one `tf.unstack` along that same axis, in their order,
        the tensor that was unstacked (the same values); otherwise a new
        `tf.stack`.
    """
    tensors = list(tensors)
    if not tf.executing_eagerly():
        source = _unstacked_source(tensors, axis)
        if source is not None:
            return source
    return tf.stack(tensors, axis)


def _unstacked_source(tensors, axis):
    """The tensor `tensors` were unstacked from along `axis`, or `None`."""
    first = tensors[0]
    if first.shape.rank is None or first.op.type != "Unpack":
        return None
    unpack = first.op
    rank = first.shape.rank + 1
    same_axis = unpack.get_attr("axis") % rank == axis % rank
    outputs = unpack.outputs
    in_order = len(outputs) == len(tensors) and all(
        tensor is output for tensor, output in zip(tensors, outputs)
    )
    return unpack.inputs[0] if same_axis and in_order else None
