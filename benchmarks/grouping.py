"""Task grouping on tox21 / toxcast: all-in-one vs grouped vs single-task.

Follows the tox21/toxcast protocol of the shared BENCHMARKS.md (Morgan
fingerprints r=2 1024 bits, 80/10/10 split with seed 2021, missing labels
masked, mean test ROC-AUC over tasks with both classes in test).

    python benchmarks/grouping.py --data tox21 --groups 2 3 4 --single-task
    python benchmarks/grouping.py --data toxcast --groups 8 16 32
    python benchmarks/grouping.py --step-times 10 100 600

Prints a Markdown report.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf.datasets import load_tox21, load_toxcast
from mmoeex_tf.evaluation import score_model
from mmoeex_tf.grouping import fit_grouped, group_tasks

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "moleculenet"
LOADERS = {
    "tox21": (load_tox21, "tox21.csv"),
    "toxcast": (load_toxcast, "toxcast.csv.gz"),
}


def quiet(tasks):
    """The tasks without streaming metrics (scores are computed exactly)."""
    return [dataclasses.replace(task, metrics=()) for task in tasks]


def build_mmoeex(tasks, seed=0):
    """The architecture used for every multi-task model compared."""
    model = mt.MMoEExModel(
        tasks,
        mt.DenseExperts(8, 64, dropout=0.2, seed=seed),
        alpha=0.5,
        seed=seed,
        tower_units=[16],
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4))
    return model


def build_single(tasks, seed=0):
    """One MLP per task (single-task baseline), same expert width."""
    model = mt.shared_bottom(tasks, [64], dropout=0.2, seed=seed, tower_units=[16])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4))
    return model


def fit_options(data, names, epochs):
    """`fit` arguments: early stopping on validation loss, best weights kept."""
    x_val, y_val = data.split("val")
    return {
        "validation_data": (x_val, {n: y_val[n] for n in names}),
        "epochs": epochs,
        "batch_size": 128,
        "verbose": 0,
        "callbacks": [
            keras.callbacks.EarlyStopping(
                patience=3, restore_best_weights=True, monitor="val_loss"
            )
        ],
    }


def mean_score(scores):
    values = [v for v in scores.values() if not np.isnan(v)]
    return float(np.mean(values)), len(values)


def compare(data, group_counts, epochs, single_task):
    """Trains every setting and returns per-task test AUCs by setting."""
    tasks = quiet(data.tasks)
    names = [t.name for t in tasks]
    x, y = data.split("train")
    x_test, y_test = data.split("test")
    x_val, y_val = data.split("val")
    results, seconds = {}, {}

    start = time.perf_counter()
    all_in_one = build_mmoeex(tasks)
    all_in_one.fit(x, y, **fit_options(data, names, epochs))
    results["all-in-one"] = score_model(all_in_one, x_test, y_test)
    seconds["all-in-one"] = time.perf_counter() - start

    start = time.perf_counter()
    joint = mt.shared_bottom(tasks, [128], dropout=0.2, tower_units=[])
    joint.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4))
    joint.fit(x, y, **fit_options(data, names, epochs))
    best = None
    for count in group_counts:
        grouping = group_tasks(joint, count)
        grouped, _ = fit_grouped(
            grouping, tasks, build_mmoeex, x, y, **fit_options(data, names, epochs)
        )
        val_mean, _ = mean_score(score_model(grouped, x_val, y_val))
        print(f"  {count} groups: validation mean ROC-AUC {val_mean:.4f}", flush=True)
        if best is None or val_mean > best[0]:
            best = (val_mean, count, grouped, grouping)
    _, count, grouped, grouping = best
    results[f"grouped ({count} groups)"] = score_model(grouped, x_test, y_test)
    seconds[f"grouped ({count} groups)"] = time.perf_counter() - start

    if single_task:
        start = time.perf_counter()
        scores = {}
        for task in tasks:
            model = build_single([task])
            model.fit(
                x, {task.name: y[task.name]}, **fit_options(data, [task.name], epochs)
            )
            scores.update(score_model(model, x_test, y_test))
        results["single-task"] = scores
        seconds["single-task"] = time.perf_counter() - start
    return results, seconds, grouping


def report(name, data, results, seconds, grouping):
    print(f"\n### {name}: {len(data.tasks)} tasks, test split\n")
    print(
        "| setting | mean test ROC-AUC | tasks scored | worse than single-task | train s |"
    )
    print("|---|---|---|---|---|")
    single = results.get("single-task")
    for setting, scores in results.items():
        mean, count = mean_score(scores)
        if single is None or setting == "single-task":
            negative = "n/a"
        else:
            pairs = [
                (scores[n], single[n])
                for n in scores
                if not (np.isnan(scores[n]) or np.isnan(single[n]))
            ]
            negative = f"{sum(a < b for a, b in pairs)} of {len(pairs)}"
        print(
            f"| {setting} | {mean:.4f} | {count} | {negative} | {seconds[setting]:.0f} |"
        )
    sizes = sorted(len(g) for g in grouping.groups)
    print(f"\nGroup sizes: {sizes}")


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.times = []


def step_times(task_counts, steps=20, epochs=6):
    """Median joint train-step time (ms) against the number of tasks.

    Trains with `fit` on a cached `tf.data` pipeline of `steps` batches of
    512 toxcast rows; the step time is the median epoch time divided by
    `steps`, the first epoch (tracing) left out.
    """
    data = load_toxcast(DATA / "toxcast.csv.gz")
    x, y = data.split("train")
    rows = np.resize(np.arange(len(x)), 512 * steps)
    print("\n### Step time against task count (toxcast features, batch 512)\n")
    print("| tasks | median step ms | ms per task |")
    print("|---|---|---|")
    for count in task_counts:
        tasks = quiet(data.tasks[:count])
        model = build_mmoeex(tasks)
        labels = {t.name: y[t.name][rows] for t in tasks}
        dataset = tf.data.Dataset.from_tensor_slices((x[rows], labels))
        dataset = dataset.batch(512).cache().prefetch(tf.data.AUTOTUNE)
        timer = EpochTimer()
        model.fit(dataset, epochs=epochs, verbose=0, callbacks=[timer])
        median = 1000 * float(np.median(timer.times[1:])) / steps
        print(f"| {count} | {median:.1f} | {median / count:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(LOADERS))
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--single-task", action="store_true")
    parser.add_argument("--step-times", type=int, nargs="*")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    if args.data:
        loader, file = LOADERS[args.data]
        data = loader(DATA / file)
        results, seconds, grouping = compare(
            data, args.groups, args.epochs, args.single_task
        )
        report(args.data, data, results, seconds, grouping)
    if args.step_times:
        step_times(args.step_times)


if __name__ == "__main__":
    main()
