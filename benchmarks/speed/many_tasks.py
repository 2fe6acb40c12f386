"""Many tasks in little memory: toxcast's 617 sparse binary assays.

Three measurements, printed as Markdown tables:

1. `run`: `mmoeex train --data toxcast` as the command runs it (its recipe,
   `mmoeex_tf.runs.run`), `--epochs` epochs, each in a fresh process: wall
   time and peak resident memory (`VmHWM`). Needs the ToxCast file of the
   shared data (`--toxcast-path`) and RDKit; skipped with a message
   without them.
2. `steps`: the joint train step (batch 128, the toxcast recipe's model and
   defaults, `steps_per_execution` included; median epoch of `--steps`
   steps divided by the steps) at 10 and at 617 tasks on toxcast-shaped
   random data (1,024 bits, 71 % missing labels), and their ratio, against
   the target of 3.
3. `memory`: resident memory (`VmRSS`, and the peak `VmHWM`) of a fresh
   process after each stage of a 1-epoch run of the recipe's model on
   toxcast-shaped random data of 617 tasks: data made, model built, `fit`
   (the train step traced), `evaluate` (the test step traced).

All for each `--gate-units` setting (`none`: every gate has its own
`(1024, experts)` kernel; a number: a shared projection of that width).

Usage, from the repository root:
    python -m benchmarks.speed.many_tasks                   # all, about 15 min
    python -m benchmarks.speed.many_tasks --parts steps --gate-units none 16
    python -m benchmarks.speed.many_tasks --parts memory --gate-units 16

To run it as a section of `python -m benchmarks.speed`, register
`section_many_tasks` in that runner.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file
    sys.path[0] = str(Path(__file__).resolve().parents[2])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.paths import data_path  # noqa: E402
from benchmarks.speed.common import (  # noqa: E402
    fit_runner,
    interleaved,
    load_average,
    log,
    machine_info,
    peak_rss_mb,
)
from mmoeex_tf import Task  # noqa: E402
from mmoeex_tf.runs.config import RunConfig  # noqa: E402
from mmoeex_tf.runs.config_files import recipe_values  # noqa: E402
from mmoeex_tf.runs.factory import build_model  # noqa: E402
from mmoeex_tf.runs.run import run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BITS, BATCH, MISSING = 1024, 128, 0.71
TASK_COUNTS = (10, 617)
CHILD_MARK = "MANY_TASKS_RESULT "
TARGET_RATIO = 3.0


def parse_gate_units(value):
    """`none` -> None, else a positive width."""
    return None if value == "none" else int(value)


def toxcast_config(gate_units, **overrides):
    """The toxcast recipe's `RunConfig` with `gate_units` and overrides."""
    values = {**recipe_values("toxcast"), "data": "toxcast", "gate_units": gate_units}
    return RunConfig.from_dict({**values, **overrides})


# ------------------------------------------------------- 1. mmoeex train ---


def run_child(path, gate_units, epochs):
    """One `mmoeex train --data toxcast` in this (fresh) process; prints JSON."""
    with tempfile.TemporaryDirectory() as folder:
        config = toxcast_config(
            gate_units, data_path=path, epochs=epochs, output=f"{folder}/run"
        )
        start = time.perf_counter()
        done = run(config, verbose=0)
        seconds = time.perf_counter() - start
    test = done.scores["test"]
    aucs = [scores["auc"] for scores in test.values() if np.isfinite(scores["auc"])]
    result = {"seconds": seconds, "peak_mb": peak_rss_mb(), "test_auc": np.mean(aucs)}
    print(CHILD_MARK + json.dumps(result), flush=True)


def child_result(arguments):
    """Runs this module with `arguments` in a fresh process; its JSON result."""
    command = [sys.executable, "-m", "benchmarks.speed.many_tasks", *arguments]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT
    )
    lines = [
        line[len(CHILD_MARK) :]
        for line in done.stdout.splitlines()
        if line.startswith(CHILD_MARK)
    ]
    if done.returncode or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{tail}")
    return json.loads(lines[-1])


def measure_run(path, gate_units, epochs):
    """`run_child` in a fresh process; returns its result."""
    units = "none" if gate_units is None else str(gate_units)
    return child_result(
        ["--child", units, "--epochs", str(epochs), "--toxcast-path", path]
    )


def section_run(args):
    """Prints table 1."""
    print(f"## `mmoeex train --data toxcast --epochs {args.epochs}`, fresh processes\n")
    path = args.toxcast_path
    if not path or not Path(path).exists():
        print(f"Skipped: no ToxCast file at {path}.\n")
        return
    print("| gate units | wall time (s) | peak RSS (MiB) | mean test ROC-AUC |")
    print("|---|---:|---:|---:|")
    for gate_units in args.gate_units:
        log(f"run: gate_units {gate_units}")
        result = measure_run(path, gate_units, args.epochs)
        print(
            f"| {gate_units or 'none'} | {result['seconds']:.0f} | "
            f"{result['peak_mb']:.0f} | {result['test_auc']:.3f} |"
        )
    print()


# ---------------------------------------------------------- 2. the step ---


def toxcast_like(num_tasks, rows, seed=0):
    """Random 0/1 features and sparse binary labels shaped like toxcast."""
    rng = np.random.default_rng(seed)
    x = (rng.random((rows, BITS)) < 0.05).astype("float32")
    scores = x @ rng.normal(size=(BITS, num_tasks)).astype("float32")
    labels = (scores > np.quantile(scores, 0.85, axis=0)).astype("float32")
    labels[rng.random(labels.shape) < MISSING] = np.nan
    names = [f"assay_{i}" for i in range(num_tasks)]
    tasks = [Task(name, "binary") for name in names]
    return x, {name: labels[:, i] for i, name in enumerate(names)}, tasks


def section_steps(args):
    """Prints table 2."""
    print(f"## Joint train step, batch {BATCH}, 10 against 617 tasks\n")
    rows = BATCH * args.steps
    runners = {}
    for num_tasks in TASK_COUNTS:
        x, y, tasks = toxcast_like(num_tasks, rows)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).cache()
        for gate_units in args.gate_units:
            model = build_model(toxcast_config(gate_units), tasks, (BITS,), rows)
            runners[(num_tasks, gate_units)] = fit_runner(model, dataset)
    results = interleaved(runners, args.repeats, label="steps")
    print("| gate units | 10 tasks (ms) | 617 tasks (ms) | 617 / 10 | target |")
    print("|---|---:|---:|---:|---|")
    for gate_units in args.gate_units:
        few, many = (results[(n, gate_units)].median / args.steps for n in TASK_COUNTS)
        ratio = many / few
        print(
            f"| {gate_units or 'none'} | {few * 1e3:.1f} | "
            f"{many * 1e3:.1f} | {ratio:.2f} | <= {TARGET_RATIO:.0f}: "
            f"{'yes' if ratio <= TARGET_RATIO else 'no'} |"
        )
    print(
        f"\nFirst (tracing) epoch of {args.steps} steps, seconds: "
        + ", ".join(
            f"{n} tasks gate units {g or 'none'} {results[(n, g)].warmup:.1f}"
            for n, g in runners
        )
        + "\n"
    )


# -------------------------------------------------------- 3. memory ---


def memory_mb():
    """`(VmRSS, VmHWM)` of this process, in MiB."""
    with open("/proc/self/status") as status:
        values = dict(line.split(":", 1) for line in status)
    return tuple(int(values[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def memory_child(gate_units, rows):
    """The stages of `section_memory` in this (fresh) process; prints JSON."""
    x, y, tasks = toxcast_like(TASK_COUNTS[-1], rows)
    stages = {"data": memory_mb()}
    model = build_model(toxcast_config(gate_units), tasks, (BITS,), rows)
    model(x[:2])
    stages["built"] = memory_mb()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    stages["fit"] = memory_mb()
    model.evaluate(x, y, batch_size=4 * BATCH, verbose=0)
    stages["evaluate"] = memory_mb()
    print(CHILD_MARK + json.dumps(stages), flush=True)


def section_memory(args):
    """Prints table 3."""
    rows = BATCH * args.steps
    print(f"## Resident memory, {TASK_COUNTS[-1]} tasks, {rows} rows, 1 epoch\n")
    print("| gate units | data | built | after `fit` | after `evaluate` |")
    print("|---|---:|---:|---:|---:|")
    for gate_units in args.gate_units:
        log(f"memory: gate_units {gate_units}")
        units = "none" if gate_units is None else str(gate_units)
        stages = child_result(["--memory-child", units, "--steps", str(args.steps)])
        cells = [f"{rss:,.0f} (peak {peak:,.0f})" for rss, peak in stages.values()]
        print(f"| {units} | " + " | ".join(cells) + " |")
    print("\nMiB, `VmRSS` (peak: `VmHWM`) after each stage.\n")


def section_many_tasks(args):
    """The parts chosen in `args.parts`."""
    if "run" in args.parts:
        section_run(args)
    if "steps" in args.parts:
        section_steps(args)
    if "memory" in args.parts:
        section_memory(args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed.many_tasks",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("run", "steps", "memory"),
        default=["run", "steps", "memory"],
    )
    parser.add_argument(
        "--gate-units",
        nargs="+",
        type=parse_gate_units,
        default=[None, 16],
        help="gate projection widths, `none` for none (none 16)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs of a run (1)")
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="train steps per timed round, and of the memory run (20)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (3)")
    parser.add_argument("--toxcast-path", default=data_path("toxcast"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    if args.child:
        run_child(args.toxcast_path, parse_gate_units(args.child), args.epochs)
        return
    if args.memory_child:
        memory_child(parse_gate_units(args.memory_child), BATCH * args.steps)
        return
    print("# mmoeex_tf: many tasks\n")
    print("\n".join(machine_info()) + "\n")
    section_many_tasks(args)
    print(f"Load average at end (1, 5, 15 min): {load_average()}.")


if __name__ == "__main__":
    main()
