"""Median train-step time of joint and MAML-MTL training on census3.

The census3 reference configuration (benchmarks protocol in BENCHMARKS.md):
MMoEEx with 12 dense experts of 4 units, towers of 4 units, alpha 0.75
exclusivity, batch 512, AdamW lr 1e-4 with weight decay 0.01. Each variant
is compiled with `steps_per_execution` and warmed up; then, round after
round, every variant runs one execution on the same batches (interleaved,
so that changes in the machine's load hit all variants alike). One
execution's duration divided by its steps is one sample; the median over
the rounds is reported, with the ratios to joint training. MAML-MTL runs with its outer losses looped and batched, and the
script says which of the two the default (`outer="auto"`) uses here.

Usage:
    python benchmarks/maml_speed.py [--executions 12] [--steps 10]
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import mmoeex_tf as mt  # noqa: E402
from mmoeex_tf.datasets import load_census3  # noqa: E402
from mmoeex_tf.maml import MAMLMTL  # noqa: E402

BATCH = 512
VARIANTS = {
    "joint": lambda: None,
    "maml order 1, looped outer": lambda: MAMLMTL(order=1, outer="loop"),
    "maml order 1, batched outer": lambda: MAMLMTL(order=1, outer="batched"),
    "maml order 2, looped outer": lambda: MAMLMTL(order=2, outer="loop"),
    "maml order 2, batched outer": lambda: MAMLMTL(order=2, outer="batched"),
}


class ExecutionTimer(keras.callbacks.Callback):
    """Records the duration of every execution (`steps_per_execution` steps)."""

    def __init__(self):
        super().__init__()
        self.durations = []
        self.start = None

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.durations.append(time.perf_counter() - self.start)


def reference_model(data, optimization, steps):
    """The reference MMoEEx, compiled to run `steps` steps per execution."""
    keras.utils.set_random_seed(0)
    model = mt.MMoEExModel(
        data.tasks,
        mt.DenseExperts(12, 4),
        alpha=0.75,
        mode="exclusivity",
        tower_units=[4],
        optimization=optimization,
    )
    model.build((None, data.x["train"].shape[1]))
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
        steps_per_execution=steps,
    )
    return model


def median_step_times(data, variants, executions, steps):
    """Median ms per step of each variant, executions interleaved.

    Every variant is compiled and warmed up first; then each round runs one
    execution of every variant in turn, so that a change in the machine's
    load affects all variants alike.
    """
    train = (
        tf.data.Dataset.from_tensor_slices((data.x["train"], data.y["train"]))
        .take(steps * BATCH)
        .batch(BATCH, drop_remainder=True)
        .cache()
    )
    models = {name: reference_model(data, make(), steps) for name, make in variants}
    timers = {name: ExecutionTimer() for name in models}
    for model in models.values():
        model.fit(train, epochs=2, verbose=0, shuffle=False)
    for _ in range(executions):
        for name, model in models.items():
            model.fit(train, verbose=0, shuffle=False, callbacks=[timers[name]])
    return {
        name: statistics.median(timer.durations) / steps * 1e3
        for name, timer in timers.items()
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=12)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    data = load_census3()
    print(
        f"census3 reference configuration, batch {BATCH}, "
        f"{data.x['train'].shape[1]} features; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}; median of {args.executions} executions of "
        f"{args.steps} steps"
    )
    medians = median_step_times(data, VARIANTS.items(), args.executions, args.steps)
    print(f"{'variant':30s} {'ms/step':>8s} {'x joint':>8s}")
    for name, median in medians.items():
        print(f"{name:30s} {median:8.2f} {median / medians['joint']:8.2f}")
    for order in (1, 2):
        looped = medians[f"maml order {order}, looped outer"]
        batched = medians[f"maml order {order}, batched outer"]
        faster = "batched" if batched < looped else "looped"
        print(
            f"order {order}: batched/looped outer = {batched / looped:.2f} "
            f"({faster} is faster)"
        )
    model = reference_model(data, MAMLMTL(), args.steps)
    chosen = "batched" if model.optimization.uses_batched_outer(model) else "looped"
    print(f"default (outer='auto') for this configuration: {chosen}")


if __name__ == "__main__":
    main()
