"""Run configuration of the `mmoeex` command: defaults, file loading, checks.

A run is described by a flat mapping of the `RunConfig` fields. It comes from
the defaults, then a YAML or JSON file, then command-line options, each
overriding the previous one; `RunConfig.from_dict` checks the result.
"""

import dataclasses
import difflib

from mmoeex_tf.choices import (
    AUTO,
    EXPERT_KINDS,
    LR_SCHEDULES,
    MODELS,
    MODES,
    OPTIMIZATIONS,
    SPLIT_KINDS,
    STRATEGIES,
)
from mmoeex_tf.choices import NON_FINITE_POLICIES as NON_FINITE
from mmoeex_tf.datasets import DATASETS
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs import config_values as valid


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on.

    Attributes:
        data: Data set name, one of `mmoeex_tf.datasets.DATASETS`.
        data_path: File or folder of the data set (not needed for census3
            and synthetic).
        data_options: Further keyword arguments of the data set's loader,
            e.g. `{"correlation": 0.9}` for synthetic.
        targets: Table: the target columns, `COLUMN:KIND[:POSITIVE]`.
        id_column: Table: a column of row ids, not a feature.
        split_column: Table: a column naming each row's split.
        na_values: Table: further cell values that mean missing.
        numeric_bins: Table: quantile bins of the piecewise-linear encoding
            of each number column, 0 for the standardised value alone, or
            `"auto"` (see `mmoeex_tf.datasets.TableEncoder.adapt_columns`).
        smiles_column: moleculenet: the SMILES column (default: `smiles`).
        label_columns: moleculenet: the label columns (default: the numeric
            ones).
        split: moleculenet: `"random"` or `"scaffold"` split.
        descriptors: tox21, toxcast, moleculenet: RDKit's 2D descriptors
            beside the fingerprint bits.
        outcomes: physio4: the outcomes file of the records (default:
            the `Outcomes*.txt` file beside them).
        limit_rows: Train on a random subset of this many training rows
            (validation and test stay whole); `None` uses them all.
        model: `"mmoeex"`, `"mmoe"`, `"shared-bottom"` or `"single-task"`.
        experts: Number of experts (MMoEEx and MMoE).
        expert_units: Layer widths of each expert (filters for conv1d, hidden
            sizes for lstm and gru).
        expert_kind: `"dense"`, `"summary"` (dense experts on running
            summaries and their bins, `SummaryExperts`), `"lstm"`, `"gru"`
            or `"conv1d"`; all but dense need sequence data.
        expert_bins: summary experts: quantile bins per running summary.
        expert_dropout: Dropout rate inside the experts.
        input_dropout: Dropout rate on the inputs of the experts and gates
            (every model kind).
        alpha: MMoEEx: fraction of experts made exclusive (or excluded).
        mode: MMoEEx: `"exclusivity"` or `"exclusion"`.
        gate_units: Width of a projection of the input shared by all gates;
            `None` gives every gate its own weights on the whole input, 0
            gates that do not read the input (one learned mixture per task).
        gate_mask: MMoEEx: task name -> the indices of the experts open to
            it, instead of the random draw of `alpha` and `mode`; a task not
            named has every expert open. Other models ignore it, as they
            ignore `alpha`. `{los: [0], sofa: [1], ihm: [2, 3],
            decomp: [2, 3]}` gives los and sofa an expert each of their own.
        tower_units: Layer widths of every task's tower (may be empty).
        tower_dropout: Dropout rate in the towers.
        optimization: `"joint"` (sum of task losses) or `"maml"`
            (MAML-MTL, from `mmoeex_tf.training.maml`).
        maml: Keyword arguments of `mmoeex_tf.training.maml.MAMLMTL`.
        learning_rate: AdamW learning rate (the peak, with a schedule).
        lr_schedule: `"constant"`, or `"cosine"`: linear warm-up over
            `warmup_epochs`, then cosine decay to 0 at the last epoch.
        warmup_epochs: Epochs of linear learning-rate warm-up (cosine).
        early_stopping: Stop when the validation score has not improved for
            this many epochs (`epochs` is then an upper bound); `None` trains
            every epoch.
        standardize_targets: Standardise regression targets inside the loss
            with train-split statistics saved in the model (outputs stay in
            the labels' units).
        normalize_losses: Divide each task's loss by the loss of its label
            prior, so tasks of every kind weigh alike.
        prior_bias: Start every head at its label prior (log-odds of the
            positive rate, log class frequencies).
        weight_decay: AdamW decoupled weight decay.
        batch_size: Examples per training step.
        epochs: Number of passes over the training data.
        seed: Seed of the weights, the expert assignment, the shuffling and
            the row subset.
        non_finite: A training step with a NaN or infinite loss or gradient
            is skipped (`"skip"`) or also stops training (`"stop"`).
        steps_per_execution: Training steps run per call of the compiled
            training loop (Keras `steps_per_execution`), or `"auto"`, which
            `factory.steps_per_execution` resolves. An integer should divide
            the steps per epoch (see there).
        jit_compile: Compile the steps with XLA. On CPU it trades a longer
            first epoch for faster steps (`benchmarks/RESULTS.md`).
        strategy: The `tf.distribute` strategy: `"auto"` (the default
            strategy), `"one-device"`, `"mirrored"` (the local GPUs) or
            `"multi-worker"` (the workers of `TF_CONFIG` or of a Slurm
            allocation); `batch_size` is the global batch.
        output: Output folder; `None` means
            `runs/<data>-<model>-<timestamp>`.
    """

    data: str = dataclasses.field(
        default="census3",
        metadata={"help": "data set", "choices": DATASETS, "metavar": "NAME"},
    )
    data_path: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "data file or folder; needed for physio4, tox21 and toxcast",
            "metavar": "PATH",
        },
    )
    data_options: dict = dataclasses.field(
        default_factory=dict, metadata={"help": "keyword arguments of the data loader"}
    )
    targets: list[str] = dataclasses.field(
        default_factory=list,
        metadata={"help": "table: a target column", "metavar": "COLUMN:KIND"},
    )
    id_column: str | None = dataclasses.field(
        default=None, metadata={"help": "table: a column of row ids", "metavar": "C"}
    )
    split_column: str | None = dataclasses.field(
        default=None, metadata={"help": "table: train/val/test column", "metavar": "C"}
    )
    na_values: list[str] = dataclasses.field(
        default_factory=list, metadata={"help": "table: missing-value markers"}
    )
    numeric_bins: int | str = dataclasses.field(
        default=AUTO,
        metadata={
            "help": "table: piecewise-linear bins per number column (0: none; "
            "auto: up to 64, at most 4096 in all)",
            "metavar": "N",
        },
    )
    smiles_column: str | None = dataclasses.field(
        default=None, metadata={"help": "moleculenet: SMILES column", "metavar": "C"}
    )
    label_columns: list[str] = dataclasses.field(
        default_factory=list,
        metadata={
            "help": "moleculenet: label columns (the numeric ones)",
            "metavar": "C",
        },
    )
    split: str = dataclasses.field(
        default="random",
        metadata={"help": "moleculenet: molecules split", "choices": SPLIT_KINDS},
    )
    descriptors: bool = dataclasses.field(
        default=True,
        metadata={"help": "molecules: RDKit descriptors beside the Morgan bits"},
    )
    outcomes: str | None = dataclasses.field(
        default=None,
        metadata={"help": "physio4: the outcomes file", "metavar": "PATH"},
    )
    limit_rows: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "train on a random subset of N training rows (quick runs); "
            "validation and test stay whole",
            "metavar": "N",
        },
    )
    model: str = dataclasses.field(
        default="mmoeex",
        metadata={"help": "architecture", "choices": MODELS, "metavar": "NAME"},
    )
    experts: int = dataclasses.field(
        default=8, metadata={"help": "number of experts", "metavar": "E"}
    )
    expert_units: tuple[int, ...] = dataclasses.field(
        default=(32,), metadata={"help": "layer widths of each expert", "metavar": "U"}
    )
    expert_kind: str = dataclasses.field(
        default="dense",
        metadata={
            "help": "expert network (all but dense need sequences)",
            "choices": EXPERT_KINDS,
            "metavar": "KIND",
        },
    )
    expert_bins: int = dataclasses.field(
        default=8,
        metadata={"help": "summary experts: bins per summary", "metavar": "B"},
    )
    expert_dropout: float = dataclasses.field(
        default=0.0, metadata={"help": "dropout in the experts", "metavar": "RATE"}
    )
    input_dropout: float = dataclasses.field(
        default=0.0, metadata={"help": "dropout on the inputs", "metavar": "RATE"}
    )
    alpha: float = dataclasses.field(
        default=0.5,
        metadata={"help": "MMoEEx: share of experts tied to a task", "metavar": "A"},
    )
    mode: str = dataclasses.field(
        default="exclusivity",
        metadata={"help": "MMoEEx mode", "choices": MODES, "metavar": "MODE"},
    )
    gate_units: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "width of an input projection shared by the gates "
            "(0: gates that do not read the input)"
        },
    )
    gate_mask: dict = dataclasses.field(
        default_factory=dict,
        metadata={"help": "MMoEEx: task -> its open experts, instead of alpha"},
    )
    tower_units: tuple[int, ...] = dataclasses.field(
        default=(16,),
        metadata={
            "help": "layer widths of each task tower (none: no tower layer)",
            "metavar": "U",
            "nargs": "*",
        },
    )
    tower_dropout: float = dataclasses.field(
        default=0.0, metadata={"help": "dropout in the towers", "metavar": "RATE"}
    )
    optimization: str = dataclasses.field(
        default="joint",
        metadata={
            "help": "training of the tasks (maml: MAML-MTL)",
            "choices": OPTIMIZATIONS,
            "metavar": "NAME",
        },
    )
    maml: dict = dataclasses.field(
        default_factory=dict, metadata={"help": "keyword arguments of MAMLMTL"}
    )
    learning_rate: float = dataclasses.field(
        default=1e-3, metadata={"help": "AdamW learning rate", "metavar": "LR"}
    )
    lr_schedule: str = dataclasses.field(
        default="constant",
        metadata={
            "help": "learning-rate schedule: constant, or cosine decay to 0 after "
            "a linear warm-up of --warmup-epochs",
            "choices": LR_SCHEDULES,
        },
    )
    warmup_epochs: int = dataclasses.field(
        default=0,
        metadata={"help": "epochs of learning-rate warm-up (cosine)", "metavar": "N"},
    )
    early_stopping: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "stop after N epochs without a better validation score "
            "(--epochs is then an upper bound)",
            "metavar": "N",
        },
    )
    standardize_targets: bool = dataclasses.field(
        default=True,
        metadata={
            "help": "standardise regression targets inside the loss with "
            "train-split statistics saved in the model"
        },
    )
    normalize_losses: bool = dataclasses.field(
        default=True,
        metadata={"help": "divide each task's loss by the loss of its label prior"},
    )
    prior_bias: bool = dataclasses.field(
        default=True,
        metadata={"help": "start every head at its label prior (log-odds)"},
    )
    weight_decay: float = dataclasses.field(
        default=1e-4, metadata={"help": "AdamW weight decay", "metavar": "WD"}
    )
    batch_size: int = dataclasses.field(
        default=512, metadata={"help": "examples per step", "metavar": "B"}
    )
    epochs: int = dataclasses.field(
        default=12, metadata={"help": "passes over the training data", "metavar": "N"}
    )
    seed: int = dataclasses.field(
        default=0, metadata={"help": "random seed", "metavar": "S"}
    )
    non_finite: str = dataclasses.field(
        default="skip",
        metadata={
            "help": (
                "a step with a NaN/inf loss or gradient is skipped (and counted) "
                "or stops training"
            ),
            "choices": NON_FINITE,
            "metavar": "POLICY",
        },
    )
    steps_per_execution: int | str = dataclasses.field(
        default=AUTO,
        metadata={
            "help": "training steps per call of the compiled loop, or auto "
            "(up to 16, dividing the steps per epoch; 1 with --non-finite stop "
            "or several replicas)",
            "metavar": "N",
        },
    )
    jit_compile: bool = dataclasses.field(
        default=False, metadata={"help": "compile the steps with XLA"}
    )
    strategy: str = dataclasses.field(
        default="auto",
        metadata={"help": "tf.distribute strategy", "choices": STRATEGIES},
    )
    output: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "run folder; by default runs/<data>-<model>-<timestamp>",
            "metavar": "DIR",
        },
    )

    def __post_init__(self):
        checks = valid.field_checks(dataclasses.fields(self))
        for name, check in checks.items():
            try:
                value = check(getattr(self, name))
            except valid.Invalid as invalid:
                raise MMoEExError(
                    f"Invalid {name}: expected {invalid}, got {getattr(self, name)!r}."
                ) from None
            object.__setattr__(self, name, value)
        for task, experts in self.gate_mask.items():
            if self.model == "mmoeex" and experts[-1] >= self.experts:
                raise MMoEExError(
                    f"Invalid gate_mask: task {task!r} opens expert {experts[-1]}, "
                    f"but the experts are numbered 0 to {self.experts - 1}."
                )

    @classmethod
    def from_dict(cls, values):
        """Creates a config from a mapping, the missing keys at their defaults.

        Args:
            values: Mapping of field name to value.

        Raises:
            MMoEExError: naming an unknown key (and the closest valid one) or
                the first invalid value.
        """
        names = [field.name for field in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise MMoEExError(
                    f"Unknown config key {key!r}.{hint} Valid keys: {', '.join(names)}."
                )
        return cls(**values)

    def to_dict(self):
        """Returns the config as plain YAML/JSON types (lists, not tuples)."""
        values = dataclasses.asdict(self)
        for name in ("expert_units", "tower_units"):
            values[name] = list(values[name])
        return values
