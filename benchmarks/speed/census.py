"""The census3 reference configuration, the shared `Context`, epoch timing."""

import dataclasses
import math

from benchmarks.speed.common import BATCH, TRAININGS, fit_runner, interleaved, log
from mmoeex_tf import runs
from mmoeex_tf.datasets import load_census3
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.factory import steps_per_execution


@dataclasses.dataclass(frozen=True)
class CensusSetting:
    """One way of training the census3 reference configuration.

    Attributes:
        training: A key of `TRAININGS`.
        steps_per_execution: Keras `steps_per_execution`.
        jit_compile: Keras `jit_compile` (XLA).
        outer: `MAMLMTL(outer=...)`; ignored for joint training.
    """

    training: str
    steps_per_execution: int = 1
    jit_compile: bool = False
    outer: str = "auto"

    def label(self):
        """A short description for the progress messages."""
        return (
            f"{self.training}, steps/execution {self.steps_per_execution}, "
            f"XLA {'on' if self.jit_compile else 'off'}, outer {self.outer}"
        )


def census_config(setting, epochs=1):
    """The census3 reference configuration as `mmoeex train` takes it."""
    order = TRAININGS[setting.training]
    return RunConfig(
        data="census3",
        experts=12,
        expert_units=(4,),
        alpha=0.75,
        mode="exclusivity",
        tower_units=(4,),
        optimization="joint" if order is None else "maml",
        maml={} if order is None else {"order": order, "outer": setting.outer},
        learning_rate=1e-4,
        weight_decay=0.01,
        batch_size=BATCH,
        epochs=epochs,
        seed=0,
        steps_per_execution=setting.steps_per_execution,
        jit_compile=setting.jit_compile,
    )


def census_model(data, setting):
    """The census3 reference MMoEEx, built as `mmoeex train` builds it."""
    config = census_config(setting)
    return runs.build_model(config, data.tasks, data.x["train"].shape[1:])


def auto_steps(ctx, training):
    """What `steps_per_execution="auto"` resolves to for a census3 run."""
    config = census_config(CensusSetting(training, "auto"))
    return steps_per_execution(config, len(ctx.census.x["train"]))


def default_settings(ctx):
    """Training name -> its setting with every knob at its default (`RunConfig`'s)."""
    return {name: CensusSetting(name, auto_steps(ctx, name)) for name in TRAININGS}


def knob_settings(spe_values):
    """The grid of section 2: steps per execution, XLA, MAML outer passes."""
    settings = []
    for name, order in TRAININGS.items():
        settings += [
            CensusSetting(name, spe, jit) for jit in (False, True) for spe in spe_values
        ]
        if order is not None:
            settings.append(CensusSetting(name, 1, False, "loop"))
    return settings


class Context:
    """What the sections share: options, data sets, measurements, checks."""

    def __init__(self, args):
        self.args = args
        self._census = None
        self.epoch_times = {}
        self.outer_modes = {}
        self.checks = []

    @property
    def census(self):
        """The census3 data set, loaded once."""
        if self._census is None:
            log("loading census3")
            self._census = load_census3()
        return self._census

    @property
    def census_steps(self):
        """Train steps of one census3 epoch at batch 512."""
        return math.ceil(len(self.census.x["train"]) / BATCH)

    def check(self, figure, value, target, met):
        """Records a figure against its target, for the summary."""
        self.checks.append((figure, value, target, met))


def measure_census_epochs(ctx, settings):
    """Median epoch times of census3 settings not measured yet (interleaved).

    Args:
        ctx: The `Context`; results are stored in `ctx.epoch_times`.
        settings: `CensusSetting`s.
    """
    settings = [s for s in settings if s not in ctx.epoch_times]
    if not settings:
        return
    data = ctx.census
    dataset = data.shuffled_epochs("train", BATCH, seed=0, epochs=1)[0]
    runners = {}
    for setting in settings:
        model = census_model(data, setting)
        if TRAININGS[setting.training] is not None:
            batched = model.optimization.uses_batched_outer(model)
            ctx.outer_modes[setting] = "batched" if batched else "loop"
        runners[setting] = fit_runner(model, dataset)
    names = {setting: setting.label() for setting in settings}
    timed = interleaved(
        {names[s]: run for s, run in runners.items()},
        ctx.args.repeats,
        warmup_limit=ctx.args.xla_limit,
        label="census3 epochs",
    )
    for setting in settings:
        ctx.epoch_times[setting] = timed[names[setting]]
