"""Section 3: the library's input pipeline against in-memory batches."""

import time

import tensorflow as tf

from benchmarks.speed.census import CensusSetting, census_model
from benchmarks.speed.common import BATCH, fit_runner, interleaved, yes

PIPELINE_TOLERANCE = 0.10


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
