"""Section 7: the cost of TensorFlow's op determinism on census3 epochs."""

import statistics

from benchmarks.speed.common import log
from benchmarks.speed.memory import run_child


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
