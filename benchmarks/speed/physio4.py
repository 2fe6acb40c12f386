"""Section 5 (`physio`): recurrent, convolutional and summary experts on physio4."""

from pathlib import Path

import keras
import tensorflow as tf

import mmoeex_tf as mt
from benchmarks.speed.common import fit_runner, interleaved, log
from mmoeex_tf.datasets import load_physio4
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.training.maml import MAMLMTL

PHYSIO_BATCH = 128


def physio_model(data, experts, optimization=None):
    """physio4's MMoEEx as the reproduction builds it (`benchmarks/reproduce.py`)."""
    keras.utils.set_random_seed(0)
    model = mt.MMoEExModel(
        data.tasks,
        experts,
        alpha=0.5,
        mode="exclusivity",
        seed=0,
        tower_units=[16],
        optimization=optimization,
    )
    model.build((None, *data.x["train"].shape[1:]))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4))
    return model


def physio_variants(gpu):
    """Name -> (experts factory, optimization factory) of section 5."""

    def recurrent(cell, **options):
        return lambda: mt.RecurrentExperts(6, 16, cell=cell, seed=0, **options)

    def summary():
        return mt.SummaryExperts(6, 16, bins=8, seed=0)

    variants = {
        "GRU, joint": (recurrent("gru"), lambda: None),
        "GRU, separate layers, joint": (recurrent("gru", grouped=False), lambda: None),
        "GRU, MAML-MTL order 1": (
            recurrent("gru"),
            lambda: MAMLMTL(order=1, split_ratio=None),
        ),
        "GRU, MAML-MTL order 2": (
            recurrent("gru"),
            lambda: MAMLMTL(order=2, split_ratio=None),
        ),
        "LSTM, joint": (recurrent("lstm"), lambda: None),
        "LSTM, separate layers, joint": (
            recurrent("lstm", grouped=False),
            lambda: None,
        ),
        "SimpleRNN, joint": (recurrent("simple_rnn"), lambda: None),
        "Conv1D (causal, kernel 3), joint": (
            lambda: mt.Conv1DExperts(6, 16, padding="causal", seed=0),
            lambda: None,
        ),
        "Summary (8 bins), joint": (summary, lambda: None),
        "Summary (8 bins), MAML-MTL order 2": (
            summary,
            lambda: MAMLMTL(order=2, split_ratio=None),
        ),
    }
    if gpu:
        for cell, name in (("gru", "GRU"), ("lstm", "LSTM")):
            variants[f"{name}, separate layers, joint, use_cudnn=False"] = (
                recurrent(cell, grouped=False, use_cudnn=False),
                lambda: None,
            )
    return variants


def section_physio(ctx):
    """Section 5: recurrent, convolutional and summary experts on physio4."""
    print("## 5. physio4: recurrent experts\n")
    path = Path(ctx.args.physio_path)
    if not path.exists():
        print(
            f"Skipped: the PhysioNet 2012 data are not at `{path.name}` "
            "(`--physio-path`, the folder `load_physio4` reads).\n"
        )
        return
    try:
        log("loading physio4")
        data = load_physio4(str(path))
    except MMoEExError as err:
        print(f"Skipped: physio4 could not be loaded: {err}\n")
        return
    gpu = bool(tf.config.list_physical_devices("GPU"))
    steps = ctx.args.physio_steps
    x, y = data.split("train")
    rows = steps * PHYSIO_BATCH
    dataset = (
        tf.data.Dataset.from_tensor_slices(
            (x[:rows], {k: v[:rows] for k, v in y.items()})
        )
        .batch(PHYSIO_BATCH)
        .cache()
    )
    runners = {}
    for name, (experts, optimization) in physio_variants(gpu).items():
        model = physio_model(data, experts(), optimization())
        runners[name] = fit_runner(model, dataset, per_step=True)
    timed = interleaved(runners, ctx.args.repeats, label="physio4 steps")
    shape = " x ".join(str(d) for d in x.shape[1:])
    print(
        f"Examples {shape} (steps x features), {len(data.tasks)} tasks "
        f"({', '.join(task.name for task in data.tasks)}); "
        "6 experts of 16 units (one grouped recurrence per kind; `separate "
        "layers`: `grouped=False`, one Keras layer per expert, as before "
        "grouping; summary experts: `SummaryExperts`, 8 bins, at their "
        "default edges), alpha 0.5 exclusivity, towers of 16, AdamW lr "
        f"1e-3 weight decay 1e-4, batch {PHYSIO_BATCH}, MAML-MTL with "
        "`split_ratio=None` (the reproduction's settings). Median of "
        f"{ctx.args.repeats} rounds x {steps} train step{'s' * (steps != 1)} "
        "(the first "
        f"{rows} train stays, cached) after a warm-up round; warm-up = the "
        "first round, tracing included.\n"
    )
    print("| experts, training | warm-up s | median step ms | range ms | x GRU joint |")
    print("|---|---:|---:|---:|---:|")
    base = timed["GRU, joint"].median
    for name, samples in timed.items():
        spread = (
            f"{min(samples.values) * 1e3:.1f}-{max(samples.values) * 1e3:.1f}"
            if samples.values
            else "n/a"
        )
        print(
            f"| {name} | {samples.warmup:.1f} | {samples.median * 1e3:.1f} | "
            f"{spread} | {samples.median / base:.2f} |"
        )
    speedup = timed["GRU, separate layers, joint"].median / base
    print(f"\nGRU joint step, separate layers / grouped = {speedup:.2f}", end="")
    ctx.check(
        "physio4 GRU joint step, separate / grouped",
        f"{speedup:.2f}",
        ">= 2",
        speedup >= 2,
    )
    bound = len(data.tasks) + 1
    for order in (1, 2):
        ratio = timed[f"GRU, MAML-MTL order {order}"].median / base
        print(
            f"\nGRU MAML-MTL order {order} / joint step = {ratio:.2f} "
            f"(the (K + 1) = {bound} bound: {'within' if ratio <= bound else 'above'})",
            end="",
        )
    ctx.check(
        "physio4 GRU MAML-MTL order 2 / joint step",
        f"{ratio:.2f}",
        f"<= {bound}",
        ratio <= bound,
    )
    summary_ratio = (
        timed["Summary (8 bins), MAML-MTL order 2"].median
        / timed["Summary (8 bins), joint"].median
    )
    print(f"\nSummary experts MAML-MTL order 2 / joint step = {summary_ratio:.2f}")
    kernels = {
        name.removesuffix(", joint"): timed[name].median
        for name in timed
        if name.endswith(", joint")
    }
    best = min(kernels, key=kernels.get)
    recurrent = {
        k: v for k, v in kernels.items() if not k.startswith(("Conv1D", "Summary"))
    }
    best_recurrent = min(recurrent, key=recurrent.get)
    print(
        f"\n\nFastest joint experts on this device: {best} "
        f"({kernels[best] * 1e3:.1f} ms/step); fastest recurrent kernel: "
        f"{best_recurrent} ({recurrent[best_recurrent] * 1e3:.1f} ms/step)."
    )
    if gpu:
        print(
            "use_cudnn: the `use_cudnn=False` rows run the generic kernel; "
            "compare them with the separate-layer `auto` rows (cuDNN where "
            "eligible). Grouped experts and MAMLMTL(order=2) never use cuDNN "
            "(cuDNN kernels have no second derivative).\n"
        )
    else:
        print(
            "use_cudnn: not measured, no GPU here. Keras picks the cuDNN "
            "kernel only on GPU, so on CPU `use_cudnn` changes nothing; "
            "MAMLMTL(order=2) switches `auto` to the generic kernel anyway "
            "(cuDNN kernels have no second derivative).\n"
        )
