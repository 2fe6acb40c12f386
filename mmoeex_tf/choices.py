"""The fixed choices of mmoeex_tf's options, importable without TensorFlow.

The `mmoeex` parser lists them (the choices of `RunConfig` fields,
`--split`, `--tuner`) without importing the modules that use them, which
import TensorFlow; those modules import them from here. The data set names
are `mmoeex_tf.datasets.DATASETS`, which is free of TensorFlow too.
"""

#: The splits of every data set (`mmoeex_tf.datasets.MultiTaskData`).
SPLITS = ("train", "val", "test")
#: The `split` of `mmoeex_tf.runs.score_split` (and `--split` of the
#: commands) that takes every row of a data set.
ALL_ROWS = "all"
#: The value of a setting that the library picks itself
#: (`steps_per_execution`, `numeric_bins`).
AUTO = "auto"
#: The ways `mmoeex_tf.datasets.load_moleculenet_csv` splits the molecules.
SPLIT_KINDS = ("random", "scaffold")
#: How MMoEEx's special experts are tied to their task
#: (`mmoeex_tf.layers.assignment`): open to it only, or closed to it only.
MODES = ("exclusivity", "exclusion")
#: What a training step with a NaN or infinite loss or gradient does
#: (`mmoeex_tf.training.non_finite`): skipped, or also stops training.
NON_FINITE_POLICIES = ("skip", "stop")
#: The Keras Tuner search algorithms of `mmoeex_tf.integrations.tuning`.
TUNERS = ("random", "bayesian", "hyperband")
#: The architectures of `mmoeex train` (`mmoeex_tf.runs.RunConfig.model`).
MODELS = ("mmoeex", "mmoe", "shared-bottom", "single-task")
#: The `tf.distribute` strategies of a run.
STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")
#: The expert stacks of a run (`mmoeex_tf.runs.build_model`).
EXPERT_KINDS = ("dense", "summary", "lstm", "gru", "conv1d")
#: Joint training or MAML-MTL.
OPTIMIZATIONS = ("joint", "maml")
#: The learning-rate schedules of a run.
LR_SCHEDULES = ("constant", "cosine")
