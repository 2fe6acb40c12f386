"""Section 8: where a census3 step's time goes: graph size per training."""

import statistics
import time

import tensorflow as tf
from google.protobuf import json_format

from benchmarks.speed.census import CensusSetting, census_model
from benchmarks.speed.common import BATCH, TRAININGS, interleaved


def graph_size(function, *args):
    """Nodes of a `tf.function`'s graph for `args`, its function library included.

    Every node is one op the TensorFlow executor schedules per call (nodes
    inside loop bodies once per iteration).
    """
    graph = json_format.MessageToDict(
        function.get_concrete_function(*args).graph.as_graph_def()
    )
    functions = graph.get("library", {}).get("function", [])
    return len(graph.get("node", [])) + sum(
        len(f.get("nodeDef", [])) for f in functions
    )


def mean_call_time(function, argument, calls):
    """A runner timing `calls` calls of `function(argument)`.

    Returns:
        A function of no argument returning `[mean seconds per call]`, the
        last call's results fetched before the clock stops.
    """

    def run():
        start = time.perf_counter()
        for _ in range(calls):
            result = function(argument)
        for value in tf.nest.flatten(result):
            value.numpy()
        return [(time.perf_counter() - start) / calls]

    return run


def matmul_floor(features, weights, rows):
    """Seconds of one matmul doing a forward pass's multiply-adds.

    A dense model multiplies every row by each kernel weight once, so one
    `(rows, features) @ (features, weights / features)` product does the
    forward pass's arithmetic in the fewest ops.
    """
    inputs = tf.random.normal((rows, features))
    kernel = tf.random.normal((features, max(1, weights // features)))
    product = tf.function(lambda inputs: tf.matmul(inputs, kernel))
    run = mean_call_time(product, inputs, 100)
    run()
    return statistics.median(sum((run() for _ in range(5)), []))


def section_profile(ctx):
    """Section 8: where a census3 step's time goes: graph size per training."""
    data = ctx.census
    x, y = data.split("train")
    features = tf.constant(x[:BATCH])
    labels = {name: tf.constant(values[:BATCH]) for name, values in y.items()}
    rows = []
    for name in TRAININGS:
        model = census_model(data, CensusSetting(name))
        step = tf.function(model.train_step, reduce_retracing=True)
        ops = graph_size(step, (features, labels))
        forward = tf.function(lambda inputs, model=model: model(inputs))
        forward_ops = graph_size(forward, features)
        runners = {
            "step": mean_call_time(step, (features, labels), 20),
            "forward": mean_call_time(forward, features, 20),
        }
        timed = interleaved(runners, ctx.args.repeats, label=name)
        rows.append(
            (name, ops, timed["step"].median, forward_ops, timed["forward"].median)
        )
    weights = model.count_params()
    floor = matmul_floor(x.shape[1], weights, BATCH)
    print("## 8. census3: where a step's time goes (profile)\n")
    print(
        "Nodes of the compiled train step's graph (function library included: "
        "the ops the executor schedules) and of the inference forward pass, "
        f"batch {BATCH}, reference configuration; each called 20 times on one "
        f"constant batch per round (median of {ctx.args.repeats} rounds).\n"
    )
    print(
        "| training | step nodes | step ms | us per node | forward nodes | forward ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, ops, step_s, forward_ops, forward_s in rows:
        print(
            f"| {name} | {ops} | {step_s * 1e3:.2f} | {step_s * 1e6 / ops:.2f} "
            f"| {forward_ops} | {forward_s * 1e3:.2f} |"
        )
    flops = 2 * weights * BATCH
    print(
        f"\nArithmetic floor: the model has {weights:,} weights, so a forward "
        f"pass of {BATCH} rows is {flops / 1e6:.0f} MFLOP; one matmul doing "
        f"them takes {floor * 1e3:.2f} ms here ({flops / floor / 1e9:.0f} "
        "GFLOP/s). A joint step (forward and two backward products) needs at "
        f"least about {3 * floor * 1e3:.1f} ms, an epoch of "
        f"{ctx.census_steps} steps {3 * floor * ctx.census_steps:.2f} s; "
        "a MAML-MTL step adds K = 3 inner gradients and K outer passes, each "
        "with its backward pass.\n"
    )
