"""Speed and memory of mmoeex_tf: every speed figure of RESULTS.md in one run.

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
5. `physio`: physio4 (48 steps, 82 features) as the reproduction runs it
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
9. `defaults`: census3 with the new defaults (`steps_per_execution="auto"`)
   against the old ones (one step per call, no XLA), and with XLA on top:
   epoch times as in section 1, and whole `--train-epochs`-epoch runs through
   `mmoeex_tf.runs.train` (a fresh model compiled, validation after every
   epoch), `--train-rounds` interleaved rounds, as ratios.

Sections 1, 2 and 9 share their epoch measurements when run together. Variants are
interleaved (every round runs each variant once), so that changes in the
machine's load hit them alike. Progress goes to stderr, the tables to stdout.

One module per section (`epochs.py` ... `profile.py`, `defaults.py`; `physio` in
`physio4.py`), the shared helpers in
`common.py` (timing, trace counts, the machine, memory readings) and
`census.py` (the census3 reference model and the measurements sections 1
and 2 share), the options and the run in `__main__.py`.

Usage, from the repository root (`python benchmarks/speed/__main__.py` runs
the same):
    python -m benchmarks.speed                    # everything, 8-15 min on 2 cores
    python -m benchmarks.speed --quick            # smoke run, 5-10 min on 2 cores
    python -m benchmarks.speed --sections epochs knobs --repeats 9
    python -m benchmarks.speed --sections 4 6 --memory-epochs 20
"""
