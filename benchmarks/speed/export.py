"""Section 4: latency and throughput of the exported SavedModel on CPU."""

import tempfile
import time

import numpy as np
import tensorflow as tf

from benchmarks.speed.census import CensusSetting, census_model
from benchmarks.speed.common import BATCH, log, yes
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.integrations import export

LATENCY_TARGET_MS = 2.0


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
