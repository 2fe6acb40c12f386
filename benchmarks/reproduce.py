"""The paper's comparison: single-task, shared-bottom, MMoE, MMoEEx (joint
and MAML-MTL) on census3, physio4 and tox21, over several seeds.

    python benchmarks/reproduce.py --data census3 physio4 tox21 --seeds 0 1 2

Every model of a data set gets the same budget (expert kind and width,
towers, learning rate, epochs, batch); the weights of the epoch with the best
validation score are scored on the test split with exact metrics (ROC-AUC,
linear-weighted kappa, MAE). Prints Markdown: mean and spread per task, the
relative improvement over single-task (Delta, as in the MMoEEx paper), and
the expert diversity of MMoE and MMoEEx at equal expert count.
"""

import argparse
import dataclasses
import time

import numpy as np
from paths import SHARED_DATA as DATA  # benchmarks/paths.py, beside this script

from mmoeex_tf import runs
from mmoeex_tf.analysis import diversity
from mmoeex_tf.analysis.scores import PRIMARY_METRIC, score_model
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.tasks import higher_is_better

SETTINGS = {
    "census3": RunConfig(data="census3", epochs=12),
    "physio4": RunConfig(
        data="physio4",
        data_path=str(DATA / "physionet2012"),
        expert_kind="gru",
        experts=6,
        expert_units=(16,),
        tower_units=(16,),
        batch_size=128,
        epochs=10,
    ),
    "tox21": RunConfig(
        data="tox21",
        data_path=str(DATA / "moleculenet" / "tox21.csv"),
        expert_units=(64,),
        expert_dropout=0.2,
        batch_size=128,
        epochs=15,
    ),
}
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
}


def run(base, name, seed, data):
    """Trains one model and returns its test scores and diversity."""
    config = dataclasses.replace(base, seed=seed, **MODELS[name])
    model = runs.build_model(config, data.tasks, data.x["train"].shape[1:])
    result = runs.train(model, data, config, verbose=0)
    x_test, y_test = data.split("test")
    scores = score_model(model, x_test, y_test)
    score = float("nan")
    if config.model in ("mmoe", "mmoeex"):
        matrix = diversity.expert_distance_matrix(model, x_test)
        score = diversity.diversity_score(matrix)
    return scores, score, result.seconds


def delta(scores, single, tasks):
    """The paper's Delta: mean relative gain over single-task, in percent."""
    gains = []
    for task in tasks:
        metric = PRIMARY_METRIC[task.kind]
        sign = 1.0 if higher_is_better(metric) else -1.0
        gains.append(sign * (scores[task.name] - single[task.name]) / single[task.name])
    return 100.0 * float(np.mean(gains))


def report(name, data, results, seeds):
    tasks = data.tasks
    metric = {t.name: PRIMARY_METRIC[t.kind] for t in tasks}
    print(f"\n### {name} (seeds {', '.join(map(str, seeds))})\n")
    header = " | ".join(f"{t.name} {metric[t.name]}" for t in tasks)
    print(f"| model | {header} | Delta % | diversity | train s |")
    print("|---|" + "---|" * (len(tasks) + 3))
    singles = results["single-task"]
    for model, model_results in results.items():
        cells = []
        for task in tasks:
            values = [r[0][task.name] for r in model_results]
            cells.append(f"{np.mean(values):.4f} ± {np.std(values):.4f}")
        deltas = [delta(r[0], s[0], tasks) for r, s in zip(model_results, singles)]
        diversity_scores = [r[1] for r in model_results]
        div = (
            "n/a"
            if np.isnan(diversity_scores).all()
            else f"{np.mean(diversity_scores):.3f} ± {np.std(diversity_scores):.3f}"
        )
        seconds = np.mean([r[2] for r in model_results])
        print(
            f"| {model} | {' | '.join(cells)} | {np.mean(deltas):+.2f} | {div} | "
            f"{seconds:.0f} |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=sorted(SETTINGS), choices=SETTINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    for name in args.data:
        base = SETTINGS[name]
        data = runs.load_data(base.data, base.data_path)
        results = {model: [] for model in args.models}
        start = time.perf_counter()
        for seed in args.seeds:
            for model in args.models:
                results[model].append(run(base, model, seed, data))
        report(name, data, results, args.seeds)
        shown = {
            k: v
            for k, v in dataclasses.asdict(base).items()
            if k not in ("data_path", "model", "optimization", "maml", "seed", "output")
        }
        print(f"\nSettings: {shown}; wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
