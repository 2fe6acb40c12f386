"""Ablation of the training recipe, chosen on validation.

Trains the data set's recipe (`mmoeex_tf/runs/recipes/`) with one change at
a time and prints the
exact validation and test scores of every task, their mean skill over the
trivial predictor (`analysis.scores.skill`) and the classical baselines'
scores next to them, so each change is kept or dropped on validation.

    python benchmarks/ablation.py --data physio4 --variants raw adapt cosine
    python benchmarks/ablation.py --data tox21 --seeds 0 1 2
    python benchmarks/ablation.py --data physio4 --variants adapt --pooling ihm=last sofa=max
    python benchmarks/ablation.py --data tox21 --set descriptors=true
    python benchmarks/ablation.py --data physio4 --variants adapt --regression-loss sofa=absolute_error

tox21 and toxcast have the protocol's features (the Morgan bits alone)
unless `--set descriptors=true` adds RDKit's descriptors, as `mmoeex train`
does.

Variants (see VARIANTS): `raw` trains without label statistics; `scaled`
standardises regression targets only; `normalized` adds the loss scale of
each task's label prior; `adapt` adds the prior-log-odds head biases; then
learning rates and the cosine schedule. Every variant trains through
`runs.train`, as `mmoeex train` does.
"""

import argparse
import dataclasses
import json
import math
import time

import numpy as np
from paths import protocol_recipe  # benchmarks/paths.py

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import PRIMARY_METRIC, score_model, skill
from mmoeex_tf.runs.config_files import with_changes

#: Variant name -> RunConfig overrides. `raw` is the library without label
#: statistics (the best epoch is still chosen by skill over the trivial
#: predictor); each later one adds one change.
VARIANTS = {
    "raw": {
        "standardize_targets": False,
        "normalize_losses": False,
        "prior_bias": False,
    },
    "scaled": {"normalize_losses": False, "prior_bias": False},
    "normalized": {"prior_bias": False},
    "bias-only": {"normalize_losses": False},
    "adapt": {},
    "cosine": {"lr_schedule": "cosine", "warmup_epochs": 1},
    "lr3e-3": {"learning_rate": 3e-3},
    "b64-lr3e-3": {"batch_size": 64, "learning_rate": 3e-3},
    "wide-lr3e-3": {"learning_rate": 3e-3, "expert_units": [32], "tower_units": [32]},
    "cosine-lr3e-3": {
        "lr_schedule": "cosine",
        "warmup_epochs": 1,
        "learning_rate": 3e-3,
    },
    "shared-bottom": {"model": "shared-bottom"},
    "mmoe": {"model": "mmoe"},
    "single-task": {"model": "single-task"},
    "alpha0": {"alpha": 0.0},
    "experts16": {"experts": 16},
    "gate16": {"gate_units": 16},
    "gate16-normalized": {"gate_units": 16, "prior_bias": False},
    "narrow16": {"expert_units": [16]},
    "drop0.5": {"expert_units": [32], "expert_dropout": 0.5},
    "lr3e-4-e30": {"learning_rate": 3e-4, "epochs": 30},
    "wide256": {"expert_units": [256], "expert_dropout": 0.3, "tower_units": [32]},
    "wide256-cosine-lr3e-3": {
        "expert_units": [256],
        "expert_dropout": 0.3,
        "tower_units": [32],
        "lr_schedule": "cosine",
        "warmup_epochs": 1,
        "learning_rate": 3e-3,
    },
    "wide256-wd": {
        "expert_units": [256],
        "expert_dropout": 0.3,
        "tower_units": [32],
        "weight_decay": 1e-3,
    },
    "wide-cosine-lr3e-3": {
        "lr_schedule": "cosine",
        "warmup_epochs": 1,
        "learning_rate": 3e-3,
        "expert_units": [32],
        "tower_units": [32],
    },
}


def trivial_scores(data, split):
    """Each task's primary metric for a trivial predictor on one split.

    ROC-AUC 0.5, kappa 0, and for regression the MAE of the training median.
    """
    scores = {}
    for task in data.tasks:
        metric = PRIMARY_METRIC[task.kind]
        if metric == "mae":
            median = np.nanmedian(data.y["train"][task.name])
            labels = data.y[split][task.name]
            scores[task.name] = float(np.nanmean(np.abs(labels - median)))
        else:
            scores[task.name] = 0.5 if metric == "roc_auc" else 0.0
    return scores


def mean_skill(data, split, scores):
    trivial = trivial_scores(data, split)
    values = [
        skill(PRIMARY_METRIC[t.kind], scores[t.name], trivial[t.name])
        for t in data.tasks
    ]
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def trained(data, config):
    """A model of `config` built for `data` and trained as `mmoeex train` does.

    Returns:
        The model and the result of `runs.train` (best epoch, seconds, ...).
    """
    model = runs.build_model(
        config, data.tasks, data.x["train"].shape[1:], len(data.x["train"])
    )
    return model, runs.train(model, data, config, verbose=0)


def run_variant(data, base, variant, seed):
    config = with_changes(base, {"seed": seed, **VARIANTS[variant]})
    start = time.perf_counter()
    model, result = trained(data, config)
    seconds = time.perf_counter() - start
    scores = {
        split: score_model(model, *data.split(split)) for split in ("val", "test")
    }
    return {
        "variant": variant,
        "seed": seed,
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 1),
        **{
            f"{split}_skill": mean_skill(data, split, scores[split]) for split in scores
        },
        "scores": scores,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", nargs="*", default=[], help="KEY=JSON overrides")
    parser.add_argument(
        "--pooling",
        nargs="*",
        default=[],
        help="TASK=POOLING: how a sequence-level task pools the steps",
    )
    parser.add_argument(
        "--regression-loss",
        nargs="*",
        default=[],
        help="TASK=LOSS: a regression task's loss (squared_error, absolute_error)",
    )
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    base = protocol_recipe(args.data, args.set)  # --set descriptors=true
    data = runs.load_run_data(base)
    pooling = dict(item.split("=", 1) for item in args.pooling)
    losses = dict(item.split("=", 1) for item in args.regression_loss)
    tasks = [
        dataclasses.replace(
            t,
            pooling=pooling.get(t.name, t.pooling),
            regression_loss=losses.get(t.name, t.regression_loss),
        )
        for t in data.tasks
    ]
    data = dataclasses.replace(data, tasks=tuple(tasks))
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            row = run_variant(data, base, variant, seed)
            rows.append(row)
            cells = " ".join(
                f"{task}={value:.4f}" for task, value in row["scores"]["val"].items()
            )[:300]
            print(
                f"{args.data} {variant} seed {seed}: val skill {row['val_skill']:.4f} "
                f"test skill {row['test_skill']:.4f} best epoch {row['best_epoch']} "
                f"({row['seconds']} s) | val {cells}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(rows, file, indent=1)


if __name__ == "__main__":
    main()
