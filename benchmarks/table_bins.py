"""Number columns of users' tables encoded piecewise-linearly: chosen on validation.

Two real tables read through `mmoeex_tf.datasets.from_dataframe`, as a user's
file would be, each with `numeric_bins` 0 (the standardised value alone),
fixed bin counts and `"auto"` (the default):

- `census`: the census-income file bundled with the package, targets income
  (binary), marital status and education (multiclass), every other column a
  feature (age, wages, capital gains, ... as numbers); a random 70/15/15
  split.
- `stays`: physio4's stays as one row each, the 82 inputs' last, mean, min
  and max over the 48 hours (the protocol's per-stay features of the
  gradient-boosted trees), targets ihm (binary) and sofa (regression), the
  protocol's split (a split column).

Each model is trained with the `mmoeex train` defaults (`RunConfig(data=
"table")`) for every seed; the table gives each task's validation and test
score (mean over seeds), the mean validation skill over the trivial
predictor, and the classical baselines on the same arrays: logistic / ridge
regression for each bin setting (its features change with the bins) and
gradient-boosted trees on the unbinned arrays (trees do not depend on
monotone encodings; for `stays`, the protocol's trees of those features).

    python benchmarks/table_bins.py --tables census stays --bins 0 16 64 auto
    python benchmarks/table_bins.py --tables stays --bins auto --models mmoeex \
        --regression-loss absolute_error

`--regression-loss absolute_error` trains sofa on the absolute error
(`Task.regression_loss`; the trees' loss for it) instead of the squared one.
"""

import argparse
import time

import numpy as np
import pandas as pd
from ablation import mean_skill, trained  # benchmarks/ablation.py
from classical import (
    fit_predict,
    scored,
    sequence_trees,
    stay_features,
    tabular_predictions,
)
from paths import census_table, protocol_recipe

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import score_model
from mmoeex_tf.datasets import from_dataframe
from mmoeex_tf.runs.config import RunConfig

CENSUS_TARGETS = {
    "income label": "binary:50000+.",
    "marital stat": "multiclass",
    "education": "multiclass",
}


def stay_frame():
    """physio4's stays as a table: per-stay features, ihm, sofa, split."""
    data = runs.load_run_data(protocol_recipe("physio4"))
    frames = []
    for split in ("train", "val", "test"):
        features = stay_features(data.x[split])
        frame = pd.DataFrame(
            features, columns=[f"input{i}" for i in range(features.shape[1])]
        )
        for task in ("ihm", "sofa"):
            frame[task] = data.y[split][task]
        frame["split"] = split
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def loader(table, regression_loss="squared_error"):
    """A function of `numeric_bins` returning the table's `TableData`."""
    if table == "census":
        return lambda bins: census_table(CENSUS_TARGETS, numeric_bins=bins)
    frame = stay_frame()
    targets = {"ihm": "binary", "sofa": f"regression:{regression_loss}"}
    return lambda bins: from_dataframe(
        frame, targets, split="split", numeric_bins=bins, name="stays"
    )


def trees(data, table):
    """Gradient-boosted trees' predictions: `{"trees": split -> task -> ...}`."""
    if table == "census":
        return tabular_predictions(data, molecules=False, models=["trees"])
    evaluation = {split: data.x[split] for split in ("val", "test")}
    by_task = {
        task.name: fit_predict(
            lambda task=task: sequence_trees(task),
            task,
            data.x["train"],
            data.y["train"][task.name],
            evaluation,
        )
        for task in data.tasks
    }
    return {"trees": {s: {t: p[s] for t, p in by_task.items()} for s in evaluation}}


def network_row(data, model, seeds):
    """Scores of `model` with the defaults, averaged over `seeds`."""
    scores, skills, seconds = [], [], []
    for seed in seeds:
        start = time.perf_counter()
        network, _ = trained(data, RunConfig(data="table", model=model, seed=seed))
        seconds.append(time.perf_counter() - start)
        scores.append(
            {s: score_model(network, *data.split(s)) for s in ("val", "test")}
        )
        skills.append(mean_skill(data, "val", scores[-1]["val"]))
    mean = {
        split: {t.name: np.mean([s[split][t.name] for s in scores]) for t in data.tasks}
        for split in ("val", "test")
    }
    return mean, float(np.mean(skills)), float(np.median(seconds))


def print_row(name, bins, data, mean, skill, extra=""):
    cells = " | ".join(
        f"{mean['val'][t.name]:.4f} / {mean['test'][t.name]:.4f}" for t in data.tasks
    )
    print(
        f"| {name} | {bins} | {len(data.feature_names)} | {cells} | {skill:.4f} | "
        f"{extra} |",
        flush=True,
    )


def main(args):
    for table in args.tables:
        load = loader(table, args.regression_loss)
        print(f"\n## {table}\n")
        for bins in args.bins:
            data = load(int(bins) if bins.isdigit() else bins)
            if bins == args.bins[0]:  # the header, once the tasks are known
                names = " | ".join(f"{t.name} val / test" for t in data.tasks)
                print(f"| model | numeric_bins | features | {names} | val skill | s |")
                print("|---|---|---:|" + "---|" * len(data.tasks) + "---:|---:|")
            for model in args.models:
                mean, skill, seconds = network_row(data, model, args.seeds)
                print_row(model, bins, data, mean, skill, f"{seconds:.0f}")
            linear = tabular_predictions(data, molecules=False, models=["linear"])
            predictions = {**linear, **(trees(data, table) if bins == "0" else {})}
            for name, scores in scored(data, predictions).items():
                print_row(
                    name, bins, data, scores, mean_skill(data, "val", scores["val"])
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["census", "stays"])
    parser.add_argument("--bins", nargs="+", default=["0", "16", "64", "auto"])
    parser.add_argument("--models", nargs="+", default=["mmoeex", "single-task"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--regression-loss",
        default="squared_error",
        choices=["squared_error", "absolute_error"],
        help="stays: the loss of sofa",
    )
    main(parser.parse_args())
