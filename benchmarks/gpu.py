"""GPU benchmark: XLA, mixed precision, cuDNN and SavedModel latency.

One short run, meant for whenever a GPU machine is at hand:

1. census3 reference configuration: training epochs of joint, MAML-MTL order
   1 and order 2 training, each with and without XLA (`jit_compile`) and
   with and without the `mixed_float16` dtype policy.
2. physio4-shaped recurrent experts (48 steps x 82 features, 4 tasks; the
   real data when present, else random data of that shape): GRU and LSTM,
   grouped (`RecurrentExperts(grouped=True)`) and as separate Keras layers
   (`grouped=False`) with `use_cudnn` on and off, joint and MAML-MTL order 2.
3. Second-order check: MAML-MTL order 2 switches `use_cudnn="auto"` layers to
   the generic kernel (cuDNN kernels have no second derivative); its exact
   gradient, computed on the GPU, is compared with finite differences.
4. Batch-1 and batch-512 latency of the exported SavedModel.

Run from the repository root: `python -m benchmarks.gpu` (a few minutes on a
GPU); `--quick` (tiny sizes, one repeat) checks the script on a CPU;
`--json FILE` also writes the figures as JSON.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import mmoeex_tf as mt  # noqa: E402
from benchmarks.paths import data_path  # noqa: E402
from benchmarks.speed.census import CensusSetting, census_model  # noqa: E402
from benchmarks.speed.common import (  # noqa: E402
    BATCH,
    TRAININGS,
    cpu_model,
    fit_runner,
    interleaved,
    load_average,
    log,
    peak_rss_mb,
    yes,
)
from benchmarks.speed.export import call_times  # noqa: E402
from benchmarks.speed.physio4 import PHYSIO_BATCH, physio_model  # noqa: E402
from mmoeex_tf.datasets import load_census3, load_physio4  # noqa: E402
from mmoeex_tf.datasets.physionet import LOS_EDGES, NUM_STEPS  # noqa: E402
from mmoeex_tf.datasets.physionet import TASKS as PHYSIO_TASKS  # noqa: E402
from mmoeex_tf.errors import MMoEExError  # noqa: E402
from mmoeex_tf.integrations import export  # noqa: E402
from mmoeex_tf.training.maml import MAMLMTL  # noqa: E402

COMMAND = "python -m benchmarks.gpu"
SECTIONS = ("census", "physio", "check", "export")
PRECISIONS = ("float32", "mixed_float16")
PHYSIO_FEATURES = 82
CELLS = {"gru": "GRU", "lstm": "LSTM"}
# Relative error of the second-order directional derivatives that passes.
CHECK_TOLERANCE = 1e-3


# ------------------------------------------------------------- helpers ---


def on_gpu():
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def device_lines():
    """Markdown lines naming the devices and the software."""
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        capability = ".".join(map(str, capability)) if capability else "?"
        names.append(
            f"{details.get('device_name', gpu.name)} ({gpu.name}, compute "
            f"capability {capability})"
        )
    build = tf.sysconfig.get_build_info()
    return [
        f"- Command: `{' '.join([COMMAND, *sys.argv[1:]])}`",
        f"- GPU: {', '.join(names) if names else 'none (CPU only)'}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs, {platform.machine()}",
        f"- TensorFlow {tf.__version__} (CUDA {build.get('cuda_version', 'n/a')}, "
        f"cuDNN {build.get('cudnn_version', 'n/a')}), Keras {keras.__version__}, "
        f"mmoeex_tf {mt.__version__}, Python {platform.python_version()}",
        f"- Load average at start (1, 5, 15 min): {load_average()}",
    ]


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy for the block, then restores it."""
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def float64():
    """Makes float64 Keras' default float type for the block."""
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        # A global policy, once set, overrides floatx for new layers.
        with dtype_policy("float64"):
            yield
    finally:
        keras.config.set_floatx(previous)


def error_text(err):
    """An exception as one line: its type and last non-empty message line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


def guarded(run, name, failures):
    """Wraps a runner of `interleaved` so that an error ends only its variant.

    Args:
        run: A function of no argument returning a list of seconds.
        name: The variant's name.
        failures: Dict name -> error message, filled on failure.

    Returns:
        A function of no argument returning a list of seconds (empty once
        the variant failed).
    """

    def wrapped():
        if name in failures:
            return []
        try:
            return run()
        except Exception as err:  # noqa: BLE001 - reported in the table
            failures[name] = error_text(err)
            log(f"{name} failed: {failures[name]}")
            return []

    return wrapped


def time_variants(builders, repeats, label, per_step=False, warmup_limit=None):
    """Builds and times models, one interleaved round after another.

    Args:
        builders: Dict name -> function of no argument returning `(model,
            dataset)`.
        repeats: Timed rounds after the warm-up round.
        label: What is measured, for the progress messages.
        per_step: Time every train step instead of the epoch.
        warmup_limit: Seconds; variants warming up longer are not timed.

    Returns:
        `(samples, failures, models)`: dict name -> `Samples`, dict name ->
        error message, dict name -> model.
    """
    failures, runners, models = {}, {}, {}
    for name, build in builders.items():
        log(f"{label}: building {name}")
        try:
            model, dataset = build()
        except Exception as err:  # noqa: BLE001 - reported in the table
            failures[name] = error_text(err)
            continue
        models[name] = model
        run = fit_runner(model, dataset, per_step=per_step)
        runners[name] = guarded(run, name, failures)
    samples = interleaved(runners, repeats, warmup_limit=warmup_limit, label=label)
    return samples, failures, models


def status(name, samples, failures):
    """`ok`, `failed: ...` or `not timed: ...` for a variant."""
    if name in failures:
        return f"failed: {failures[name]}"
    if name not in samples or samples[name].skipped:
        return f"not timed: {samples[name].skipped if name in samples else 'n/a'}"
    return "ok"


def ratio(value, base):
    """`value / base` as text, `n/a` when either is missing."""
    if not (math.isfinite(value) and math.isfinite(base)) or base == 0:
        return "n/a"
    return f"{value / base:.2f}"


def figure(value, scale=1.0, digits=3):
    """A number as text, `n/a` for NaN; None (JSON null) becomes `n/a` too."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * scale:.{digits}f}"


def finite_or_none(value):
    """`value`, or None where it is NaN (JSON has no NaN)."""
    return value if math.isfinite(value) else None


# -------------------------------------------------------------- census3 ---


def census_grid(quick):
    """`(training, XLA, precision)` of section 1.

    Every combination; `quick` keeps the XLA and precision variants of
    joint training only (tracing MAML-MTL steps takes most of a CPU run).
    """
    return [
        (training, jit, precision)
        for training in TRAININGS
        for jit in (False, True)
        for precision in PRECISIONS
        if not quick or training == "joint" or (not jit and precision == "float32")
    ]


def section_census(args, report):
    """Section 1: census3 epochs with and without XLA and mixed precision."""
    log("loading census3")
    data = load_census3()
    dataset = data.shuffled_epochs("train", BATCH, seed=0, epochs=1)[0]
    full_steps = math.ceil(len(data.x["train"]) / BATCH)
    steps = min(args.census_steps or full_steps, full_steps)
    dataset = dataset.take(steps)

    def builder(training, jit, precision):
        def build():
            with dtype_policy(precision):
                setting = CensusSetting(training, jit_compile=jit)
                return census_model(data, setting), dataset

        return build

    variants = {key: builder(*key) for key in census_grid(args.quick)}
    names = {
        key: f"{key[0]}, XLA {'on' if key[1] else 'off'}, {key[2]}" for key in variants
    }
    samples, failures, _ = time_variants(
        {names[key]: build for key, build in variants.items()},
        args.repeats,
        "census3 epochs",
        warmup_limit=args.xla_limit,
    )
    print("## 1. census3 reference configuration: training epoch\n")
    print(
        "MMoEEx, 12 dense experts of 4 units, towers of 4, alpha 0.75 exclusivity, "
        f"AdamW lr 1e-4, batch {BATCH}, steps_per_execution 1 (as in "
        f"`python -m benchmarks.speed`); {steps} of the {full_steps} steps of an "
        f"epoch. Median of {args.repeats} epoch{'s' * (args.repeats != 1)} after "
        "a warm-up epoch (tracing and XLA compilation included). `x base`: "
        "against the same training in float32 without XLA; `x joint`: against "
        "joint training with the same XLA and precision.\n"
    )
    print(
        "| training | XLA | precision | warm-up s | median epoch s | ms/step "
        "| x base | x joint | status |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    rows = []
    for key, name in names.items():
        training, jit, precision = key
        median = samples[name].median if name in samples else math.nan
        base = samples.get(names.get((training, False, "float32")))
        joint = samples.get(names.get(("joint", jit, precision)))
        base = base.median if base else math.nan
        joint = joint.median if joint else math.nan
        warmup = samples[name].warmup if name in samples else math.nan
        state = status(name, samples, failures)
        print(
            f"| {training} | {'on' if jit else 'off'} | {precision} | "
            f"{figure(warmup, digits=1)} | {figure(median)} | "
            f"{figure(median / steps, 1e3, 2)} | {ratio(median, base)} | "
            f"{ratio(median, joint)} | {state} |"
        )
        rows.append(
            {
                "training": training,
                "xla": jit,
                "precision": precision,
                "steps": steps,
                "warmup_s": finite_or_none(warmup),
                "median_epoch_s": finite_or_none(median),
                "samples_s": samples[name].values if name in samples else [],
                "status": state,
            }
        )
    print()
    report["census"] = rows


# -------------------------------------------------------------- physio4 ---


def physio_data(args):
    """physio4's train split, or random data of its shape and tasks.

    Returns:
        `(data, source)`: an object with `tasks` and `x["train"]` (what
        `physio_model` reads) plus `y_train`, and a description.
    """
    rows = args.physio_steps * args.physio_batch
    try:
        log("loading physio4")
        loaded = load_physio4(args.physio_path)
        x, y = loaded.split("train")
        if len(x) >= rows:
            y = {name: values[:rows] for name, values in y.items()}
            data = types.SimpleNamespace(tasks=loaded.tasks, x={"train": x[:rows]})
            data.y_train = y
            return data, f"physio4 train split, first {rows} stays"
    except (MMoEExError, OSError) as err:
        log(f"physio4 not loaded ({err}); using random data of its shape")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, NUM_STEPS, PHYSIO_FEATURES)).astype("float32")
    y = {
        "ihm": rng.integers(0, 2, rows).astype("float32"),
        "los": rng.integers(0, len(LOS_EDGES) + 1, (rows, NUM_STEPS)).astype("float32"),
        "decomp": rng.integers(0, 2, (rows, NUM_STEPS)).astype("float32"),
        "sofa": rng.normal(size=rows).astype("float32"),
    }
    data = types.SimpleNamespace(tasks=list(PHYSIO_TASKS), x={"train": x})
    data.y_train = y
    return data, f"random data of physio4's shape and tasks, {rows} rows"


def recurrent_kernels(model):
    """The `use_cudnn` values of the Keras recurrent layers inside `model`."""
    experts = model.mixture.experts  # a `RecurrentExperts`: one chain per expert
    values = {
        str(layer.use_cudnn)
        for chain in getattr(experts, "experts", [])
        for layer in chain
        if hasattr(layer, "use_cudnn")
    }
    return "/".join(sorted(values)) or "grouped (no Keras RNN layer)"


def physio_variants(gpu, cells):
    """Name -> (experts options, MAML-MTL order or None) of section 2.

    Args:
        gpu: Whether a GPU is used (`use_cudnn=True` needs one).
        cells: Keys of `CELLS`.
    """
    # On a CPU Keras refuses use_cudnn=True; "auto" runs the generic kernel.
    cudnn_on = True if gpu else "auto"
    variants = {}
    for cell in cells:
        title = CELLS[cell]
        base = {"cell": cell}
        separate = {"cell": cell, "grouped": False}
        variants |= {
            f"{title} grouped, joint": (base, None),
            f"{title} grouped, MAML-MTL order 2": (base, 2),
            f"{title} separate, use_cudnn={cudnn_on}, joint": (
                separate | {"use_cudnn": cudnn_on},
                None,
            ),
            f"{title} separate, use_cudnn=False, joint": (
                separate | {"use_cudnn": False},
                None,
            ),
            f"{title} separate, use_cudnn=auto, MAML-MTL order 2": (
                separate | {"use_cudnn": "auto"},
                2,
            ),
        }
    return variants


def section_physio(args, report):
    """Section 2: GRU and LSTM experts, grouped and separate, cuDNN on/off."""
    gpu = on_gpu()
    data, source = physio_data(args)
    x, y = data.x["train"], data.y_train
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y)).batch(args.physio_batch).cache()
    )

    def builder(options, order):
        def build():
            experts = mt.RecurrentExperts(
                args.physio_experts, args.physio_units, seed=0, **options
            )
            optimization = (
                None if order is None else MAMLMTL(order=order, split_ratio=None)
            )
            return physio_model(data, experts, optimization), dataset

        return build

    # A quick run times GRU only: LSTM layers take the same code paths.
    variants = physio_variants(gpu, ["gru"] if args.quick else list(CELLS))
    samples, failures, models = time_variants(
        {name: builder(*spec) for name, spec in variants.items()},
        args.repeats,
        "physio4 steps",
        per_step=True,
    )
    print("## 2. physio4-shaped recurrent experts\n")
    print(
        f"{source}: {x.shape[1]} steps x {x.shape[2]} features, "
        f"{len(data.tasks)} tasks ({', '.join(t.name for t in data.tasks)}); "
        f"{args.physio_experts} experts of {args.physio_units} units, alpha 0.5 exclusivity, towers of 16, AdamW lr "
        f"1e-3, batch {args.physio_batch}, MAML-MTL with `split_ratio=None`. "
        "`grouped`: one recurrence for all experts (never cuDNN); `separate`: "
        "`grouped=False`, one Keras layer per expert. `kernel` lists the "
        "`use_cudnn` of the Keras layers after the model was built (MAML-MTL "
        "order 2 switches `auto` to `False`, the generic kernel). Median step of "
        f"{args.repeats} round{'s' * (args.repeats != 1)} x {args.physio_steps} "
        "step(s) after a warm-up round.\n"
    )
    print(
        "| experts, training | kernel (use_cudnn) | warm-up s | median step ms "
        "| x grouped joint | status |"
    )
    print("|---|---|---:|---:|---:|---|")
    rows = []
    for name, (options, order) in variants.items():
        title = name.split(" ", 1)[0]
        base = samples.get(f"{title} grouped, joint")
        base = base.median if base else math.nan
        median = samples[name].median if name in samples else math.nan
        warmup = samples[name].warmup if name in samples else math.nan
        kernel = recurrent_kernels(models[name]) if name in models else "n/a"
        state = status(name, samples, failures)
        print(
            f"| {name} | {kernel} | {figure(warmup, digits=1)} | "
            f"{figure(median, 1e3, 1)} | {ratio(median, base)} | {state} |"
        )
        rows.append(
            {
                "variant": name,
                "cell": options["cell"],
                "grouped": options.get("grouped", True),
                "use_cudnn": str(options.get("use_cudnn", "auto")),
                "maml_order": order,
                "kernel": kernel,
                "warmup_s": finite_or_none(warmup),
                "median_step_s": finite_or_none(median),
                "samples_s": samples[name].values if name in samples else [],
                "status": state,
            }
        )
    print()
    report["physio"] = {"source": source, "batch": args.physio_batch, "rows": rows}


# ---------------------------------------------------- second-order check ---


def second_order_error(cell, device):
    """Relative error of MAML-MTL order 2 gradients against finite differences.

    A float64 MMoEEx with `RecurrentExperts(grouped=False, use_cudnn="auto")`
    and `MAMLMTL(order=2)`; the meta-loss's exact gradient, projected on two
    random directions, against central differences of the meta-loss
    (Richardson-extrapolated), all computed on `device`.

    Args:
        cell: `"gru"` or `"lstm"`.
        device: A TensorFlow device name.

    Returns:
        `(error, kernel)`: the relative error, and the `use_cudnn` values of
        the model's recurrent layers.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4, 3))
    y = {"ihm": (x[:, -1, 0] > 0).astype("float64"), "los": x[:, :, 1]}
    tasks = [mt.Task("ihm", "binary"), mt.Task("los", "regression", per_step=True)]
    with float64(), tf.device(device):
        model = mt.MMoEExModel(
            tasks,
            mt.RecurrentExperts(2, 3, cell=cell, grouped=False, seed=1),
            alpha=0.5,
            tower_units=[3],
            tower_activation="tanh",
            optimization=MAMLMTL(inner_lr=0.5, order=2, split_ratio=0.6),
            dtype="float64",
            seed=3,
        )
        model.compile(optimizer="sgd")
        model(x[:2])
        variables = model.trainable_variables
        x_batch = tf.constant(x)
        labels, weights = model.prepare_batch(x_batch, y, None)
        compute = tf.function(
            lambda: (lambda r: (r.loss, r.gradients))(
                model.optimization.compute_gradients(model, x_batch, labels, weights)
            )
        )
        theta = [v.numpy() for v in variables]
        exact = np.concatenate([g.numpy().ravel() for g in compute()[1]])
        directions = rng.normal(size=(2, exact.size))
        numeric = []
        for direction in directions:
            step = 1e-2 / np.abs(direction).max()
            losses = []
            for h in (step, -step, step / 2, -step / 2):
                start = 0
                for variable, value in zip(variables, theta):
                    size = value.size
                    shift = direction[start : start + size].reshape(value.shape)
                    variable.assign(value + h * shift)
                    start += size
                losses.append(float(compute()[0]))
            coarse = (losses[0] - losses[1]) / (2 * step)
            fine = (losses[2] - losses[3]) / step
            numeric.append((4 * fine - coarse) / 3)
        for variable, value in zip(variables, theta):
            variable.assign(value)
    analytic = directions @ exact
    error = np.linalg.norm(np.array(numeric) - analytic) / np.linalg.norm(analytic)
    return float(error), recurrent_kernels(model)


def cudnn_refused(cell):
    """Whether `MAMLMTL(order=2)` refuses a layer with `use_cudnn=True`."""
    try:
        mt.MMoEExModel(
            [mt.Task("ihm", "binary")],
            mt.RecurrentExperts(2, 3, cell=cell, grouped=False, use_cudnn=True),
            optimization=MAMLMTL(order=2),
        )
    except MMoEExError:
        return True
    return False


def section_check(args, report):
    """Section 3: order 2 falls back to the generic kernel and stays exact."""
    device = "/GPU:0" if on_gpu() else "/CPU:0"
    print("## 3. Second order with separate recurrent layers\n")
    print(
        "float64 MMoEEx, `RecurrentExperts(2, 3, grouped=False, "
        'use_cudnn="auto")`, `MAMLMTL(inner_lr=0.5, order=2, split_ratio=0.6)`, '
        f"on `{device}`: the exact meta-gradient projected on two random "
        "directions against Richardson-extrapolated central differences of the "
        f"meta-loss (passes below {CHECK_TOLERANCE:g} relative error). "
        "`use_cudnn=True` refused: `MAMLMTL(order=2)` rejects a layer forced "
        "onto cuDNN.\n"
    )
    print(
        "| cell | kernel (use_cudnn) | relative error | passes | use_cudnn=True refused |"
    )
    print("|---|---|---:|---|---|")
    rows = []
    for cell, title in CELLS.items():
        log(f"second-order check, {title}")
        try:
            error, kernel = second_order_error(cell, device)
            state = yes(error < CHECK_TOLERANCE)
        except Exception as err:  # noqa: BLE001 - reported in the table
            error, kernel = math.nan, "n/a"
            state = f"failed: {error_text(err)}"
        refused = cudnn_refused(cell)
        print(f"| {title} | {kernel} | {error:.2e} | {state} | {yes(refused)} |")
        rows.append(
            {
                "cell": cell,
                "device": device,
                "kernel": kernel,
                "relative_error": finite_or_none(error),
                "passes": state,
                "use_cudnn_true_refused": refused,
            }
        )
    print()
    report["second_order_check"] = rows


# ------------------------------------------------------------ SavedModel ---


def section_export(args, report):
    """Section 4: batch-1 and batch-512 latency of the exported SavedModel."""
    data = load_census3()
    model = census_model(data, CensusSetting("joint"))
    single = tf.constant(data.x["test"][:1])
    full = tf.constant(data.x["test"][:BATCH])
    with tempfile.TemporaryDirectory() as base_dir:
        log("exporting the SavedModel")
        path = export.export_saved_model(model, "census3", base_dir=base_dir)
        serve = tf.saved_model.load(str(path)).signatures[export.DEFAULT_SIGNATURE]
        log("timing batch-1 and batch-512 calls")
        one = call_times(serve, single, 20, args.latency_calls)
        many = call_times(serve, full, 5, args.throughput_calls)
    print("## 4. Exported SavedModel (census3 reference configuration)\n")
    print(
        f"`serving_default` of `export_saved_model`, loaded with "
        f"`tf.saved_model.load`, called on a float32 tensor made beforehand: "
        f"{args.latency_calls} batch-1 calls after 20 warm-up calls, "
        f"{args.throughput_calls} batch-{BATCH} calls after 5.\n"
    )
    print("| batch | median ms | p90 ms | rows/s (median) |")
    print("|---:|---:|---:|---:|")
    rows = []
    for size, times in ((1, one), (BATCH, many)):
        median = float(np.median(times))
        p90 = float(np.percentile(times, 90))
        print(
            f"| {size} | {median * 1e3:.3f} | {p90 * 1e3:.3f} | {size / median:,.0f} |"
        )
        rows.append({"batch": size, "median_s": median, "p90_s": p90})
    print()
    report["saved_model"] = rows


# ------------------------------------------------------------------ run ---

RUNNERS = {
    "census": section_census,
    "physio": section_physio,
    "check": section_check,
    "export": section_export,
}


def parse_args(argv=None):
    """The command-line options; `--quick` lowers the size defaults."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one repeat, to check the script on a CPU; times "
        "XLA and mixed precision for joint training only, GRU experts only",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help=f"sections to run ({', '.join(SECTIONS)}: all)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--repeats", type=int, help="timed rounds after the warm-up (3; quick 1)"
    )
    parser.add_argument(
        "--census-steps",
        type=int,
        help="census3 steps per epoch (0: the whole epoch; quick 3)",
    )
    parser.add_argument(
        "--xla-limit",
        type=float,
        default=180.0,
        help="seconds; census3 variants warming up longer are not timed (180)",
    )
    parser.add_argument(
        "--physio-steps", type=int, help="physio4 train steps per round (3; quick 1)"
    )
    parser.add_argument(
        "--physio-batch",
        type=int,
        help=f"physio4 batch size ({PHYSIO_BATCH}; quick 8)",
    )
    parser.add_argument(
        "--physio-experts", type=int, help="recurrent experts (6; quick 2)"
    )
    parser.add_argument(
        "--physio-units", type=int, help="units of each expert (16; quick 4)"
    )
    parser.add_argument(
        "--physio-path",
        default=data_path("physio4"),
        help="PhysioNet 2012 data folder (random data of its shape if absent)",
    )
    parser.add_argument(
        "--latency-calls", type=int, help="batch-1 SavedModel calls (500; quick 20)"
    )
    parser.add_argument(
        "--throughput-calls",
        type=int,
        help=f"batch-{BATCH} SavedModel calls (50; quick 5)",
    )
    args = parser.parse_args(argv)
    defaults = {
        "repeats": (3, 1),
        "census_steps": (0, 3),
        "physio_steps": (3, 1),
        "physio_batch": (PHYSIO_BATCH, 8),
        "physio_experts": (6, 2),
        "physio_units": (16, 4),
        "latency_calls": (500, 20),
        "throughput_calls": (50, 5),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    positive = ("repeats", "physio_steps", "physio_batch", "physio_experts")
    for name in (*positive, "physio_units", "latency_calls", "throughput_calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    # Many models trace their steps in one process: expected here.
    tf.get_logger().setLevel("ERROR")
    start = time.perf_counter()
    print("# mmoeex_tf GPU benchmark\n")
    lines = device_lines()
    print("\n".join(lines) + "\n")
    report = {"machine": lines, "quick": args.quick}
    for name in SECTIONS:
        if name in args.sections:
            RUNNERS[name](args, report)
            sys.stdout.flush()
    wall = time.perf_counter() - start
    print(
        f"Wall time {wall:.0f} s; load average at end {load_average()}; peak RSS "
        f"{peak_rss_mb():.0f} MiB."
    )
    report["wall_s"] = wall
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
        log(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
