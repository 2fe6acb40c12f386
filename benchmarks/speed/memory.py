"""Section 6: RSS across a full census3 `fit`, peak RSS and retracing.

Every fit runs in a fresh process (`run_child`), which section 7 uses too.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras

from benchmarks.speed.census import CensusSetting, census_config, census_model
from benchmarks.speed.common import (
    BATCH,
    TRAININGS,
    log,
    max_rss_mb,
    peak_rss_mb,
    rss_mb,
    trace_summary,
    yes,
)
from mmoeex_tf import runs
from mmoeex_tf.datasets import load_census3

MEMORY_MARK = "MEMORY_RESULT "
# The repository root: `python -m benchmarks.speed` runs from there.
ROOT = Path(__file__).resolve().parents[2]


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
        "-m",
        "benchmarks.speed",
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
        cwd=ROOT,
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
