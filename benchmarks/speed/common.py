"""What the sections share: constants, timing, trace counts, the machine, RSS."""

import dataclasses
import math
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import mmoeex_tf as mt  # noqa: E402

SECTIONS = (
    "epochs",
    "knobs",
    "pipeline",
    "export",
    "physio",
    "memory",
    "determinism",
    "profile",
    "defaults",
)
# How the benchmark is run, for the report's header.
COMMAND = "python -m benchmarks.speed"
BATCH = 512
# MAML-MTL order per training variant (None: joint training).
TRAININGS = {"joint": None, "MAML-MTL order 1": 1, "MAML-MTL order 2": 2}
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
        f"- Command: `{' '.join([COMMAND, *sys.argv[1:]])}`",
        f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs ({usable} usable), "
        f"{platform.machine()}",
        f"- Platform: {platform.platform()}, Python {platform.python_version()}",
        f"- TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy "
        f"{np.__version__}, mmoeex_tf {mt.__version__}",
        f"- GPUs: {', '.join(gpu.name for gpu in gpus) if gpus else 'none (CPU only)'}",
        f"- Load average at start (1, 5, 15 min): {load_average()}",
    ]


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


def yes(flag):
    """`yes` or `no`."""
    return "yes" if flag else "no"
