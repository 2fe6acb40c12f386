"""The options and the run of the speed benchmark (`python -m benchmarks.speed`)."""

import argparse
import os
import sys
import time
from pathlib import Path

if not __package__:  # run as a file: python benchmarks/speed/__main__.py
    # This folder would shadow standard modules (`profile`); the repository
    # root makes `benchmarks.speed` importable instead.
    sys.path[0] = str(Path(__file__).resolve().parents[2])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

import benchmarks.speed  # noqa: E402
from benchmarks.paths import data_path  # noqa: E402
from benchmarks.speed import (  # noqa: E402
    defaults,
    determinism,
    epochs,
    export,
    knobs,
    memory,
    physio4,
    pipeline,
    profile,
)
from benchmarks.speed.census import (  # noqa: E402
    Context,
    default_settings,
    knob_settings,
    measure_census_epochs,
)
from benchmarks.speed.common import (  # noqa: E402
    BATCH,
    COMMAND,
    SECTIONS,
    load_average,
    machine_info,
    peak_rss_mb,
    yes,
)

# Section name -> the function printing it.
RUNNERS = {
    "epochs": epochs.section_epochs,
    "knobs": knobs.section_knobs,
    "pipeline": pipeline.section_pipeline,
    "export": export.section_export,
    "physio": physio4.section_physio,
    "memory": memory.section_memory,
    "determinism": determinism.section_determinism,
    "profile": profile.section_profile,
    "defaults": defaults.section_defaults,
}


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
    """Section names from names or numbers (1-9), in the canonical order."""
    chosen = set()
    for value in values:
        if value.isdigit() and 1 <= int(value) <= len(SECTIONS):
            chosen.add(SECTIONS[int(value) - 1])
        elif value in SECTIONS:
            chosen.add(value)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown section {value!r}; choose from {', '.join(SECTIONS)} or "
                f"1-{len(SECTIONS)}"
            )
    return [name for name in SECTIONS if name in chosen]


def parse_args(argv=None):
    """The command-line options; `--quick` lowers the repetition defaults."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description=benchmarks.speed.__doc__.splitlines()[0],
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
        default=data_path("physio4"),
        help="PhysioNet 2012 data folder (physionet2012 of the shared data)",
    )
    parser.add_argument(
        "--memory-epochs", type=int, help="epochs of the memory fits (10; quick 3)"
    )
    parser.add_argument(
        "--train-epochs",
        type=int,
        default=12,
        help="epochs of the whole census3 runs of section 9 (12)",
    )
    parser.add_argument(
        "--train-rounds",
        type=int,
        help="interleaved rounds of the whole runs of section 9 (2; quick 1)",
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
        "train_rounds": (2, 1),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.repeats < 1 or args.memory_epochs < 3:
        parser.error("--repeats must be at least 1 and --memory-epochs at least 3")
    if args.train_epochs < 1 or args.train_rounds < 1:
        parser.error("--train-epochs and --train-rounds must be at least 1")
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
        memory.memory_child(args.memory_child, args.memory_epochs)
        return
    start = time.perf_counter()
    ctx = Context(args)
    print("# mmoeex_tf speed benchmark\n")
    print("\n".join(machine_info()) + "\n")
    # One interleaved measurement of census3 epochs serves every section.
    settings = {
        "epochs": lambda: list(default_settings(ctx).values()),
        "knobs": lambda: [*default_settings(ctx).values(), *knob_settings(args.spe)],
        "defaults": lambda: defaults.epoch_settings(ctx),
    }
    chosen = [make() for name, make in settings.items() if name in args.sections]
    if len(chosen) > 1:
        measure_census_epochs(ctx, list(dict.fromkeys(sum(chosen, []))))
    for name in args.sections:
        RUNNERS[name](ctx)
        sys.stdout.flush()
    print_summary(ctx)
    print(
        f"Load average at end (1, 5, 15 min): {load_average()}; wall time "
        f"{time.perf_counter() - start:.0f} s; peak RSS of this process "
        f"{peak_rss_mb():.0f} MiB."
    )


if __name__ == "__main__":
    main()
