"""Task grouping on tox21 / toxcast: all-in-one vs grouped vs single-task.

The protocol of "Task grouping on tox21" in benchmarks/RESULTS.md (Morgan
fingerprints r=2 1024 bits, 80/10/10 split with seed 2021, missing labels
masked, mean test ROC-AUC over tasks with both classes in test).

    python benchmarks/grouping.py --data tox21 --groups 2 3 4 --single-task
    python benchmarks/grouping.py --data toxcast --groups 8 16 32
    python benchmarks/grouping.py --step-times 10 100 600 --tasks-per-step 8

Prints a Markdown report.
"""

import argparse
import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf
from paths import data_path, protocol_options  # benchmarks/paths.py

import mmoeex_tf as mt
from mmoeex_tf.datasets import load_tox21, load_toxcast
from mmoeex_tf.runs.grouping_report import compare_groupings

LOADERS = {"tox21": load_tox21, "toxcast": load_toxcast}


def quiet(tasks):
    """The tasks without streaming metrics (scores are computed exactly)."""
    return [dataclasses.replace(task, metrics=()) for task in tasks]


def build_mmoeex(tasks, seed=0, optimization=None):
    """The architecture of every model compared (single-task: one task)."""
    model = mt.MMoEExModel(
        tasks,
        mt.DenseExperts(8, 64, dropout=0.2, seed=seed),
        alpha=0.5,
        seed=seed,
        tower_units=[16],
        optimization=optimization,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4))
    return model


def report(name, data, comparison):
    print(f"\n### {name}: {len(data.tasks)} tasks, test split\n")
    print("Validation mean ROC-AUC by number of groups:", comparison.validation)
    print()
    print(comparison.table().to_string(index=False))
    sizes = sorted(len(g) for g in comparison.grouping.groups)
    print(f"\nGroup sizes: {sizes}")


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.times = []


def step_times(task_counts, tasks_per_step, steps=10, epochs=4):
    """Median train-step time (ms) against the number of tasks.

    Trains with `fit` on a cached `tf.data` pipeline of `steps` batches of
    512 toxcast rows, jointly and with second-order MAML-MTL adapting to
    `tasks_per_step` sampled tasks per step (all tasks when there are no
    more); the step time is the median epoch time divided by `steps`, the
    first epoch (tracing) left out.
    """
    data = load_toxcast(data_path("toxcast"), **protocol_options("toxcast"))
    x, y = data.split("train")
    rows = np.resize(np.arange(len(x)), 512 * steps)
    print("\n### Step time against task count (toxcast features, batch 512)\n")
    print(
        f"| tasks | joint ms | joint ms per task | MAML-MTL (k={tasks_per_step}) ms "
        "| x joint | first epoch s (joint, MAML) |"
    )
    print("|---|---|---|---|---|---|")
    for count in task_counts:
        tasks = quiet(data.tasks[:count])
        labels = {t.name: y[t.name][rows] for t in tasks}
        dataset = tf.data.Dataset.from_tensor_slices((x[rows], labels))
        dataset = dataset.batch(512).cache().prefetch(tf.data.AUTOTUNE)
        sampled = mt.MAMLMTL(tasks_per_step=min(tasks_per_step, count))
        medians, first = [], []
        for optimization in (None, sampled):
            timer = EpochTimer()
            model = build_mmoeex(tasks, optimization=optimization)
            model.fit(dataset, epochs=epochs, verbose=0, callbacks=[timer])
            medians.append(1000 * float(np.median(timer.times[1:])) / steps)
            first.append(timer.times[0])
        joint, maml = medians
        print(
            f"| {count} | {joint:.1f} | {joint / count:.2f} | {maml:.1f} "
            f"| {maml / joint:.1f} | {first[0]:.0f}, {first[1]:.0f} |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(LOADERS))
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--single-task", action="store_true")
    parser.add_argument("--step-times", type=int, nargs="*")
    parser.add_argument("--tasks-per-step", type=int, default=8)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    if args.data:
        data = LOADERS[args.data](data_path(args.data), **protocol_options(args.data))
        comparison = compare_groupings(
            data, build_mmoeex, args.groups, args.epochs, 128, args.single_task
        )
        report(args.data, data, comparison)
    if args.step_times:
        step_times(args.step_times, args.tasks_per_step)


if __name__ == "__main__":
    main()
