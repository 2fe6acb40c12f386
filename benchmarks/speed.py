"""Speed and memory of mmoeex_tf: every speed figure of BENCHMARKS.md in one run.

Prints Markdown tables, headed by the machine (CPUs, platform, TensorFlow and
Keras versions) and the load average at start and end, since machines are
shared and noisy: compare ratios from one run, and absolute medians only on
the same machine. Sections (all by default):

1. `epochs`: census3 reference configuration (MMoEEx, 12 dense experts of 4
   units, towers of 4 units, alpha 0.75 exclusivity, batch 512, AdamW lr 1e-4
   weight decay 0.01), fed by the library's pipeline
   `data.shuffled_epochs("train", 512, seed=0, epochs=1)` as `mmoeex train`
   uses it (117 steps, the whole train split): median wall time of one training epoch (train loop only) after a
   warm-up epoch, for joint training and MAML-MTL order 1 and 2 (default
   `MAMLMTL()` apart from `order`), against the targets (0.35, 0.6 and 1.0 s),
   and MAML step / joint step against the (K + 1) = 4 bound of K = 3 tasks.
2. `knobs`: the same epochs with `steps_per_execution` 1 and 16 (`--spe`) and
   `jit_compile` off and on, plus MAML-MTL's outer passes looped instead of
   batched (the default without XLA for dense experts). Batched outer passes
   under XLA are not run: RESULTS.md measured them at about 6 s per step,
   which is why `outer="auto"` loops under XLA. A setting whose warm-up
   epoch (tracing and compiling) takes longer than `--xla-limit` seconds is
   not timed further.
3. `pipeline`: joint step time fed by the library's pipeline against
   batches already in memory (a cached, materialised `tf.data` of pre-made
   batches; and the compiled train step called in a Python loop on constant
   tensors), and whether the pipeline costs less than 10 %.
4. `export`: the SavedModel of `mmoeex_tf.integrations.export.export_saved_model`, loaded
   with `tf.saved_model.load`, its `serving_default` signature called on CPU:
   batch-1 latency (median, p90, p99; target < 2 ms) and batch-512 throughput.
5. `physio`: physio4 (48 steps, 79 features) as the reproduction runs it
   (6 experts of 16 units, alpha 0.5, towers of 16, AdamW lr 1e-3 weight
   decay 1e-4, batch 128; MAML-MTL with `split_ratio=None`): median train
   step of joint and MAML-MTL order 1 and 2 with GRU experts, and joint steps
   with LSTM, GRU, SimpleRNN and (causal) Conv1D experts. Skipped, with a
   message, when the PhysioNet 2012 data are not found (`--physio-path`).
6. `memory`: each training run in a fresh process: a full census3 `fit` as
   `mmoeex train` runs it (shuffled pipeline plus validation, `--memory-epochs`
   epochs): resident memory after every epoch (from /proc), its growth from
   epoch 2 to the last, peak RSS (`VmHWM`, and `ru_maxrss`), median epoch time with
   validation, and how often the train and test functions were traced
   (Keras' `tf.function`s and `MAMLMTL.trace_count`), to show no retracing.
7. `determinism`: the fit of section 6 with and without TensorFlow's op
   determinism (`TF_DETERMINISTIC_OPS=1`), fresh processes, interleaved.
8. `profile`: where a census3 step's time goes: the number of graph nodes
   (ops the executor schedules) of the compiled train step and of the
   forward pass, for joint and MAML-MTL training, against their times on a
   constant batch: microseconds per node.

Sections 1 and 2 share their measurements when run together. Variants are
interleaved (every round runs each variant once), so that changes in the
machine's load hit them alike. Progress goes to stderr, the tables to stdout.

Usage:
    python benchmarks/speed.py                    # everything, 8-15 min on 2 cores
    python benchmarks/speed.py --quick            # smoke run, 5-10 min on 2 cores
    python benchmarks/speed.py --sections epochs knobs --repeats 9
    python benchmarks/speed.py --sections 4 6 --memory-epochs 20
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import mmoeex_tf as mt  # noqa: E402
from mmoeex_tf import runs  # noqa: E402
from mmoeex_tf.datasets import load_census3, load_physio4  # noqa: E402
from mmoeex_tf.errors import MMoEExError  # noqa: E402
from mmoeex_tf.integrations import export
from mmoeex_tf.runs.config import RunConfig  # noqa: E402
from mmoeex_tf.training.maml import MAMLMTL  # noqa: E402

SECTIONS = (
    "epochs",
    "knobs",
    "pipeline",
    "export",
    "physio",
    "memory",
    "determinism",
    "profile",
)
PHYSIO_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "physionet2012"
)
BATCH = 512
PHYSIO_BATCH = 128
# MAML-MTL order per training variant (None: joint training).
TRAININGS = {"joint": None, "MAML-MTL order 1": 1, "MAML-MTL order 2": 2}
EPOCH_TARGETS = {"joint": 0.35, "MAML-MTL order 1": 0.6, "MAML-MTL order 2": 1.0}
LATENCY_TARGET_MS = 2.0
PIPELINE_TOLERANCE = 0.10
MEMORY_MARK = "MEMORY_RESULT "
# Keras' tf.functions (TensorFlow backend): the step, and the loop over steps.
TRACED_NAMES = {"one_step_on_data": "step", "multi_step_on_iterator": "loop"}


def log(message):
    """Progress on stderr, so that stdout holds the tables only."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- timing ---


class Timer(keras.callbacks.Callback):
    """Records the wall time of every epoch and every execution of a `fit`.

    With `steps_per_execution=1` an execution is one train step.
    """

    def __init__(self):
        super().__init__()
        self.epochs, self.steps = [], []
        self._epoch = self._step = None

    def reset(self):
        """Forgets the recorded times."""
        self.epochs, self.steps = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self._epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self._step = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(time.perf_counter() - self._step)


@dataclasses.dataclass
class Samples:
    """Timings of one variant: its warm-up and the timed samples, in seconds.

    Attributes:
        warmup: Duration of the warm-up round (tracing and compiling
            included).
        values: The timed samples.
        skipped: Why the variant was not timed, if it was not.
    """

    warmup: float
    values: list = dataclasses.field(default_factory=list)
    skipped: str | None = None

    @property
    def median(self):
        """Median of the samples (NaN without samples)."""
        return statistics.median(self.values) if self.values else math.nan

    @property
    def spread(self):
        """`min-max` of the samples, as text."""
        if not self.values:
            return "n/a"
        return f"{min(self.values):.3f}-{max(self.values):.3f}"


def fit_runner(model, dataset, per_step=False):
    """A function running one `fit` epoch and returning its timings.

    Args:
        model: A compiled model.
        dataset: The `tf.data.Dataset` of one epoch.
        per_step: Return every execution's time instead of the epoch's.

    Returns:
        A function of no argument returning a list of seconds.
    """
    timer = Timer()

    def run():
        timer.reset()
        model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return list(timer.steps if per_step else timer.epochs)

    return run


def interleaved(runners, repeats, warmup_limit=None, label=""):
    """Times several variants, one round after another.

    Every variant first runs one warm-up round; then each of the `repeats`
    rounds runs every variant once in turn, so that a change in the
    machine's load affects all variants alike.

    Args:
        runners: Dict name -> function of no argument returning a list of
            durations (one round's samples).
        repeats: Number of timed rounds.
        warmup_limit: Variants whose warm-up takes longer (seconds) are not
            timed further.
        label: What is measured, for the progress messages.

    Returns:
        Dict name -> `Samples`.
    """
    results = {}
    for name, run in runners.items():
        log(f"{label}: warm-up of {name}")
        warmup = sum(run())
        results[name] = Samples(warmup)
        if warmup_limit is not None and warmup > warmup_limit:
            results[
                name
            ].skipped = f"warm-up {warmup:.0f} s > limit {warmup_limit:.0f} s"
    for round_ in range(repeats):
        log(f"{label}: round {round_ + 1} of {repeats}")
        for name, run in runners.items():
            if results[name].skipped is None:
                results[name].values.extend(run())
    return results


def traced_functions(function):
    """The `tf.function`s behind a Keras train or test function.

    Keras wraps its compiled step in Python closures; this walks them.

    Args:
        function: `model.train_function` or `model.test_function`.

    Returns:
        Dict function name -> how many times it was traced.
    """
    found, stack, seen = {}, [function], set()
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if hasattr(item, "experimental_get_tracing_count"):
            found[item.name] = item.experimental_get_tracing_count()
            stack.append(getattr(item, "python_function", None))
            continue
        for cell in getattr(item, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value):
                stack.append(value)
        stack.append(getattr(item, "__wrapped__", None))
    return found


def trace_summary(model):
    """How often the model's train and test steps were traced, as text."""
    parts = []
    for kind in ("train", "test"):
        counts = traced_functions(getattr(model, f"{kind}_function", None))
        if counts:
            named = [f"{TRACED_NAMES.get(n, n)} {c}" for n, c in counts.items()]
            parts.append(f"{kind}: " + ", ".join(sorted(named)))
    trace_count = getattr(model.optimization, "trace_count", None)
    if trace_count is not None:
        parts.append(f"MAML {trace_count}")
    return ", ".join(parts) or "n/a"


# --------------------------------------------------------------- machine ---


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    """The 1, 5 and 15 minute load averages, as text."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def machine_info():
    """Markdown lines naming the machine and the software."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    gpus = tf.config.list_physical_devices("GPU")
    return [
        f"- Command: `{' '.join(['python benchmarks/speed.py', *sys.argv[1:]])}`",
        f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs ({usable} usable), "
        f"{platform.machine()}",
        f"- Platform: {platform.platform()}, Python {platform.python_version()}",
        f"- TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy "
        f"{np.__version__}, mmoeex_tf {mt.__version__}",
        f"- GPUs: {', '.join(gpu.name for gpu in gpus) if gpus else 'none (CPU only)'}",
        f"- Load average at start (1, 5, 15 min): {load_average()}",
    ]


# ---------------------------------------------------------------- census ---


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
    keras.utils.set_random_seed(0)
    config = census_config(setting)
    return runs.build_model(config, data.tasks, data.x["train"].shape[1:])


def default_settings():
    """The three trainings with every knob at its default."""
    return [CensusSetting(name) for name in TRAININGS]


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


def section_epochs(ctx):
    """Section 1: census3 epoch times of joint and MAML-MTL training."""
    measure_census_epochs(ctx, default_settings())
    steps = ctx.census_steps
    print("## 1. census3 reference configuration: training epoch\n")
    print(
        "MMoEEx, 12 dense experts of 4 units, towers of 4 units, alpha 0.75 "
        f"exclusivity, AdamW lr 1e-4 weight decay 0.01, batch {BATCH}; "
        f'`data.shuffled_epochs("train", {BATCH}, seed=0, epochs=1)`, {steps} steps per '
        "epoch (the whole train split); steps_per_execution 1, no XLA, default "
        "`MAMLMTL()` apart from `order`. Train loop only (no validation); "
        f"median of {ctx.args.repeats} epochs after one warm-up epoch.\n"
    )
    print(
        "| training | warm-up s | median epoch s | range s | ms/step | x joint "
        "| target s | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    joint = ctx.epoch_times[CensusSetting("joint")].median
    for name in TRAININGS:
        samples = ctx.epoch_times[CensusSetting(name)]
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
        ratio = ctx.epoch_times[CensusSetting(name)].median / joint
        print(f"| {name} | {ratio:.2f} | {bound} | {yes(ratio <= bound)} |")
        ctx.check(f"{name} / joint step", f"{ratio:.2f}", f"<= {bound}", ratio <= bound)
    print()


def section_knobs(ctx):
    """Section 2: steps per execution, XLA and MAML outer passes on census3."""
    spe_values = ctx.args.spe
    measure_census_epochs(ctx, default_settings() + knob_settings(spe_values))
    steps = ctx.census_steps
    print("## 2. census3: steps_per_execution, XLA, MAML-MTL outer passes\n")
    print(
        "Same model, data and epochs as section 1. `x default`: the median "
        "epoch with every knob at its default divided by this one (> 1 is "
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
        base = ctx.epoch_times[CensusSetting(setting.training)].median
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
        base = ctx.epoch_times[CensusSetting(name)].median
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
            auto = ctx.epoch_times[CensusSetting(name)]
            print(
                f"{name}, no XLA: auto ({ctx.outer_modes[CensusSetting(name)]}) "
                f"/ looped outer passes = {auto.median / loop.median:.2f}  "
            )
    print()


# -------------------------------------------------------------- pipeline ---


def section_pipeline(ctx):
    """Section 3: the library's input pipeline against in-memory batches."""
    data = ctx.census
    x, y = data.split("train")
    model = census_model(data, CensusSetting("joint"))
    library = data.shuffled_epochs("train", BATCH, seed=0, epochs=1)[0]
    unshuffled = data.tf_dataset("train", BATCH, shuffle=False)
    prebatched = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(BATCH)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in prebatched:  # materialise the cache before any timing
        pass
    batches = [
        (
            tf.constant(x[start : start + BATCH]),
            {name: tf.constant(v[start : start + BATCH]) for name, v in y.items()},
        )
        for start in range(0, len(x), BATCH)
    ]
    train_step = tf.function(model.train_step, reduce_retracing=True)

    def loop_epoch():
        model.reset_metrics()
        start = time.perf_counter()
        for batch in batches:
            logs = train_step(batch)
        float(logs["loss"])
        return [time.perf_counter() - start]

    shuffled = "library pipeline, shuffled (what `mmoeex train` uses)"
    in_order = "library pipeline, shuffle=False"
    premade = "pre-made batches, cached tf.data (materialised)"
    runners = {
        shuffled: fit_runner(model, library),
        in_order: fit_runner(model, unshuffled),
        premade: fit_runner(model, prebatched),
        "compiled train_step on constant tensors, Python loop (no fit)": loop_epoch,
    }
    timed = interleaved(runners, ctx.args.repeats, label="input pipeline")
    steps = ctx.census_steps
    reference = timed[premade].median
    print("## 3. census3: input pipeline\n")
    print(
        f"Joint training, reference configuration, batch {BATCH}, one model fed "
        f"in turn by each input ({steps} steps per epoch); median of "
        f"{ctx.args.repeats} epochs after a warm-up epoch. The first three "
        "run `fit`; the last calls `tf.function(model.train_step)` on batches "
        "already converted to tensors.\n"
    )
    print("| input | median epoch s | ms/step | x pre-made batches |")
    print("|---|---:|---:|---:|")
    for name, samples in timed.items():
        print(
            f"| {name} | {samples.median:.3f} | {samples.median / steps * 1e3:.2f} "
            f"| {samples.median / reference:.2f} |"
        )
    ratio = timed[shuffled].median / reference
    within = ratio <= 1 + PIPELINE_TOLERANCE
    print(
        f"\nLibrary pipeline / pre-made batches = {ratio:.2f}: within "
        f"{PIPELINE_TOLERANCE:.0%}: {yes(within)}. Shuffled / unshuffled "
        f"library pipeline = {ratio * reference / timed[in_order].median:.2f}.\n"
    )
    ctx.check(
        "pipeline / pre-made batches, joint step",
        f"{ratio:.2f}",
        f"<= {1 + PIPELINE_TOLERANCE:.2f}",
        within,
    )


# ---------------------------------------------------------------- export ---


def call_times(function, features, warmup, calls):
    """Wall times (seconds) of `calls` calls of a signature, after warm-up."""
    for _ in range(warmup):
        function(features=features)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function(features=features)
        times.append(time.perf_counter() - start)
    return np.array(times)


def section_export(ctx):
    """Section 4: latency and throughput of the exported SavedModel."""
    data = ctx.census
    model = census_model(data, CensusSetting("joint"))
    x_test = data.x["test"]
    single = tf.constant(x_test[:1])
    full = tf.constant(x_test[:BATCH])
    with tempfile.TemporaryDirectory() as base_dir:
        log("exporting the SavedModel")
        start = time.perf_counter()
        path = export.export_saved_model(model, "census3", base_dir=base_dir)
        export_seconds = time.perf_counter() - start
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        start = time.perf_counter()
        loaded = tf.saved_model.load(str(path))
        load_seconds = time.perf_counter() - start
        serve = loaded.signatures[export.DEFAULT_SIGNATURE]
        outputs = serve(features=single)
        if sorted(outputs) != sorted(model.task_names):
            raise MMoEExError(f"Unexpected signature outputs {sorted(outputs)}.")
        log("timing batch-1 and batch-512 calls")
        one = call_times(serve, single, 50, ctx.args.latency_calls) * 1e3
        many = call_times(serve, full, 5, ctx.args.throughput_calls)
    print("## 4. Exported SavedModel on CPU (census3 reference configuration)\n")
    print(
        f"`export_saved_model` took {export_seconds:.1f} s ({size / 2**20:.2f} MiB "
        f"on disk), `tf.saved_model.load` {load_seconds:.1f} s. The "
        "`serving_default` signature is called on a float32 tensor made "
        f"beforehand; {ctx.args.latency_calls} batch-1 calls after 50 warm-up "
        f"calls, {ctx.args.throughput_calls} batch-{BATCH} calls after 5.\n"
    )
    median = float(np.median(one))
    print("| batch | median ms | p90 ms | p99 ms | rows/s (median) | target |")
    print("|---:|---:|---:|---:|---:|---|")
    print(
        f"| 1 | {median:.3f} | {np.percentile(one, 90):.3f} | "
        f"{np.percentile(one, 99):.3f} | {1e3 / median:,.0f} | "
        f"< {LATENCY_TARGET_MS} ms: {yes(median < LATENCY_TARGET_MS)} |"
    )
    many_median = float(np.median(many))
    print(
        f"| {BATCH} | {many_median * 1e3:.3f} | {np.percentile(many, 90) * 1e3:.3f} "
        f"| {np.percentile(many, 99) * 1e3:.3f} | {BATCH / many_median:,.0f} | |"
    )
    print()
    ctx.check(
        "SavedModel batch-1 latency (median)",
        f"{median:.3f} ms",
        f"< {LATENCY_TARGET_MS} ms",
        median < LATENCY_TARGET_MS,
    )


# ---------------------------------------------------------------- physio ---


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

    variants = {
        "GRU, joint": (recurrent("gru"), lambda: None),
        "GRU, MAML-MTL order 1": (
            recurrent("gru"),
            lambda: MAMLMTL(order=1, split_ratio=None),
        ),
        "GRU, MAML-MTL order 2": (
            recurrent("gru"),
            lambda: MAMLMTL(order=2, split_ratio=None),
        ),
        "LSTM, joint": (recurrent("lstm"), lambda: None),
        "SimpleRNN, joint": (recurrent("simple_rnn"), lambda: None),
        "Conv1D (causal, kernel 3), joint": (
            lambda: mt.Conv1DExperts(6, 16, padding="causal", seed=0),
            lambda: None,
        ),
    }
    if gpu:
        for cell, name in (("gru", "GRU"), ("lstm", "LSTM")):
            variants[f"{name}, joint, use_cudnn=False"] = (
                recurrent(cell, use_cudnn=False),
                lambda: None,
            )
    return variants


def section_physio(ctx):
    """Section 5: recurrent and convolutional experts on physio4."""
    print("## 5. physio4: recurrent experts\n")
    path = Path(ctx.args.physio_path)
    if not path.exists():
        print(
            f"Skipped: the PhysioNet 2012 data are not at `{path.name}` "
            "(`--physio-path`; see BENCHMARKS.md, physio4).\n"
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
        "6 experts of 16 units, alpha 0.5 exclusivity, towers of 16, AdamW lr "
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
    bound = len(data.tasks) + 1
    for order in (1, 2):
        ratio = timed[f"GRU, MAML-MTL order {order}"].median / base
        print(
            f"\nGRU MAML-MTL order {order} / joint step = {ratio:.2f} "
            f"(the (K + 1) = {bound} bound: {'within' if ratio <= bound else 'above'})",
            end="",
        )
    kernels = {
        name.removesuffix(", joint"): timed[name].median
        for name in timed
        if name.endswith(", joint")
    }
    best = min(kernels, key=kernels.get)
    recurrent = {k: v for k, v in kernels.items() if not k.startswith("Conv1D")}
    best_recurrent = min(recurrent, key=recurrent.get)
    print(
        f"\n\nFastest joint experts on this device: {best} "
        f"({kernels[best] * 1e3:.1f} ms/step); fastest recurrent kernel: "
        f"{best_recurrent} ({recurrent[best_recurrent] * 1e3:.1f} ms/step)."
    )
    if gpu:
        print(
            "use_cudnn: the `use_cudnn=False` rows run the generic kernel; "
            "compare them with the `auto` rows (cuDNN where eligible). "
            "MAMLMTL(order=2) always runs the generic kernel (cuDNN kernels "
            "have no second derivative).\n"
        )
    else:
        print(
            "use_cudnn: not measured, no GPU here. Keras picks the cuDNN "
            "kernel only on GPU, so on CPU `use_cudnn` changes nothing; "
            "MAMLMTL(order=2) switches `auto` to the generic kernel anyway "
            "(cuDNN kernels have no second derivative).\n"
        )


# ---------------------------------------------------------------- memory ---


def rss_mb():
    """Resident set size of this process now, in MiB (/proc, else psutil)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        pass
    try:
        import psutil
    except ImportError:
        return math.nan
    return psutil.Process().memory_info().rss / 2**20


def max_rss_mb():
    """`ru_maxrss` of this process, in MiB (KiB on Linux, bytes on macOS).

    On Linux a child's `ru_maxrss` starts from its parent's peak at the
    fork (the kernel carries it across fork and exec), so in a child it is
    the larger of the two.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_rss_mb():
    """Peak resident set size of this process's own memory, in MiB.

    `VmHWM` of /proc/self/status (reset by exec, so not inherited from the
    parent); `ru_maxrss` where there is no /proc.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return max_rss_mb()


class MemoryProbe(keras.callbacks.Callback):
    """Records RSS, epoch time and trace counts at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.rss, self.seconds, self.traces = [], [], []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.rss.append(rss_mb())
        self.traces.append(trace_summary(self.model))


def memory_child(training_name, epochs):
    """One full census3 `fit` in this (fresh) process; prints a JSON result."""
    data = load_census3()
    rss_loaded = rss_mb()
    model = census_model(data, CensusSetting(training_name))
    probe = MemoryProbe()
    config = census_config(CensusSetting(training_name), epochs)
    runs.train(model, data, config, callbacks=[probe], verbose=0)
    result = {
        "training": training_name,
        "rss_loaded": rss_loaded,
        "rss": probe.rss,
        "seconds": probe.seconds,
        "traces": probe.traces,
        "peak": peak_rss_mb(),
        "ru_maxrss": max_rss_mb(),
    }
    print(MEMORY_MARK + json.dumps(result), flush=True)


def run_child(training_name, epochs, environment=None):
    """Runs `memory_child` in a fresh process and returns its result.

    Args:
        training_name: A key of `TRAININGS`.
        epochs: Epochs of the fit.
        environment: Further environment variables of the process.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        training_name,
        "--memory-epochs",
        str(epochs),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(environment or {})},
    )
    lines = [
        line[len(MEMORY_MARK) :]
        for line in done.stdout.splitlines()
        if line.startswith(MEMORY_MARK)
    ]
    if done.returncode or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"run of {training_name} failed:\n{tail}")
    return json.loads(lines[-1])


def section_memory(ctx):
    """Section 6: RSS across a full `fit`, peak RSS and retracing."""
    epochs = ctx.args.memory_epochs
    results = []
    for name in TRAININGS:
        log(f"memory: {epochs}-epoch fit of {name} in a fresh process")
        results.append(run_child(name, epochs))
    print("## 6. Memory and retracing (census3, full `fit`)\n")
    print(
        f"Each training in a fresh process: census3 loaded, the reference model "
        f"built, then `runs.train` as `mmoeex train` runs it ({epochs} "
        f"epochs of the shuffled pipeline, batch {BATCH}, validation every "
        "epoch). RSS from /proc/self/statm at each epoch end; peak RSS after "
        "the fit from `VmHWM` in /proc/self/status (`ru_maxrss` where there is "
        "no /proc; on Linux a child's `ru_maxrss` also covers its parent's "
        "peak at the fork, so it is shown apart). Epoch time includes "
        "validation.\n"
    )
    last = f"epoch {epochs}"
    print(
        f"| training | RSS data loaded MiB | epoch 1 | epoch 2 | {last} "
        f"| growth epoch 2-{epochs} MiB | per epoch MiB | peak RSS MiB "
        "| ru_maxrss MiB | median epoch s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        rss = result["rss"]
        growth = rss[-1] - rss[1]
        per_epoch = growth / (len(rss) - 2)
        print(
            f"| {result['training']} | {result['rss_loaded']:.0f} | {rss[0]:.0f} | "
            f"{rss[1]:.0f} | {rss[-1]:.0f} | "
            f"{growth:+.1f} | {per_epoch:+.2f} | {result['peak']:.0f} | "
            f"{result['ru_maxrss']:.0f} | {statistics.median(result['seconds']):.2f} |"
        )
        ctx.check(
            f"RSS growth epoch 2-{epochs}, {result['training']}",
            f"{growth:+.1f} MiB",
            "none (reported)",
            None,
        )
    print(
        "\nTimes traced, after epoch 1 and after the last epoch (train and "
        "test: Keras' step function and its loop over steps; MAML: "
        "`MAMLMTL.trace_count`). "
        "Epoch 1 traces the full batches and the last, smaller one; equal "
        "counts mean no retracing afterwards.\n"
    )
    print(f"| training | after epoch 1 | after {last} | retraced |")
    print("|---|---|---|---|")
    for result in results:
        traces = result["traces"]
        retraced = traces[0] != traces[-1]
        print(
            f"| {result['training']} | {traces[0]} | {traces[-1]} | {yes(retraced)} |"
        )
        ctx.check(
            f"retracing after epoch 1, {result['training']}",
            "yes" if retraced else "no",
            "no",
            not retraced,
        )
    print()


def section_determinism(ctx):
    """Section 7: the cost of TensorFlow's op determinism on census3 epochs."""
    epochs = ctx.args.memory_epochs
    switch = {"TF_DETERMINISTIC_OPS": "1"}
    medians = {}
    for round_ in range(2):
        for name in ("joint", "MAML-MTL order 2"):
            for deterministic in (False, True):
                log(f"determinism: round {round_ + 1}, {name}, {deterministic}")
                result = run_child(name, epochs, switch if deterministic else None)
                key = (name, deterministic)
                medians.setdefault(key, []).append(statistics.median(result["seconds"]))
    print("## 7. census3: cost of op determinism\n")
    print(
        f"`mmoeex train`'s {epochs}-epoch fit (as in section 6) in fresh "
        "processes, with and without `TF_DETERMINISTIC_OPS=1` (the same "
        "switch as `tf.config.experimental.enable_op_determinism()`), two "
        "interleaved rounds; median epoch time with validation of each run.\n"
    )
    print("| training | default s | deterministic s | x default |")
    print("|---|---|---|---:|")
    for name in ("joint", "MAML-MTL order 2"):
        plain, fixed = medians[(name, False)], medians[(name, True)]
        ratio = statistics.median(fixed) / statistics.median(plain)
        print(
            f"| {name} | {', '.join(f'{v:.2f}' for v in plain)} "
            f"| {', '.join(f'{v:.2f}' for v in fixed)} | {ratio:.2f} |"
        )
    print()


# --------------------------------------------------------------- profile ---


def graph_size(function, *args):
    """Nodes of a `tf.function`'s graph for `args`, its function library included.

    Every node is one op the TensorFlow executor schedules per call (nodes
    inside loop bodies once per iteration).
    """
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def mean_call_time(function, argument, calls):
    """A runner timing `calls` calls of `function(argument)`.

    Returns:
        A function of no argument returning `[mean seconds per call]`, the
        last call's results fetched before the clock stops.
    """

    def run():
        start = time.perf_counter()
        for _ in range(calls):
            result = function(argument)
        for value in tf.nest.flatten(result):
            value.numpy()
        return [(time.perf_counter() - start) / calls]

    return run


def matmul_floor(features, weights, rows):
    """Seconds of one matmul doing a forward pass's multiply-adds.

    A dense model multiplies every row by each kernel weight once, so one
    `(rows, features) @ (features, weights / features)` product does the
    forward pass's arithmetic in the fewest ops.
    """
    inputs = tf.random.normal((rows, features))
    kernel = tf.random.normal((features, max(1, weights // features)))
    product = tf.function(lambda inputs: tf.matmul(inputs, kernel))
    run = mean_call_time(product, inputs, 100)
    run()
    return statistics.median(sum((run() for _ in range(5)), []))


def section_profile(ctx):
    """Section 8: where a census3 step's time goes: graph size per training."""
    data = ctx.census
    x, y = data.split("train")
    features = tf.constant(x[:BATCH])
    labels = {name: tf.constant(values[:BATCH]) for name, values in y.items()}
    rows = []
    for name in TRAININGS:
        model = census_model(data, CensusSetting(name))
        step = tf.function(model.train_step, reduce_retracing=True)
        ops = graph_size(step, (features, labels))
        forward = tf.function(lambda inputs, model=model: model(inputs))
        forward_ops = graph_size(forward, features)
        runners = {
            "step": mean_call_time(step, (features, labels), 20),
            "forward": mean_call_time(forward, features, 20),
        }
        timed = interleaved(runners, ctx.args.repeats, label=name)
        rows.append(
            (name, ops, timed["step"].median, forward_ops, timed["forward"].median)
        )
    weights = model.count_params()
    floor = matmul_floor(x.shape[1], weights, BATCH)
    print("## 8. census3: where a step's time goes (profile)\n")
    print(
        "Nodes of the compiled train step's graph (function library included: "
        "the ops the executor schedules) and of the inference forward pass, "
        f"batch {BATCH}, reference configuration; each called 20 times on one "
        f"constant batch per round (median of {ctx.args.repeats} rounds).\n"
    )
    print(
        "| training | step nodes | step ms | us per node | forward nodes | forward ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, ops, step_s, forward_ops, forward_s in rows:
        print(
            f"| {name} | {ops} | {step_s * 1e3:.2f} | {step_s * 1e6 / ops:.2f} "
            f"| {forward_ops} | {forward_s * 1e3:.2f} |"
        )
    flops = 2 * weights * BATCH
    print(
        f"\nArithmetic floor: the model has {weights:,} weights, so a forward "
        f"pass of {BATCH} rows is {flops / 1e6:.0f} MFLOP; one matmul doing "
        f"them takes {floor * 1e3:.2f} ms here ({flops / floor / 1e9:.0f} "
        "GFLOP/s). A joint step (forward and two backward products) needs at "
        f"least about {3 * floor * 1e3:.1f} ms, an epoch of "
        f"{ctx.census_steps} steps {3 * floor * ctx.census_steps:.2f} s; "
        "a MAML-MTL step adds K = 3 inner gradients and K outer passes, each "
        "with its backward pass.\n"
    )


# ------------------------------------------------------------------ main ---


def yes(flag):
    """`yes` or `no`."""
    return "yes" if flag else "no"


def print_summary(ctx):
    """The figures that have a target, met or not."""
    if not ctx.checks:
        return
    print("## Summary\n")
    print("| figure | value | target | met |")
    print("|---|---:|---|---|")
    for figure, value, target, met in ctx.checks:
        print(
            f"| {figure} | {value} | {target} | {'n/a' if met is None else yes(met)} |"
        )
    print()


def parse_sections(values):
    """Section names from names or numbers (1-8), in the canonical order."""
    chosen = set()
    for value in values:
        if value.isdigit() and 1 <= int(value) <= len(SECTIONS):
            chosen.add(SECTIONS[int(value) - 1])
        elif value in SECTIONS:
            chosen.add(value)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown section {value!r}; choose from {', '.join(SECTIONS)} or 1-8"
            )
    return [name for name in SECTIONS if name in chosen]


def parse_args(argv=None):
    """The command-line options; `--quick` lowers the repetition defaults."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        default=list(SECTIONS),
        metavar="NAME",
        help=f"sections to run, by name or number: {', '.join(SECTIONS)} (all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 repetitions, 3 memory epochs, fewer calls",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="timed rounds (epochs, physio4 rounds) after the warm-up (5; quick 2)",
    )
    parser.add_argument(
        "--spe",
        type=int,
        nargs="+",
        default=[1, 16],
        help="steps_per_execution values of section 2 (1 16)",
    )
    parser.add_argument(
        "--xla-limit",
        type=float,
        default=300.0,
        help="seconds; census3 settings warming up longer are not timed (300)",
    )
    parser.add_argument(
        "--latency-calls", type=int, help="batch-1 SavedModel calls (1000; quick 200)"
    )
    parser.add_argument(
        "--throughput-calls",
        type=int,
        help=f"batch-{BATCH} SavedModel calls (100; quick 20)",
    )
    parser.add_argument(
        "--physio-steps", type=int, help="physio4 train steps per round (2; quick 1)"
    )
    parser.add_argument(
        "--physio-path",
        default=str(PHYSIO_PATH),
        help="PhysioNet 2012 data folder (physionet2012 of the shared data)",
    )
    parser.add_argument(
        "--memory-epochs", type=int, help="epochs of the memory fits (10; quick 3)"
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sections = parse_sections(args.sections)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    defaults = {
        "repeats": (5, 2),
        "latency_calls": (1000, 200),
        "throughput_calls": (100, 20),
        "physio_steps": (2, 1),
        "memory_epochs": (10, 3),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.repeats < 1 or args.memory_epochs < 3:
        parser.error("--repeats must be at least 1 and --memory-epochs at least 3")
    if 1 not in args.spe:
        args.spe = [1, *args.spe]
    args.spe = sorted(set(args.spe))
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow warns when many models trace their steps in one process;
    # expected here, and the traces that matter are counted in section 6.
    tf.get_logger().setLevel("ERROR")
    if args.memory_child:
        memory_child(args.memory_child, args.memory_epochs)
        return
    start = time.perf_counter()
    ctx = Context(args)
    print("# mmoeex_tf speed benchmark\n")
    print("\n".join(machine_info()) + "\n")
    sections = {
        "epochs": section_epochs,
        "knobs": section_knobs,
        "pipeline": section_pipeline,
        "export": section_export,
        "physio": section_physio,
        "memory": section_memory,
        "determinism": section_determinism,
        "profile": section_profile,
    }
    if "epochs" in args.sections and "knobs" in args.sections:
        # One interleaved measurement serves both sections.
        measure_census_epochs(ctx, default_settings() + knob_settings(args.spe))
    for name in args.sections:
        sections[name](ctx)
        sys.stdout.flush()
    print_summary(ctx)
    print(
        f"Load average at end (1, 5, 15 min): {load_average()}; wall time "
        f"{time.perf_counter() - start:.0f} s; peak RSS of this process "
        f"{peak_rss_mb():.0f} MiB."
    )


if __name__ == "__main__":
    main()
