"""Classical baselines on the arrays the loaders return (scikit-learn).

The protocol's "Classical baselines" section, per task on its present labels:
- tables and molecules: `LogisticRegression(C=0.1, max_iter=1000)`
  (regression: `Ridge`) and a tree ensemble (`RandomForestClassifier(200,
  class_weight="balanced")` for molecules, `HistGradientBoosting*` for
  tables);
- sequences (physio4): `HistGradientBoosting*` on per-stay features (last,
  mean, min, max over the steps of every input column) for sequence-level
  tasks (`max_iter=300, learning_rate=0.05`; regression with
  `loss="absolute_error"`), on per-step features (the step's inputs, their
  running mean up to the step, the hour / steps) for per-step tasks
  (`max_iter=200, learning_rate=0.1`, 60,000 training steps sampled with
  seed 0).

    python benchmarks/classical.py --data tox21 physio4
    python benchmarks/classical.py --data tox21 --descriptors

Prints, per data set and model, the exact test (and validation) score of
every task as `analysis.scores.task_score` computes it.
"""

import argparse
import time

import numpy as np
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import task_score

PER_STEP_SAMPLES = 60_000


def stay_features(x):
    """Per-sequence features: last, mean, min and max of every input column."""
    return np.concatenate([x[:, -1], x.mean(1), x.min(1), x.max(1)], axis=1)


def step_features(x):
    """Per-step features `(n, steps, 2 * features + 1)`: inputs, running mean, hour."""
    steps = x.shape[1]
    running = np.cumsum(x, axis=1) / np.arange(1, steps + 1)[None, :, None]
    hour = np.broadcast_to((np.arange(steps) / steps)[None, :, None], (*x.shape[:2], 1))
    return np.concatenate([x, running, hour], axis=2).astype("float32")


def _tabular_models(task, molecules):
    """The (name, estimator factory) pairs for a task of a table or molecules."""
    if task.kind == "regression":
        return [
            ("linear", lambda: Ridge(alpha=1.0)),
            ("trees", lambda: HistGradientBoostingRegressor(random_state=0)),
        ]
    trees = (
        (
            lambda: RandomForestClassifier(
                200, class_weight="balanced", n_jobs=-1, random_state=0
            )
        )
        if molecules
        else (lambda: HistGradientBoostingClassifier(random_state=0))
    )
    return [
        ("linear", lambda: LogisticRegression(C=0.1, max_iter=1000)),
        ("trees", trees),
    ]


def sequence_trees(task, **changes):
    """The protocol's gradient-boosted trees for a physio4 task.

    Args:
        task: The `Task`: per-step tasks get 200 iterations at learning rate
            0.1, sequence-level ones 300 at 0.05; regression the absolute
            error loss.
        **changes: Other `HistGradientBoosting*` settings (a tuning trial's).

    Returns:
        The unfitted estimator.
    """
    if task.per_step:
        options = {"max_iter": 200, "learning_rate": 0.1, "random_state": 0}
    else:
        options = {"max_iter": 300, "learning_rate": 0.05, "random_state": 0}
    options.update(changes)
    if task.kind == "regression":
        return HistGradientBoostingRegressor(loss="absolute_error", **options)
    return HistGradientBoostingClassifier(**options)


def _predict(model, task, x):
    if task.kind == "regression":
        return model.predict(x)
    probabilities = model.predict_proba(x)
    if task.kind == "binary":
        return probabilities[:, 1]
    full = np.zeros((len(x), task.output_size))
    full[:, model.classes_.astype(int)] = probabilities
    return full


def fit_predict(make_model, task, x_train, y_train, x_eval):
    """Fits on present labels, predicts every eval split; NaN when one class."""
    present = ~np.isnan(y_train)
    labels = y_train[present]
    if task.kind != "regression" and np.unique(labels).size < 2:
        return {name: None for name in x_eval}
    model = make_model()
    model.fit(
        x_train[present], labels if task.kind == "regression" else labels.astype(int)
    )
    return {name: _predict(model, task, x) for name, x in x_eval.items()}


def score_predictions(task, labels, predictions):
    """`task_score` of a task's predictions; NaN where none were made."""
    if predictions is None:
        return float("nan")
    return task_score(task, labels, predictions)


def tabular_predictions(data, molecules, models=("linear", "trees")):
    """Predictions of the linear and tree models per task, on val and test.

    Args:
        data: A `MultiTaskData` of feature rows.
        molecules: Random forests (molecules) instead of boosted trees.
        models: The models to fit, of `"linear"` and `"trees"`.

    Returns:
        Model name -> split -> task name -> predictions (`None` where the
        train split has one class only).
    """
    results = {}
    x_train = data.x["train"]
    for task in data.tasks:
        for name, make in _tabular_models(task, molecules):
            if name not in models:
                continue
            predictions = fit_predict(
                make,
                task,
                x_train,
                data.y["train"][task.name],
                {"val": data.x["val"], "test": data.x["test"]},
            )
            for split, values in predictions.items():
                results.setdefault(name, {}).setdefault(split, {})[task.name] = values
    return results


def sequence_predictions(data, seed=0, make_model=sequence_trees):
    """Gradient-boosted trees' predictions on per-stay and per-step features.

    Args:
        data: The `MultiTaskData` of sequences (physio4).
        seed: Seed of the per-step training sample.
        make_model: `make_model(task)` -> an unfitted estimator.

    Returns:
        `{"trees": split -> task name -> predictions}`, shaped like the
        split's labels (`None` where the train split has one class only).
    """
    rng = np.random.default_rng(seed)
    stays = {split: stay_features(data.x[split]) for split in data.x}
    steps = {split: step_features(data.x[split]) for split in data.x}
    results = {}
    for task in data.tasks:
        if task.per_step:
            train = steps["train"].reshape(-1, steps["train"].shape[-1])
            labels = data.y["train"][task.name].reshape(-1)
            keep = np.flatnonzero(~np.isnan(labels))
            keep = rng.choice(keep, min(PER_STEP_SAMPLES, keep.size), replace=False)
            evaluation = {
                split: steps[split].reshape(-1, steps[split].shape[-1])
                for split in ("val", "test")
            }
            predictions = fit_predict(
                lambda task=task: make_model(task),
                task,
                train[keep],
                labels[keep],
                evaluation,
            )
            shape = {s: data.x[s].shape[:2] for s in ("val", "test")}
            predictions = {
                s: None if p is None else p.reshape(*shape[s], *p.shape[1:])
                for s, p in predictions.items()
            }
        else:
            predictions = fit_predict(
                lambda task=task: make_model(task),
                task,
                stays["train"],
                data.y["train"][task.name],
                {"val": stays["val"], "test": stays["test"]},
            )
        for split, values in predictions.items():
            results.setdefault(split, {})[task.name] = values
    return {"trees": results}


def classical_predictions(data):
    """The protocol's classical models' predictions for a `MultiTaskData`.

    Returns:
        Model name (`"linear"`, `"trees"`; sequences: `"trees"`) -> split ->
        task name -> predictions.
    """
    if data.x["train"].ndim == 3:
        return sequence_predictions(data)
    return tabular_predictions(data, molecules=data.name in ("tox21", "toxcast"))


def scored(data, predictions):
    """`score_predictions` of every model, split and task of `predictions`."""
    tasks = {task.name: task for task in data.tasks}
    return {
        model: {
            split: {
                name: score_predictions(tasks[name], data.y[split][name], values)
                for name, values in by_task.items()
            }
            for split, by_task in splits.items()
        }
        for model, splits in predictions.items()
    }


def sequence_baselines(data, seed=0, make_model=sequence_trees):
    """Scores of the gradient-boosted trees (`sequence_predictions`).

    Returns:
        `{"trees": split -> task name -> score}`.
    """
    return scored(data, sequence_predictions(data, seed, make_model))


def classical_baselines(data):
    """The protocol's classical baselines for a `MultiTaskData`.

    Returns:
        Model name (`"linear"`, `"trees"`) -> split -> task name -> score.
    """
    return scored(data, classical_predictions(data))


def main():
    from paths import data_path, protocol_options  # benchmarks/paths.py

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument(
        "--descriptors",
        action="store_true",
        help="tox21, toxcast: RDKit descriptors beside the bits (beyond the protocol)",
    )
    args = parser.parse_args()
    for name in args.data:
        options = protocol_options(name, args.descriptors)
        data = runs.load_data(name, data_path(name), options)
        start = time.perf_counter()
        results = classical_baselines(data)
        print(f"\n### {name} ({time.perf_counter() - start:.0f} s)")
        for model, splits in results.items():
            for split, scores in splits.items():
                values = np.array(list(scores.values()), dtype=float)
                print(
                    f"{model} {split}: mean {np.nanmean(values):.4f} over "
                    f"{np.isfinite(values).sum()} tasks; "
                    + ", ".join(f"{k} {v:.4f}" for k, v in list(scores.items())[:12])
                )


if __name__ == "__main__":
    main()
