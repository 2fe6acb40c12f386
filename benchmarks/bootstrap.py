"""How far test scores move with the draw of the test rows (or stays).

Trains a data set's recipe (`mmoeex_tf/runs/recipes/<data>.yaml`, through
`runs.train` as `mmoeex train` does) with several seeds and the protocol's
classical model (`classical.classical_predictions`: the trees unless told
otherwise) or, with `--against KEY=JSON ...`, the recipe with those changes
(the same seeds), then resamples the test rows with replacement (a paired
bootstrap: the same rows for both models in each resample; for sequences a
row is a whole stay) and prints, per task and for the mean over tasks when
they share one metric, each model's score with its 95 % interval, the
interval of the network's lead over the classical model (in "higher is
better" units: for MAE the classical error minus the network's) and the
share of resamples in which the network is at least as good. Also how many
rows carry the positives of each binary task: a per-step ROC-AUC over
thousands of steps is decided by those few stays.

    python benchmarks/bootstrap.py --data physio4 --seeds 0 1 2
    python benchmarks/bootstrap.py --data tox21 --set descriptors=true 'model="mmoeex"'
    python benchmarks/bootstrap.py --data physio4 --set 'model="mmoeex"' --against 'model="single-task"'

tox21 and toxcast have the protocol's features (the Morgan bits alone)
unless `--set descriptors=true`; other `--set KEY=JSON` change the recipe.
"""

import argparse
import dataclasses
import json
import time

import numpy as np
from ablation import trained  # benchmarks/ablation.py
from classical import classical_predictions  # benchmarks/classical.py
from paths import protocol_recipe  # benchmarks/paths.py

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import PRIMARY_METRIC, task_score
from mmoeex_tf.tasks import higher_is_better


def network_predictions(data, config, seeds):
    """Test predictions of the configured network, one dict per seed."""
    predictions = []
    for seed in seeds:
        model, _ = trained(data, dataclasses.replace(config, seed=seed))
        predictions.append(model.predict(data.x["test"], batch_size=2048, verbose=0))
    return predictions


def signed(metric, score):
    """A score as "higher is better" (MAE negated)."""
    return score if higher_is_better(metric) else -score


def rows_with_positives(labels):
    """Number of rows (sequences) with at least one positive label."""
    positive = np.nan_to_num(labels.reshape(len(labels), -1)) > 0
    return int(positive.any(axis=1).sum())


def resampled_scores(tasks, labels, networks, compared, rows):
    """Scores of the network and the model compared (each the mean over seeds).

    Args:
        tasks: The `Task`s.
        labels: Task name -> test labels, rows first.
        networks: One dict task name -> test predictions per seed.
        compared: The same for the model compared: one dict for the
            classical model (`None` for a task it has none of), one per seed
            for a second network.
        rows: The row numbers of the resample.

    Returns:
        An array `(tasks, 2)`: network, compared; `NaN` where undefined.
    """
    scores = np.full((len(tasks), 2), np.nan)
    for i, task in enumerate(tasks):
        if compared[0][task.name] is None:
            continue
        y = labels[task.name][rows]
        for j, predictions in enumerate((networks, compared)):
            scores[i, j] = np.mean(
                [task_score(task, y, p[task.name][rows]) for p in predictions]
            )
    return scores


def summary(metric, observed, draws):
    """Observed scores, 95 % intervals and the network's lead over resamples.

    Args:
        metric: The primary metric of the scores.
        observed: `(network, compared model)` on the whole test split (its
            keys stay `"classical"` in the results, for either kind).
        draws: `(resamples, 2)` scores over the resamples (`NaN` rows
            dropped).

    Returns:
        A dict with the metric, the scores, their intervals, the lead and its
        interval, and the share of resamples where the network leads or ties.
    """
    draws = draws[np.isfinite(draws).all(axis=1)]
    lead = signed(metric, draws[:, 0]) - signed(metric, draws[:, 1])
    return {
        "metric": metric,
        "network": float(observed[0]),
        "classical": float(observed[1]),
        "network_95": np.percentile(draws[:, 0], [2.5, 97.5]).tolist(),
        "classical_95": np.percentile(draws[:, 1], [2.5, 97.5]).tolist(),
        "lead": float(signed(metric, observed[0]) - signed(metric, observed[1])),
        "lead_95": np.percentile(lead, [2.5, 97.5]).tolist(),
        "network_ahead": float(np.mean(lead >= 0)),
        "resamples": len(draws),
    }


def bootstrap(tasks, labels, networks, compared, resamples, seed=0):
    """Paired bootstrap of every task's test score and of their mean.

    Args:
        tasks: The `Task`s.
        labels: Task name -> test labels, rows first.
        networks: One dict task name -> test predictions per seed.
        compared: The same for the model compared (see `resampled_scores`).
        resamples: Number of resamples of the rows.
        seed: Seed of the resampling.

    Returns:
        Task name -> `summary`, and `"mean"` -> the `summary` of the mean
        over tasks (those defined in both models) when all tasks share one
        metric.
    """
    rng = np.random.default_rng(seed)
    num_rows = len(next(iter(labels.values())))
    observed = resampled_scores(tasks, labels, networks, compared, np.arange(num_rows))
    draws = np.stack(
        [
            resampled_scores(
                tasks, labels, networks, compared, rng.integers(0, num_rows, num_rows)
            )
            for _ in range(resamples)
        ]
    )
    results = {
        task.name: summary(PRIMARY_METRIC[task.kind], observed[i], draws[:, i])
        for i, task in enumerate(tasks)
    }
    metrics = {PRIMARY_METRIC[task.kind] for task in tasks}
    if len(tasks) > 1 and len(metrics) == 1:
        defined = np.isfinite(draws).all(axis=2, keepdims=True)
        means = np.nanmean(np.where(defined, draws, np.nan), axis=1)
        results["mean"] = summary(metrics.pop(), np.nanmean(observed, axis=0), means)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument(
        "--classical", default="trees", help="classical model: trees or linear"
    )
    parser.add_argument("--set", nargs="*", default=[], help="KEY=JSON overrides")
    parser.add_argument(
        "--against",
        nargs="+",
        help="KEY=JSON changes of the recipe: compare with that network "
        "instead of a classical model",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    config = protocol_recipe(args.data, args.set)
    data = runs.load_run_data(config)
    start = time.perf_counter()
    networks = network_predictions(data, config, args.seeds)
    if args.against:
        other = protocol_recipe(args.data, [*args.set, *args.against])
        compared = network_predictions(data, other, args.seeds)
        compared_name = other.model
    else:
        compared = [classical_predictions(data)[args.classical]["test"]]
        compared_name = args.classical
    print(f"trained in {time.perf_counter() - start:.0f} s ({config.model})")
    labels = {task.name: data.y["test"][task.name] for task in data.tasks}
    results = bootstrap(data.tasks, labels, networks, compared, args.resamples)
    seeds = ", ".join(map(str, args.seeds))
    print(
        f"| task | metric | network (seeds {seeds}) [95 %] | {compared_name} [95 %] "
        f"| network's lead [95 %] | resamples network >= {compared_name} "
        "| rows with a positive |"
    )
    print("|---|---|---|---|---|---:|---:|")
    binary = {task.name for task in data.tasks if task.kind == "binary"}
    for name, result in results.items():
        positives = ""
        if name in binary:
            positives = f"{rows_with_positives(labels[name])} of {len(labels[name])}"
            result["rows_with_positive"] = positives
        low, high = result["network_95"]
        other_low, other_high = result["classical_95"]
        lead_low, lead_high = result["lead_95"]
        print(
            f"| {name} | {result['metric']} | {result['network']:.3f} [{low:.3f}, {high:.3f}] "
            f"| {result['classical']:.3f} [{other_low:.3f}, {other_high:.3f}] "
            f"| {result['lead']:+.3f} [{lead_low:+.3f}, {lead_high:+.3f}] "
            f"| {result['network_ahead']:.0%} | {positives} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
