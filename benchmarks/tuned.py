"""Every model tuned with the same Keras Tuner budget, then scored on test.

    python benchmarks/tuned.py --data tox21 --trials 8 --seeds 0 1 2

For each deep model (single-task, shared-bottom, MMoE, MMoEEx) a Keras Tuner
`RandomSearch` of `--trials` trials over one search space (SPACE: learning
rate and schedule, width, dropout of the experts and of the inputs, towers;
the number of experts for the mixtures, alpha for MMoEEx), every trial
trained through `runs.train` from the data set's recipe as `mmoeex train`
trains (the epoch with the best validation skill kept) and scored by its
mean validation skill over the trivial predictor. The classical baselines of
the protocol (logistic regression; a random forest for molecules, gradient
boosting for tables) get the same number of
trials over their own settings, scored the same way. The best settings of
each model are then trained with every seed and scored on test, next to the
recipe as shipped (what `mmoeex train --data X` does without options). tox21
and toxcast have the protocol's features, the Morgan bits alone.

Prints Markdown: the best settings per model, validation skill, test mean
and Delta against single-task and the best classical model, the tasks lost
to it; `--json` keeps every trial.
"""

import argparse
import json
import tempfile
import time

import keras_tuner
import numpy as np
from ablation import mean_skill, trained
from classical import fit_predict, score_predictions, sequence_baselines, sequence_trees
from paths import protocol_recipe  # benchmarks/paths.py
from reproduce import delta, losses_to
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import PRIMARY_METRIC, score_model
from mmoeex_tf.runs.config_files import with_changes

DEEP_MODELS = {
    "single-task": "single-task",
    "shared-bottom": "shared-bottom",
    "MMoE": "mmoe",
    "MMoEEx": "mmoeex",
}
CLASSICAL_MODELS = ("logistic regression", "trees")
OBJECTIVE = keras_tuner.Objective("val_skill", "max")


def deep_space(hp, model, base):
    """RunConfig changes of one trial; widths are multiples of the recipe's."""
    width = base.expert_units[0]
    values = {
        "model": model,
        "learning_rate": hp.Float("learning_rate", 3e-4, 1e-2, sampling="log"),
        "lr_schedule": hp.Choice("lr_schedule", ["constant", "cosine"]),
        "expert_units": (
            hp.Choice("expert_units", [width // 4, width // 2, width, 2 * width]),
        ),
        "expert_dropout": hp.Choice("expert_dropout", [0.0, 0.25, 0.5]),
        "input_dropout": hp.Choice("input_dropout", [0.0, 0.25, 0.5]),
        "tower_units": (hp.Choice("tower_units", [8, 16, 32]),),
    }
    if model in ("mmoe", "mmoeex"):
        values["experts"] = hp.Choice("experts", [2, 4, 6, 8, 12])
    if model == "mmoeex":
        values["alpha"] = hp.Choice("alpha", [0.25, 0.5, 0.75])
    return values


def classical_factory(hp, name, kind, seed=0):
    """A scikit-learn estimator factory for the settings of one trial.

    The trees are the protocol's: a random forest for molecules, gradient
    boosting for tables and sequences.

    Args:
        hp: The trial's `keras_tuner.HyperParameters`.
        name: `"logistic regression"` or `"trees"`.
        kind: `"molecules"`, `"table"` or `"sequences"`.
        seed: Random state of the estimators.

    Returns:
        `make()` -> an unfitted estimator; for sequences `make(task)`.
    """
    if name == "logistic regression":
        c = hp.Float("C", 1e-3, 10.0, sampling="log")
        return lambda: LogisticRegression(C=c, max_iter=1000)
    if kind == "sequences":
        # The protocol's settings are the first trial: learning rates x 1
        # (0.1 per step, 0.05 per stay), 31 leaves, no L2.
        scale = hp.Float("learning_rate_scale", 0.3, 3.0, sampling="log", default=1.0)
        leaves = hp.Choice("max_leaf_nodes", [31, 15, 63])
        l2 = hp.Choice("l2_regularization", [0.0, 0.1, 1.0])

        def make(task):
            protocol = sequence_trees(task).learning_rate
            return sequence_trees(
                task,
                learning_rate=protocol * scale,
                max_leaf_nodes=leaves,
                l2_regularization=l2,
                random_state=seed,
            )

        return make
    if kind == "table":
        rate = hp.Float("learning_rate", 0.02, 0.3, sampling="log")
        leaves = hp.Choice("max_leaf_nodes", [15, 31, 63])
        l2 = hp.Choice("l2_regularization", [0.0, 0.1, 1.0])
        return lambda: HistGradientBoostingClassifier(
            learning_rate=rate,
            max_leaf_nodes=leaves,
            l2_regularization=l2,
            random_state=seed,
        )
    leaf = hp.Choice("min_samples_leaf", [1, 2, 4, 8])
    features = hp.Choice("max_features", ["sqrt", "0.05", "0.1", "0.2"])
    weight = hp.Choice("class_weight", ["balanced", "balanced_subsample", "none"])
    return lambda: RandomForestClassifier(
        200,
        min_samples_leaf=leaf,
        max_features=features if features == "sqrt" else float(features),
        class_weight=None if weight == "none" else weight,
        n_jobs=-1,
        random_state=seed,
    )


def train_deep(data, base, changes, seed):
    """Trains one deep model; returns its val and test scores per task."""
    config = with_changes(base, {"seed": seed, **changes})  # alpha draws the mask
    model, _ = trained(data, config)
    return {split: score_model(model, *data.split(split)) for split in ("val", "test")}


def fit_classical(data, make, seed=0):
    """Fits one estimator per task; returns its val and test scores per task.

    For sequences, `make(task)` and the per-step training rows drawn with
    `seed` (`classical.sequence_baselines`).
    """
    if data.x["train"].ndim == 3:
        return sequence_baselines(data, seed, make)["trees"]
    scores = {"val": {}, "test": {}}
    for task in data.tasks:
        predictions = fit_predict(
            make,
            task,
            data.x["train"],
            data.y["train"][task.name],
            {"val": data.x["val"], "test": data.x["test"]},
        )
        for split, values in predictions.items():
            scores[split][task.name] = score_predictions(
                task, data.y[split][task.name], values
            )
    return scores


class BudgetSearch(keras_tuner.RandomSearch):
    """Random search whose trial trains one model and reports its val skill.

    Args:
        data: The `MultiTaskData`.
        fit: `fit(hp) -> {"val": scores, "test": scores}` for one trial.
        **kwargs: `keras_tuner.RandomSearch` arguments.
    """

    def __init__(self, data, fit, **kwargs):
        super().__init__(objective=OBJECTIVE, **kwargs)
        self.data = data
        self.fit = fit

    def run_trial(self, trial, *args, **kwargs):
        scores = self.fit(trial.hyperparameters)
        return {"val_skill": mean_skill(self.data, "val", scores["val"])}


def search(name, data, fit, trials, directory, seed):
    """Runs one model's search; returns (best hyperparameter values, val skill)."""
    tuner = BudgetSearch(
        data,
        fit,
        max_trials=trials,
        seed=seed,
        directory=directory,
        project_name=name.replace(" ", "-"),
        overwrite=True,
    )
    tuner.search()
    best = tuner.oracle.get_best_trials(1)[0]
    return best.hyperparameters, best.score


def test_mean(data, scores):
    values = [scores[t.name] for t in data.tasks]
    return float(np.nanmean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--models",
        nargs="+",
        help="default: every deep model and the protocol's classical ones",
    )
    parser.add_argument(
        "--directory", help="folder of the tuner's trials (default: a temporary one)"
    )
    parser.add_argument("--json", help="also write every result to this file")
    args = parser.parse_args()
    args.directory = args.directory or tempfile.mkdtemp(prefix="tuned-")
    base = protocol_recipe(args.data)
    data = runs.load_run_data(base)
    if data.x["train"].ndim == 3:
        kind, classical = "sequences", ("trees",)  # the protocol has no linear row
    else:
        kind = "molecules" if args.data in ("tox21", "toxcast") else "table"
        classical = CLASSICAL_MODELS
    args.models = args.models or [*DEEP_MODELS, *classical]
    start = time.perf_counter()
    results = {}
    for name in args.models:
        if name in DEEP_MODELS:

            def fit(hp, name=name):
                changes = deep_space(hp, DEEP_MODELS[name], base)
                return train_deep(data, base, changes, args.seeds[0])

            hp, val_skill = search(
                name, data, fit, args.trials, args.directory, args.seeds[0]
            )
            changes = deep_space(hp, DEEP_MODELS[name], base)
            runs_ = [train_deep(data, base, changes, seed) for seed in args.seeds]
        else:
            hp, val_skill = search(
                name,
                data,
                lambda hp, name=name: fit_classical(
                    data, classical_factory(hp, name, kind), args.seeds[0]
                ),
                args.trials,
                args.directory,
                args.seeds[0],
            )
            runs_ = [
                fit_classical(data, classical_factory(hp, name, kind, seed), seed)
                for seed in args.seeds
            ]
        results[name] = {
            "settings": hp.values,
            "search_val_skill": val_skill,
            "runs": runs_,
        }
        print(
            f"{name}: best val skill {val_skill:.4f} with {hp.values}; test skill "
            f"{np.mean([mean_skill(data, 'test', r['test']) for r in runs_]):.4f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    recipe_runs = [train_deep(data, base, {}, seed) for seed in args.seeds]
    results[f"recipe ({base.model})"] = {"settings": {}, "runs": recipe_runs}
    report(data, results, args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=1, default=str)


def report(data, results, args):
    """Prints the Markdown table of the tuned models and the recipe."""
    tasks = data.tasks
    metric = PRIMARY_METRIC[tasks[0].kind]

    def mean_scores(name, split):
        per_run = [r[split] for r in results[name]["runs"]]
        return {t.name: float(np.mean([s[t.name] for s in per_run])) for t in tasks}

    classical = [n for n in results if n in CLASSICAL_MODELS]
    best_classical = max(
        classical, key=lambda n: mean_skill(data, "val", mean_scores(n, "val"))
    )
    reference = mean_scores(best_classical, "test")
    single = mean_scores("single-task", "test") if "single-task" in results else None
    print(
        f"\n### {args.data}: {args.trials} trials per model, seeds "
        f"{', '.join(map(str, args.seeds))}\n"
    )
    mixed = len({PRIMARY_METRIC[t.kind] for t in tasks}) > 1
    scores_header = (
        "test " + " / ".join(f"{t.name} {PRIMARY_METRIC[t.kind]}" for t in tasks)
        if mixed
        else f"test mean {metric}"
    )
    print(
        f"| model | val skill (search) | val skill | test skill | {scores_header} | "
        f"Delta vs single % | Delta vs {best_classical} % | tasks < "
        f"{best_classical} | settings |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        test = mean_scores(name, "test")
        if mixed:
            cells = " / ".join(f"{test[t.name]:.4f}" for t in tasks)
        else:
            tests = [test_mean(data, r["test"]) for r in result["runs"]]
            cells = f"{np.mean(tests):.4f} ± {np.std(tests):.4f}"
        search_skill = result.get("search_val_skill")
        print(
            f"| {name} | {'n/a' if search_skill is None else f'{search_skill:.4f}'} | "
            f"{mean_skill(data, 'val', mean_scores(name, 'val')):.4f} | "
            f"{mean_skill(data, 'test', test):.4f} | {cells} | "
            f"{'n/a' if single is None else f'{delta(test, single, tasks):+.2f}'} | "
            f"{delta(test, reference, tasks):+.2f} | "
            f"{losses_to(test, reference, tasks)}/{len(tasks)} | "
            f"{result['settings']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
