"""Hyperparameter search with Keras Tuner.

`MMoEExHyperModel` builds an `MMoEExModel` from a Keras Tuner
`HyperParameters`; it works with `RandomSearch`, `BayesianOptimization` and
`Hyperband` like any `HyperModel`, and `tuner.get_best_models()` reloads the
best model (its weights at the best epoch). The search space:

| name | values |
|---|---|
| `experts` | 4 to 16, step 4 |
| `expert_units` | 8, 16, 32, 64 |
| `alpha` | 0 to 0.75, step 0.25 (0 is MMoE) |
| `mode` | `exclusivity`, `exclusion` |
| `tower_units` | 8, 16, 32 |
| `learning_rate` | 1e-4 to 1e-2, log scale |
| `optimization` | `joint`, `maml` |
| `inner_lr` | 1e-4 to 1e-1, log scale (MAML-MTL only) |
| `maml_order` | 1, 2 (MAML-MTL only) |

To narrow or pin a dimension, declare it first in a `HyperParameters`
passed to the tuner, e.g. `hp.Fixed("experts", 8)` or
`hp.Int("experts", 2, 4)`; the rest of the model (expert kind, dropout,
weight decay, seed) comes from `base_config`.

The objective is one task's validation metric (`val_income_auc`) or the
mean over tasks (`val_mean_score`, `val_mean_auc`, logged by
`MeanTaskMetric` during the search), with the direction each metric needs:
up for AUC, accuracy and kappa, down for losses and errors.

`search` also runs as one process of a parallel search (Keras Tuner's
distributed mode): the chief holds the oracle and hands out trials, every
worker runs trials until none is left, and each trial runs once. The role
comes from `KERASTUNER_TUNER_ID` / `KERASTUNER_ORACLE_IP` /
`KERASTUNER_ORACLE_PORT` or from `role` and `oracle`
(`mmoeex_tf.integrations.parallel_tuning`). The
search folder must be one that all of them see (shared storage on several
machines): workers write the trials there, and the chief reads the best one
back. Waits are bounded: a chief that no worker joins, a worker whose chief
is not there, a worker started with another config or a port in use are
named errors.
"""

import pathlib

import keras_tuner

from mmoeex_tf import runs
from mmoeex_tf.choices import TUNERS
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.integrations.callbacks import MeanTaskMetric
from mmoeex_tf.integrations.export import export_saved_model
from mmoeex_tf.integrations.parallel_tuning import SearchRole
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import config_yaml, with_changes
from mmoeex_tf.tasks import check_tasks, higher_is_better


def metric_direction(metric):
    """`"min"` for losses and error metrics (MAE, RMSE, MSE), else `"max"`.

    Args:
        metric: A task metric name (`"auc"`, `"kappa"`, `"mae"`, `"loss"`,
            ...) or `"score"` (the mean score, higher is better).
    """
    return "max" if higher_is_better(metric) else "min"


def objective(tasks, task=None, metric=None):
    """The Keras Tuner objective for a task's metric or the mean over tasks.

    Args:
        tasks: The `Task` specs.
        task: A task name: optimise `val_<task>_<metric>`; `None`: the mean
            over tasks.
        metric: The metric; `None` means the task's first metric, or for
            the mean, `val_mean_score` (see `MeanTaskMetric`).

    Returns:
        A `keras_tuner.Objective` with its direction.

    Raises:
        MMoEExError: for an unknown task, or a metric the task (or every
            task) does not log.
    """
    tasks = check_tasks(tasks)
    if task is None:
        name = MeanTaskMetric(tasks, metric).name
        return keras_tuner.Objective(name, metric_direction(metric or "score"))
    spec = {t.name: t for t in tasks}.get(task)
    if spec is None:
        raise MMoEExError(
            f"Objective task {task!r} is not one of the tasks "
            f"{[t.name for t in tasks]}."
        )
    metric = metric or spec.metrics[0]
    if metric != "loss" and metric not in spec.metrics:
        raise MMoEExError(
            f"Task {task!r} logs {[*spec.metrics, 'loss']}, not {metric!r}."
        )
    return keras_tuner.Objective(f"val_{task}_{metric}", metric_direction(metric))


class MMoEExHyperModel(keras_tuner.HyperModel):
    """Builds `MMoEExModel`s over the search space of this module.

    Args:
        tasks: The `Task` specs.
        input_shape: Shape of one example, `(features,)` or `(steps,
            features)`.
        objective_task: Task whose validation metric is the objective;
            `None` for the mean over tasks.
        objective_metric: The metric (see `objective`).
        base_config: A `RunConfig` for everything not searched (expert
            kind, expert dropout, tower dropout, weight decay, seed, further
            `maml` options); its values of searched settings are ignored,
            and the model is always MMoEEx (`alpha` 0 is MMoE) with the mask
            drawn from `alpha` and `mode` (no `gate_mask`).
        optimizations: The `optimization` choices, from `"joint"` and
            `"maml"` (MAML-MTL, `mmoeex_tf.training.maml.MAMLMTL`).
        train_labels: Dict task name -> training labels; every trial's model
            learns their statistics first (`runs.adapt_model`, as
            `base_config` says), and a cosine schedule is sized to them.
            `None` leaves the models unadapted (constant schedules only).
        train_inputs: The training inputs, for experts that learn
            statistics of them (`SummaryExperts`' bins); `None` leaves them
            at their defaults.
        **kwargs: `keras_tuner.HyperModel` arguments (`name`, `tunable`).

    Attributes:
        objective: The `keras_tuner.Objective` to give the tuner.

    Example:
    ```python
    hypermodel = MMoEExHyperModel(data.tasks, data.x["train"].shape[1:],
                                  objective_task="income")
    tuner = keras_tuner.RandomSearch(hypermodel, hypermodel.objective,
                                     max_trials=20, directory="tuning")
    tuner.search(data.x["train"], data.y["train"], epochs=5,
                 validation_data=(data.x["val"], data.y["val"]))
    best = tuner.get_best_models(1)[0]
    ```
    """

    def __init__(
        self,
        tasks,
        input_shape,
        objective_task=None,
        objective_metric=None,
        base_config=None,
        optimizations=("joint", "maml"),
        train_labels=None,
        train_inputs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tasks = check_tasks(tasks)
        self.input_shape = tuple(input_shape)
        self.objective = objective(self.tasks, objective_task, objective_metric)
        self._mean = (
            MeanTaskMetric(self.tasks, objective_metric)
            if objective_task is None
            else None
        )
        self.base_config = base_config or RunConfig()
        unknown = sorted(set(optimizations) - {"joint", "maml"})
        if unknown or not optimizations:
            raise MMoEExError(
                "optimizations must be a non-empty selection of 'joint' and "
                f"'maml', got {optimizations!r}."
            )
        self.optimizations = tuple(optimizations)
        self.train_labels = train_labels
        self.train_inputs = train_inputs

    def build(self, hp):
        """Returns a built, compiled `MMoEExModel` for the values in `hp`."""
        values = {
            "model": "mmoeex",
            "experts": hp.Int("experts", 4, 16, step=4),
            "expert_units": (hp.Choice("expert_units", [8, 16, 32, 64]),),
            "alpha": hp.Float("alpha", 0.0, 0.75, step=0.25),
            "mode": hp.Choice("mode", ["exclusivity", "exclusion"]),
            "tower_units": (hp.Choice("tower_units", [8, 16, 32]),),
            "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"),
            "optimization": hp.Choice("optimization", list(self.optimizations)),
        }
        if "maml" in self.optimizations:
            with hp.conditional_scope("optimization", ["maml"]):
                inner_lr = hp.Float("inner_lr", 1e-4, 1e-1, sampling="log")
                order = hp.Choice("maml_order", [1, 2])
            if values["optimization"] == "maml":
                values["maml"] = {
                    **self.base_config.maml,
                    "inner_lr": inner_lr,
                    "order": order,
                }
        config = with_changes(self.base_config, values)
        rows = None
        if self.train_labels is not None:
            rows = len(self.train_labels[self.tasks[0].name])
        model = runs.build_model(config, self.tasks, self.input_shape, rows)
        if self.train_labels is not None:
            runs.adapt_model(model, config, self.train_labels, self.train_inputs)
        # Built now, the optimizer's state is part of the tuner's checkpoints
        # and comes back with `get_best_models`.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """`model.fit`, logging the mean over tasks first if it is the objective."""
        own = [] if self._mean is None else [self._mean]
        return model.fit(*args, callbacks=[*own, *(callbacks or [])], **kwargs)


def make_tuner(kind, hypermodel, max_trials=10, max_epochs=10, **kwargs):
    """Creates a Keras Tuner tuner for a hypermodel and its objective.

    Args:
        kind: `"random"`, `"bayesian"` or `"hyperband"`.
        hypermodel: An `MMoEExHyperModel`.
        max_trials: Trials of random search and Bayesian optimisation.
        max_epochs: Most epochs a Hyperband trial trains.
        **kwargs: Further tuner arguments (`directory`, `project_name`,
            `seed`, `overwrite`, `hyperparameters`, ...).

    Returns:
        The tuner.

    Raises:
        MMoEExError: for an unknown kind.
    """
    common = {"hypermodel": hypermodel, "objective": hypermodel.objective, **kwargs}
    if kind == "random":
        return keras_tuner.RandomSearch(max_trials=max_trials, **common)
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
    if kind == "hyperband":
        return keras_tuner.Hyperband(max_epochs=max_epochs, **common)
    raise MMoEExError(f"Unknown tuner {kind!r}; choose from {', '.join(TUNERS)}.")


def search(
    config,
    tuner="random",
    max_trials=10,
    objective_task=None,
    objective_metric=None,
    directory="runs/tuning",
    verbose=1,
    role=None,
    oracle=None,
    timeout=None,
):
    """Searches the space of `MMoEExHyperModel` on a config's data set.

    Trials train on the train split (shuffled), for `config.epochs` epochs
    (Hyperband: at most that many), and are scored on the val split. The
    search lives in `<directory>/<data set>` and resumes if that exists.
    In a parallel search the chief returns once every trial has ended and
    every worker has been told to stop; a worker returns when the oracle
    has no trial left.

    Args:
        config: A `RunConfig`: data set, batch size, epochs, seed, and the
            settings not searched.
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: Trials of random search and Bayesian optimisation.
        objective_task: See `MMoEExHyperModel`.
        objective_metric: See `MMoEExHyperModel`.
        directory: Folder of the tuner's trials.
        verbose: Keras verbosity of the search.
        role: `"chief"`, `"worker"` or `None`; see
            `parallel_tuning.SearchRole.of`.
        oracle: The chief's `"host:port"`, with `role`.
        timeout: Seconds the chief waits for a first worker, and a worker
            for its chief; `None` reads `MMOEEX_JOIN_TIMEOUT` (else 45).

    Returns:
        The tuner, its search done (a worker's oracle is the chief's).

    Raises:
        MMoEExError: for invalid options or data, the chief's port in use,
            no worker within `timeout` (chief), no chief within `timeout`
            or another config than the chief's (worker).
    """
    settings = f"{config_yaml(config)}{objective_task}{objective_metric}"
    part = SearchRole.of(settings, role, oracle, timeout)
    data = runs.load_run_data(config)
    hypermodel = MMoEExHyperModel(
        data.tasks,
        data.x["train"].shape[1:],
        objective_task,
        objective_metric,
        base_config=config,
        train_labels=data.y["train"],
        train_inputs=data.x["train"],
    )
    options = {} if part is None else {"hyperparameters": part.hyperparameters()}
    search_tuner = make_tuner(
        tuner,
        hypermodel,
        max_trials=max_trials,
        max_epochs=config.epochs,
        directory=directory,
        project_name=config.data,
        seed=config.seed,
        **options,
    )

    def run_search():
        search_tuner.search(
            data.tf_dataset("train", config.batch_size, shuffle=True, seed=config.seed),
            validation_data=data.tf_dataset("val", config.batch_size),
            epochs=config.epochs,
            shuffle=False,  # the dataset shuffles itself; Keras would warn
            verbose=verbose,
        )

    if part is None:
        run_search()
    else:
        part.run(search_tuner, run_search)
    return search_tuner


def export_best(tuner, config, directory, name=None, base_dir="saved_models"):
    """Saves and exports the best model of a finished search.

    Args:
        tuner: The tuner of `search` (on its own or the chief).
        config: The search's `RunConfig`.
        directory: The search folder given to `search`.
        name: Name of the exported model; `None` is the data set's.
        base_dir: Folder of the served models.

    Returns:
        `(best_trial, model_file, export_path)`: the best `Trial`, the
        saved `<directory>/<data set>/best_model.keras` and the new
        SavedModel version folder.
    """
    best_trial = tuner.oracle.get_best_trials(1)[0]
    model = tuner.load_model(best_trial)
    model_file = pathlib.Path(directory) / config.data / "best_model.keras"
    model.save(model_file)
    path = export_saved_model(model, name or config.data, base_dir=base_dir)
    return best_trial, model_file, path
