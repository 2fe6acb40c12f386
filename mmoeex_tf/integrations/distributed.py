"""Multi-worker training with `model.fit` (synchronous data parallelism).

`mmoeex train --strategy multi-worker` does all of this for a run (see
`mmoeex_tf.runs.run`); this module is the recipe for your own `fit` loops.
Every worker runs the same script. `TF_CONFIG` tells each one the cluster
and its own place in it; the strategy connects the workers, keeps one copy
of every variable per worker, and sums the gradients over all workers at
every step (MMoEEx's per-task losses are already normalised by the label
count of the global batch), so N workers with a global batch B train like
one process with batch B.

On a real cluster, on every machine:

```python
import os
import keras
import tensorflow as tf
import mmoeex_tf as mt
from mmoeex_tf.integrations.distributed import (
    MultiWorkerMirroredStrategy,
    shard_by_data,
    tf_config,
)

index = 0  # 1 on host2; or TF_CONFIG comes from the scheduler
os.environ["TF_CONFIG"] = tf_config(["host1:12345", "host2:12345"], index)
strategy = MultiWorkerMirroredStrategy()  # before any other TensorFlow op
with strategy.scope():
    model = mt.MMoEExModel(tasks, mt.DenseExperts(8, 32), alpha=0.5)
    model.build((None, num_features))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
train = shard_by_data(
    tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
    .batch(global_batch_size))
model.fit(train, epochs=10, callbacks=[
    keras.callbacks.BackupAndRestore(f"backup/worker-{index}")])
```

- Start the script on every host (by hand, `ssh`, or a scheduler: SLURM
  users can build the strategy from
  `tf.distribute.cluster_resolver.SlurmClusterResolver()`); worker 0 is the
  chief. The ports must be reachable between the hosts.
- Batch with the *global* batch size; each worker gets its share of every
  batch. With files on shared storage, `AutoShardPolicy.FILE` (each worker
  reads its own files) is cheaper than `shard_by_data`.
- Shuffle with a fixed seed so all workers agree on the order.
- Save models from the chief (`index 0`) only. Keras 3's `BackupAndRestore`
  writes from every worker, so give each worker its own backup folder; the
  workers hold the same weights, and a restarted job resumes every worker
  from its own copy, at the epoch after the last one finished.

`MultiWorkerMirroredStrategy` here is the stock strategy with two cases of
Keras 3.15's `fit` handled (keras-team/keras issue 20585). It and the helpers
live in `mmoeex_tf.training.strategies`, which runs use too.
"""

from mmoeex_tf.training.strategies import (
    MultiWorkerMirroredStrategy,
    shard_by_data,
    tf_config,
)

__all__ = ["MultiWorkerMirroredStrategy", "shard_by_data", "tf_config"]
