"""Training step time with the table preprocessing in the `tf.data` pipeline.

census3 read as a raw table (the bundled UCI census-income test file, 42
columns, through `mmoeex_tf.datasets.from_dataframe`), four targets: income
(binary), marital status and education (multiclass), age (regression). One
model, the `mmoeex train` defaults with batch 512, is fed in turn by

- the encoded arrays (`TableData.tf_dataset`, shuffled): the `TableEncoder`
  ran once, beforehand, outside the pipeline;
- the raw columns, encoder in the pipeline once (`TableData.raw_dataset`,
  the default `cache=True`): the first epoch encodes the rows in blocks in
  a `tf.data` map and caches them, later epochs shuffle and batch the cache;
- the raw columns, encoder on every batch (`raw_dataset(cache=False)`), as
  a pipeline streaming raw rows would.

Each runs one warm-up epoch (for the cached pipeline: the epoch that
encodes), then `--repeats` timed epochs interleaved; the table gives the
warm-up epoch, the median epoch and step time and the ratio to the encoded
arrays.

Usage: python -m benchmarks.table_pipeline [--repeats 5]
"""

import argparse
import math

from benchmarks.paths import census_table
from benchmarks.speed.common import BATCH, fit_runner, interleaved
from mmoeex_tf import runs
from mmoeex_tf.runs.config import RunConfig

TARGETS = {
    "income label": "binary:50000+.",
    "marital stat": "multiclass",
    "education": "multiclass",
    "age": "regression",
}
TOLERANCE = 0.15


def main(repeats):
    data = census_table(TARGETS)
    print(data.summary())
    config = RunConfig(data="census3", batch_size=BATCH, epochs=1)
    model = runs.build_model(config, data.tasks, data.x["train"].shape[1:])
    runs.adapt_model(model, config, data.y["train"])
    encoded = "encoded arrays (encoder run once, beforehand)"
    raw = "raw columns, encoder in the tf.data map once (cached)"
    streamed = "raw columns, encoder in the tf.data map on every batch"
    runners = {
        encoded: fit_runner(model, data.tf_dataset("train", BATCH, shuffle=True)),
        raw: fit_runner(model, data.raw_dataset("train", BATCH, shuffle=True)),
        streamed: fit_runner(
            model, data.raw_dataset("train", BATCH, shuffle=True, cache=False)
        ),
    }
    results = interleaved(runners, repeats, label="table pipeline")
    steps = math.ceil(len(data.x["train"]) / BATCH)
    print(
        f"\n{len(data.x['train']):,} training rows, {len(data.feature_names)} "
        f"features, batch {BATCH} ({steps} steps per epoch); median of {repeats} "
        "epochs after a warm-up epoch.\n"
    )
    print("| input | warm-up epoch s | median epoch s | ms/step | x encoded arrays |")
    print("|---|---:|---:|---:|---:|")
    base = results[encoded].median
    for name, samples in results.items():
        print(
            f"| {name} | {samples.warmup:.3f} | {samples.median:.3f} "
            f"| {1000 * samples.median / steps:.2f} | {samples.median / base:.2f} |"
        )
    ratio = results[raw].median / base
    within = "yes" if ratio <= 1 + TOLERANCE else "no"
    print(f"\nRaw / encoded = {ratio:.2f}: within {TOLERANCE:.0%}: {within}.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs (5)")
    main(parser.parse_args().repeats)
