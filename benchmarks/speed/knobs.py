"""Section 2: steps per execution, XLA and MAML outer passes on census3."""

import math

from benchmarks.speed.census import (
    CensusSetting,
    default_settings,
    knob_settings,
    measure_census_epochs,
)
from benchmarks.speed.common import TRAININGS


def section_knobs(ctx):
    """Section 2: steps per execution, XLA and MAML outer passes on census3."""
    spe_values = ctx.args.spe
    defaults = default_settings(ctx)
    measure_census_epochs(ctx, list(defaults.values()) + knob_settings(spe_values))
    steps = ctx.census_steps
    print("## 2. census3: steps_per_execution, XLA, MAML-MTL outer passes\n")
    print(
        "Same model, data and epochs as section 1. `x default`: the median "
        "epoch with every knob at its default (section 1) divided by this one (> 1 is "
        "faster). Warm-up: the first epoch, tracing and XLA compiling "
        "included. Outer: how MAML-MTL runs its K outer passes, `auto` "
        "followed by what it picks here; batched under XLA is not run (about "
        "6 s per step in RESULTS.md, hence `auto` loops under XLA).\n"
    )
    print(
        "| training | steps/execution | XLA | outer | warm-up s | median epoch s "
        "| ms/step | x default |"
    )
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for setting in knob_settings(spe_values):
        samples = ctx.epoch_times[setting]
        base = ctx.epoch_times[defaults[setting.training]].median
        outer = "n/a"
        if TRAININGS[setting.training] is not None:
            outer = setting.outer
            if outer == "auto":
                outer = f"auto ({ctx.outer_modes[setting]})"
        if samples.skipped:
            timing = f"skipped: {samples.skipped} | n/a | n/a"
        else:
            timing = (
                f"{samples.median:.3f} | {samples.median / steps * 1e3:.2f} | "
                f"{base / samples.median:.2f}"
            )
        print(
            f"| {setting.training} | {setting.steps_per_execution} | "
            f"{'on' if setting.jit_compile else 'off'} | {outer} | "
            f"{samples.warmup:.1f} | {timing} |"
        )
    print("\nWhat each knob wins (speed-up over the defaults, > 1 is faster):\n")
    print(
        "| training | best steps/execution, no XLA | XLA, steps/execution 1 "
        "| best setting |"
    )
    print("|---|---|---|---|")
    for name in TRAININGS:
        base = ctx.epoch_times[defaults[name]].median
        timed = {
            s: t.median
            for s, t in ctx.epoch_times.items()
            if s.training == name and t.values and s.outer == "auto"
        }
        no_xla = {s: m for s, m in timed.items() if not s.jit_compile}
        if not no_xla or math.isnan(base):
            print(f"| {name} | not timed | not timed | not timed |")
            continue
        best_spe = min(no_xla, key=no_xla.get)
        xla = timed.get(CensusSetting(name, 1, True))
        best = min(timed, key=timed.get)
        xla_text = "not timed" if xla is None else f"{base / xla:.2f}"
        print(
            f"| {name} | {best_spe.steps_per_execution}: "
            f"{base / no_xla[best_spe]:.2f} | {xla_text} | "
            f"steps/execution {best.steps_per_execution}, XLA "
            f"{'on' if best.jit_compile else 'off'}: {base / timed[best]:.2f} |"
        )
    print()
    for name, order in TRAININGS.items():
        loop = ctx.epoch_times.get(CensusSetting(name, 1, False, "loop"))
        if order is not None and loop is not None and loop.values:
            auto = ctx.epoch_times[CensusSetting(name, 1)]
            print(
                f"{name}, no XLA, 1 step/execution: auto "
                f"({ctx.outer_modes[CensusSetting(name, 1)]}) "
                f"/ looped outer passes = {auto.median / loop.median:.2f}  "
            )
    print()
