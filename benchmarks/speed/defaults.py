"""Section 9: census3 with the new defaults against the old ones."""

import dataclasses
import statistics
import time

from benchmarks.speed.census import (
    CensusSetting,
    auto_steps,
    census_config,
    measure_census_epochs,
)
from benchmarks.speed.common import TRAININGS, log
from mmoeex_tf import runs

# Run settings compared: name -> RunConfig changes ("auto": resolved by the
# run). The old defaults: one step per call, no XLA.
RUN_SETTINGS = {
    "old defaults": {"steps_per_execution": 1, "jit_compile": False},
    "new defaults": {},
    "new defaults + XLA": {"jit_compile": True},
}


def run_config(ctx, training, setting):
    """The census3 run config of a training and a `RUN_SETTINGS` name."""
    config = census_config(CensusSetting(training), epochs=ctx.args.train_epochs)
    defaults = {
        field.name: field.default
        for field in dataclasses.fields(config)
        if field.name in ("steps_per_execution", "jit_compile")
    }
    return dataclasses.replace(config, **{**defaults, **RUN_SETTINGS[setting]})


def epoch_settings(ctx):
    """The census3 epoch settings of this section: old, new, new with XLA."""
    settings = []
    for training in TRAININGS:
        spe = auto_steps(ctx, training)
        settings += [
            CensusSetting(training),
            CensusSetting(training, spe),
            CensusSetting(training, spe, True),
        ]
    return settings


def timed_run(ctx, config):
    """Seconds of a whole `runs.train` of a fresh model, compiling included."""
    data = ctx.census
    start = time.perf_counter()
    model = runs.build_model(
        config, data.tasks, data.x["train"].shape[1:], len(data.x["train"])
    )
    result = runs.train(model, data, config, verbose=0)
    return time.perf_counter() - start, result.best_score


def measure_runs(ctx):
    """Whole-run seconds per (training, setting), rounds interleaved."""
    seconds, scores = {}, {}
    for round_ in range(ctx.args.train_rounds):
        for training in TRAININGS:
            for setting in RUN_SETTINGS:
                log(f"defaults: round {round_ + 1}, {training}, {setting}")
                config = run_config(ctx, training, setting)
                took, score = timed_run(ctx, config)
                seconds.setdefault((training, setting), []).append(took)
                scores[(training, setting)] = score
    return seconds, scores


def section_defaults(ctx):
    """Section 9: census3 epochs and whole runs, new defaults against old."""
    measure_census_epochs(ctx, epoch_settings(ctx))
    seconds, scores = measure_runs(ctx)
    steps = ctx.census_steps
    print("## 9. census3: the new defaults against the old\n")
    print(
        "Old defaults: `steps_per_execution=1`, no XLA. New defaults: "
        '`steps_per_execution="auto"` (column `s/e`: the largest divisor of '
        f"the {steps} steps per epoch up to 16), `jit_compile` as `RunConfig` "
        "has it "
        f"({'on' if run_config(ctx, 'joint', 'new defaults').jit_compile else 'off'})"
        "; XLA on top of them for comparison. Epochs as in section 1 (median of "
        f"{ctx.args.repeats} after a warm-up epoch). `x old`: old / this (> 1 "
        "is faster).\n"
    )
    print("| training | setting | s/e | warm-up s | median epoch s | ms/step | x old |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for training in TRAININGS:
        spe = auto_steps(ctx, training)
        old = ctx.epoch_times[CensusSetting(training)].median
        rows = {
            "old defaults": CensusSetting(training),
            "new defaults": CensusSetting(training, spe),
            "new defaults + XLA": CensusSetting(training, spe, True),
        }
        for name, setting in rows.items():
            samples = ctx.epoch_times[setting]
            print(
                f"| {training} | {name} | {setting.steps_per_execution} | "
                f"{samples.warmup:.1f} | "
                f"{samples.median:.3f} | {samples.median / steps * 1e3:.2f} | "
                f"{old / samples.median:.2f} |"
            )
    epochs = ctx.args.train_epochs
    print(
        f"\nWhole {epochs}-epoch runs through `mmoeex_tf.runs.train` (as "
        "`mmoeex train` trains: a fresh model built and compiled, the label "
        "statistics, the shuffled pipeline, validation after every epoch, the "
        "best weights), seconds from building the model to the end; "
        f"{ctx.args.train_rounds} interleaved round(s), each value one run; "
        "`x old`: median old / median this. Score: the best validation score "
        "(last round).\n"
    )
    print("| training | setting | seconds | x old | best val score |")
    print("|---|---|---|---:|---:|")
    for training in TRAININGS:
        old = statistics.median(seconds[(training, "old defaults")])
        for setting in RUN_SETTINGS:
            values = seconds[(training, setting)]
            print(
                f"| {training} | {setting} | "
                f"{', '.join(f'{v:.1f}' for v in values)} | "
                f"{old / statistics.median(values):.2f} | "
                f"{scores[(training, setting)]:.4f} |"
            )
    print()
