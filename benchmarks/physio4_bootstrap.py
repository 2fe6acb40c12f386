"""physio4: how far the test scores move with the draw of the stays.

Trains physio4's recipe (`mmoeex_tf/runs/recipes/physio4.yaml`, through
`runs.train` as `mmoeex train` does) with several seeds and the protocol's
gradient-boosted trees (`classical.sequence_predictions`), then resamples
the test stays with replacement (a paired bootstrap: the same stays for
both models in each resample) and prints, per task, each model's score
with its 95 % interval, the interval of the network's lead over the trees
(in "higher is better" units: for MAE the trees' error minus the
network's) and the share of resamples in which the network is at least
as good. Also how many stays carry the positives of each binary task: a
per-step ROC-AUC over thousands of steps is decided by those few stays.

    python benchmarks/physio4_bootstrap.py --seeds 0 1 2 --resamples 1000

`--set KEY=JSON` changes the recipe (e.g. `'model="mmoeex"'`).
"""

import argparse
import dataclasses
import json
import time

import numpy as np
from classical import sequence_predictions  # benchmarks/classical.py
from paths import data_path  # benchmarks/paths.py

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import PRIMARY_METRIC, task_score
from mmoeex_tf.runs.config_files import recipe


def network_predictions(data, config, seeds):
    """Test predictions of the recipe's network, one dict per seed."""
    predictions = []
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=seed)
        model = runs.build_model(
            seeded, data.tasks, data.x["train"].shape[1:], len(data.x["train"])
        )
        runs.train(model, data, seeded, verbose=0)
        predictions.append(model.predict(data.x["test"], batch_size=2048, verbose=0))
    return predictions


def signed(task, score):
    """A task's score as "higher is better" (MAE negated)."""
    return -score if PRIMARY_METRIC[task.kind] == "mae" else score


def stays_with_positives(labels):
    """Number of sequences with at least one positive label (binary tasks)."""
    positive = np.nan_to_num(labels.reshape(len(labels), -1)) > 0
    return int(positive.any(axis=1).sum())


def bootstrap(task, labels, networks, trees, resamples, seed=0):
    """Paired stay bootstrap of one task's test score.

    Args:
        task: The `Task`.
        labels: Its test labels, stays first.
        networks: The networks' test predictions for the task, one per seed;
            a resample's network score is their mean score.
        trees: The trees' test predictions for the task.
        resamples: Number of resamples of the stays.
        seed: Seed of the resampling.

    Returns:
        A dict of the observed scores, their 95 % intervals, the interval of
        the network's signed lead and the share of resamples it leads or
        ties in.
    """
    rng = np.random.default_rng(seed)

    def scores(rows):
        network = np.mean([task_score(task, labels[rows], p[rows]) for p in networks])
        return network, task_score(task, labels[rows], trees[rows])

    everyone = np.arange(len(labels))
    network, tree = scores(everyone)
    draws = np.array(
        [scores(rng.integers(0, len(labels), len(labels))) for _ in range(resamples)]
    )
    draws = draws[np.isfinite(draws).all(axis=1)]
    lead = signed(task, draws[:, 0]) - signed(task, draws[:, 1])
    return {
        "network": network,
        "trees": tree,
        "network_95": np.percentile(draws[:, 0], [2.5, 97.5]).tolist(),
        "trees_95": np.percentile(draws[:, 1], [2.5, 97.5]).tolist(),
        "lead": signed(task, network) - signed(task, tree),
        "lead_95": np.percentile(lead, [2.5, 97.5]).tolist(),
        "network_ahead": float(np.mean(lead >= 0)),
        "resamples": len(draws),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--set", nargs="*", default=[], help="KEY=JSON overrides")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {key: json.loads(value) for key, value in overrides.items()}
    config = dataclasses.replace(
        recipe("physio4"), data_path=data_path("physio4"), **overrides
    )
    data = runs.load_run_data(config)
    start = time.perf_counter()
    networks = network_predictions(data, config, args.seeds)
    trees = sequence_predictions(data)["test"]
    print(f"trained in {time.perf_counter() - start:.0f} s ({config.model})")
    results = {}
    print(
        "| task | metric | network (seeds "
        + ", ".join(map(str, args.seeds))
        + ") [95 %] | trees [95 %] | network's lead [95 %] | resamples network >= "
        "trees | stays with a positive |"
    )
    print("|---|---|---|---|---|---:|---:|")
    for task in data.tasks:
        labels = data.y["test"][task.name]
        result = bootstrap(
            task,
            labels,
            [p[task.name] for p in networks],
            trees[task.name],
            args.resamples,
        )
        positives = stays_with_positives(labels) if task.kind == "binary" else None
        results[task.name] = {**result, "stays_with_positive": positives}
        low, high = result["network_95"]
        tree_low, tree_high = result["trees_95"]
        lead_low, lead_high = result["lead_95"]
        print(
            f"| {task.name} | {PRIMARY_METRIC[task.kind]} | "
            f"{result['network']:.3f} [{low:.3f}, {high:.3f}] | "
            f"{result['trees']:.3f} [{tree_low:.3f}, {tree_high:.3f}] | "
            f"{result['lead']:+.3f} [{lead_low:+.3f}, {lead_high:+.3f}] | "
            f"{result['network_ahead']:.0%} | "
            f"{'' if positives is None else f'{positives} of {len(labels)}'} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
