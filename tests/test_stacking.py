"""`stack_tasks`: a stack of one unstack's slices is the unstacked tensor."""

import numpy as np
import tensorflow as tf

from mmoeex_tf import MMoEExModel, Task
from mmoeex_tf.layers.experts import DenseExperts
from mmoeex_tf.training.stacking import stack_tasks

BLOCK = np.arange(24, dtype="float32").reshape(2, 4, 3)


def traced(function):
    """Runs `function` on `BLOCK` in a graph; returns its values and graph ops."""
    concrete = tf.function(function).get_concrete_function(tf.constant(BLOCK))
    ops = [op.type for op in concrete.graph.get_operations()]
    return concrete(tf.constant(BLOCK)).numpy(), ops


def test_stack_of_a_whole_unstack_in_order_is_its_input():
    for axis in (1, -2):
        values, ops = traced(lambda b, a=axis: stack_tasks(tf.unstack(b, axis=1), a))
        np.testing.assert_array_equal(values, BLOCK)
        assert "Pack" not in ops


def test_other_stacks_are_stacked_as_asked():
    cases = {
        "reordered": lambda b: stack_tasks(tf.unstack(b, axis=1)[::-1], 1),
        "subset": lambda b: stack_tasks(tf.unstack(b, axis=1)[:3], 1),
        "other axis": lambda b: stack_tasks(tf.unstack(b, axis=1), 0),
        "not an unstack": lambda b: stack_tasks([b[:, 0], b[:, 1]], 1),
    }
    for name, function in cases.items():
        values, ops = traced(function)
        parts = tf.unstack(tf.constant(BLOCK), axis=1)
        expected = {
            "reordered": tf.stack(parts[::-1], 1),
            "subset": tf.stack(parts[:3], 1),
            "other axis": tf.stack(parts, 0),
            "not an unstack": tf.stack(parts[:2], 1),
        }[name]
        np.testing.assert_array_equal(values, expected.numpy(), err_msg=name)
        assert "Pack" in ops, name


def test_eager_tensors_are_stacked():
    parts = tf.unstack(tf.constant(BLOCK), axis=1)
    np.testing.assert_array_equal(stack_tasks(parts, 1).numpy(), BLOCK)


def test_train_step_stacks_many_tasks_labels_once():
    tasks = [Task(f"t{i}", "binary") for i in range(40)]
    model = MMoEExModel(tasks, DenseExperts(1, 8, seed=0), tower_units=[], seed=0)
    model.compile(optimizer="adam")
    model.build((None, 5))
    model.optimizer.build(model.trainable_variables)
    x = tf.zeros((16, 5))
    y = {task.name: tf.zeros((16,)) for task in tasks}
    graph = tf.function(model.train_step).get_concrete_function((x, y)).graph
    wide_packs = [
        op
        for op in graph.get_operations()
        if op.type == "Pack" and len(op.inputs) == len(tasks)
    ]
    # The labels as they come in; the losses, the AUCs and the gradient
    # reuse that stack and the heads' own logits tensor.
    assert len(wide_packs) == 1
