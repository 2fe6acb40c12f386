"""The paper's comparison, next to the classical baselines, over several seeds.

    python benchmarks/reproduce.py --data census3 physio4 tox21 --seeds 0 1 2
    python benchmarks/reproduce.py --data census3 --models MMoE MMoEEx --set experts=12 alpha=0.5
    python benchmarks/reproduce.py --data toxcast --results toxcast.json
    python benchmarks/reproduce.py --data tox21 --set descriptors=true

Single-task, shared-bottom, MMoE and MMoEEx (joint, and MAML-MTL exact or
first order) train with
the data set's recipe (`mmoeex_tf/runs/recipes/`, what `mmoeex train --data
X` uses), the same budget for every model; the weights of the epoch with the
best validation score are scored on the test split with exact metrics
(ROC-AUC, linear-weighted kappa, MAE). The classical baselines of the
protocol (`benchmarks/classical.py`) run on the same arrays. tox21 and
toxcast have the protocol's features, the Morgan bits alone; `--set
descriptors=true` adds the RDKit descriptors that `mmoeex train` adds.

Prints Markdown per data set: mean and spread per task; Delta (the MMoEEx
paper's mean relative gain, in percent) over single-task and over the best
classical model (the one with the best mean validation skill); the number
of tasks on which each model loses to single-task (negative transfer) and to
that classical model; the expert diversity of MMoE and MMoEEx.

With `--results FILE` every finished run (and the classical baselines) is
written to a JSON file at once, keyed by data set, model, seed and the whole
recipe trained (`--set` changes included), and a run already in it is not
trained again: a long reproduction stopped half-way resumes where it
stopped, and a changed recipe trains afresh.
"""

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import time

import numpy as np
from ablation import mean_skill, trained
from classical import classical_baselines
from paths import protocol_recipe  # benchmarks/paths.py

from mmoeex_tf import runs
from mmoeex_tf.analysis import diversity
from mmoeex_tf.analysis.scores import PRIMARY_METRIC, score_model
from mmoeex_tf.runs.data import LOADER_OPTIONS
from mmoeex_tf.tasks import higher_is_better

DATA_SETS = ("census3", "physio4", "tox21", "toxcast")
MODELS = {
    "single-task": {"model": "single-task"},
    "shared-bottom": {"model": "shared-bottom"},
    "MMoE": {"model": "mmoe"},
    "MMoEEx": {"model": "mmoeex"},
    "MMoEEx + MAML-MTL": {
        "model": "mmoeex",
        "optimization": "maml",
        "maml": {"split_ratio": None},
    },
    "MMoEEx + MAML-MTL, first order": {
        "model": "mmoeex",
        "optimization": "maml",
        "maml": {"split_ratio": None, "order": 1},
    },
}


def run(base, name, seed, data):
    """Trains one model; returns test scores, diversity and seconds."""
    config = dataclasses.replace(base, seed=seed, **MODELS[name])
    model, result = trained(data, config)
    x_test, y_test = data.split("test")
    scores = score_model(model, x_test, y_test)
    score = float("nan")
    if config.model in ("mmoe", "mmoeex") and len(data.tasks) <= 50:
        matrix = diversity.expert_distance_matrix(model, x_test)
        score = diversity.diversity_score(matrix)
    return scores, score, result.seconds


class SavedRuns:
    """Finished runs of a reproduction, kept in a JSON file (or only in memory).

    Args:
        path: The JSON file, read if it exists; `None` keeps nothing.
    """

    def __init__(self, path=None):
        self.path = path
        self.runs = {}
        if path and os.path.exists(path):
            with open(path) as file:
                self.runs = json.load(file)

    def get(self, key, compute):
        """The saved result of `key`, else `compute()`'s, saved at once."""
        if key not in self.runs:
            self.runs[key] = compute()
            if self.path:
                partial = f"{self.path}.partial"
                with open(partial, "w") as file:
                    json.dump(self.runs, file, default=float)
                os.replace(partial, self.path)
        return self.runs[key]


def delta(scores, reference, tasks):
    """The paper's Delta: mean relative gain over `reference`, in percent."""
    gains = []
    for task in tasks:
        ours, theirs = scores[task.name], reference[task.name]
        if not (math.isfinite(ours) and math.isfinite(theirs)) or theirs == 0:
            continue
        sign = 1.0 if higher_is_better(PRIMARY_METRIC[task.kind]) else -1.0
        gains.append(sign * (ours - theirs) / abs(theirs))
    return 100.0 * float(np.mean(gains))


def losses_to(scores, reference, tasks):
    """Number of tasks on which `scores` is worse than `reference`."""
    count = 0
    for task in tasks:
        ours, theirs = scores[task.name], reference[task.name]
        if math.isfinite(ours) and math.isfinite(theirs):
            better = higher_is_better(PRIMARY_METRIC[task.kind])
            count += ours < theirs if better else ours > theirs
    return count


def _mean_scores(rows, tasks):
    return {t.name: float(np.mean([r[t.name] for r in rows])) for t in tasks}


def report(name, data, results, classical, seeds):
    tasks = data.tasks
    wide = len(tasks) > 12
    best_name = max(
        classical, key=lambda m: mean_skill(data, "val", classical[m]["val"])
    )
    best = classical[best_name]["test"]
    singles = results.get("single-task")
    single_mean = _mean_scores([s[0] for s in singles], tasks) if singles else None
    print(f"\n### {name} (seeds {', '.join(map(str, seeds))})\n")
    columns = (
        ["mean"] if wide else [f"{t.name} {PRIMARY_METRIC[t.kind]}" for t in tasks]
    )
    print(
        f"| model | {' | '.join(columns)} | Delta vs single % | Delta vs {best_name} % "
        f"| tasks < single | tasks < {best_name} | diversity | train s |"
    )
    print("|---|" + "---|" * (len(columns) + 6))
    total = len(tasks)
    for model, scores in classical.items():
        test = scores["test"]
        cells = (
            [f"{np.nanmean(list(test.values())):.4f}"]
            if wide
            else [f"{test[t.name]:.4f}" for t in tasks]
        )
        versus_single = (
            f"{delta(test, single_mean, tasks):+.2f}" if single_mean else "n/a"
        )
        print(
            f"| classical: {model} | {' | '.join(cells)} | {versus_single} | "
            f"{delta(test, best, tasks):+.2f} | "
            f"{f'{losses_to(test, single_mean, tasks)}/{total}' if single_mean else 'n/a'} | "
            f"{losses_to(test, best, tasks)}/{total} | n/a | n/a |"
        )
    for model, model_results in results.items():
        per_seed = [r[0] for r in model_results]
        mean = _mean_scores(per_seed, tasks)
        if wide:
            means = [np.nanmean(list(s.values())) for s in per_seed]
            cells = [f"{np.mean(means):.4f} ± {np.std(means):.4f}"]
        else:
            cells = [
                f"{mean[t.name]:.4f} ± {np.std([s[t.name] for s in per_seed]):.4f}"
                for t in tasks
            ]
        versus_single = "n/a"
        if singles:
            deltas = [delta(r[0], s[0], tasks) for r, s in zip(model_results, singles)]
            versus_single = f"{np.mean(deltas):+.2f}"
        diversity_scores = [r[1] for r in model_results]
        div = (
            "n/a"
            if np.isnan(diversity_scores).all()
            else f"{np.mean(diversity_scores):.3f} ± {np.std(diversity_scores):.3f}"
        )
        seconds = np.mean([r[2] for r in model_results])
        below_single = (
            f"{losses_to(mean, single_mean, tasks)}/{total}" if singles else "n/a"
        )
        print(
            f"| {model} | {' | '.join(cells)} | {versus_single} | "
            f"{delta(mean, best, tasks):+.2f} | {below_single} | "
            f"{losses_to(mean, best, tasks)}/{total} | {div} | {seconds:.0f} |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(DATA_SETS), choices=DATA_SETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--set", nargs="*", default=[], help="KEY=JSON changes to every recipe"
    )
    parser.add_argument(
        "--results", help="JSON file of finished runs: written after each, reused"
    )
    args = parser.parse_args()
    saved = SavedRuns(args.results)
    for name in args.data:
        base = protocol_recipe(name, args.set)  # --set descriptors=true
        data = runs.load_run_data(base)
        start = time.perf_counter()
        # Other data sets' loader options do not change a run: left out, so
        # that a new one does not make saved runs look like other recipes.
        foreign = {k for keys in LOADER_OPTIONS.values() for k in keys}
        foreign -= set(LOADER_OPTIONS.get(name, ()))
        shown = {
            k: v
            for k, v in base.to_dict().items()
            if k not in ("data_path", "model", "optimization", "maml", "seed", "output")
            and k not in foreign
        }
        recipe_key = json.dumps(shown, sort_keys=True)
        features = " with descriptors" if data.x["train"].shape[-1] > 1024 else ""
        classical = saved.get(
            f"{name} classical{features}", functools.partial(classical_baselines, data)
        )
        results = {model: [] for model in args.models}
        for seed in args.seeds:
            for model in args.models:
                label = f"{name} {model} seed {seed}"
                result = saved.get(
                    f"{label} {recipe_key}",
                    functools.partial(run, base, model, seed, data),
                )
                results[model].append(result)
                print(
                    f"{label}: mean test "
                    f"{np.nanmean(list(result[0].values())):.4f}, {result[2]:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        report(name, data, results, classical, args.seeds)
        print(f"\nRecipe: {shown}; wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
