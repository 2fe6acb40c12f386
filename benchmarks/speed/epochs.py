"""Section 1: census3 epoch times of joint and MAML-MTL training."""

from benchmarks.speed.census import (
    default_settings,
    measure_census_epochs,
)
from benchmarks.speed.common import BATCH, TRAININGS, yes

EPOCH_TARGETS = {"joint": 0.35, "MAML-MTL order 1": 0.6, "MAML-MTL order 2": 1.0}


def section_epochs(ctx):
    """Section 1: census3 epoch times of joint and MAML-MTL training."""
    settings = default_settings(ctx)
    measure_census_epochs(ctx, list(settings.values()))
    steps = ctx.census_steps
    print("## 1. census3 reference configuration: training epoch\n")
    print(
        "MMoEEx, 12 dense experts of 4 units, towers of 4 units, alpha 0.75 "
        f"exclusivity, AdamW lr 1e-4 weight decay 0.01, batch {BATCH}; "
        f'`data.shuffled_epochs("train", {BATCH}, seed=0, epochs=1)`, {steps} steps per '
        "epoch (the whole train split); the default settings: "
        f"steps_per_execution {settings['joint'].steps_per_execution} "
        '(`"auto"`), no XLA, default '
        "`MAMLMTL()` apart from `order`. Train loop only (no validation); "
        f"median of {ctx.args.repeats} epochs after one warm-up epoch.\n"
    )
    print(
        "| training | warm-up s | median epoch s | range s | ms/step | x joint "
        "| target s | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    joint = ctx.epoch_times[settings["joint"]].median
    for name in TRAININGS:
        samples = ctx.epoch_times[settings[name]]
        target = EPOCH_TARGETS[name]
        met = samples.median <= target
        print(
            f"| {name} | {samples.warmup:.1f} | {samples.median:.3f} | "
            f"{samples.spread} | {samples.median / steps * 1e3:.2f} | "
            f"{samples.median / joint:.2f} | <= {target} | {yes(met)} |"
        )
        ctx.check(
            f"census3 epoch, {name}", f"{samples.median:.3f} s", f"<= {target} s", met
        )
    bound = len(ctx.census.tasks) + 1
    print(
        f"\nMAML-MTL step / joint step (epoch times of the same {steps} steps) "
        f"against the (K + 1) = {bound} bound, K = {bound - 1} tasks:\n"
    )
    print("| training | x joint | bound | within |")
    print("|---|---:|---:|---|")
    for name, order in TRAININGS.items():
        if order is None:
            continue
        ratio = ctx.epoch_times[settings[name]].median / joint
        print(f"| {name} | {ratio:.2f} | {bound} | {yes(ratio <= bound)} |")
        ctx.check(f"{name} / joint step", f"{ratio:.2f}", f"<= {bound}", ratio <= bound)
    print()
