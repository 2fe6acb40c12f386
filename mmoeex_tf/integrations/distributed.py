"""Multi-worker training with `model.fit` (synchronous data parallelism).

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

Keras 3.15 passes two things to the strategy's `reduce` that the stock
`tf.distribute.MultiWorkerMirroredStrategy` rejects in `fit` (a nested batch
when it builds the model, and `axis=0` on scalar metrics; keras-team/keras
issue 20585); `MultiWorkerMirroredStrategy` here is the stock strategy with
those two cases handled.
"""

import json

import tensorflow as tf


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`tf.distribute.MultiWorkerMirroredStrategy` that Keras 3 `fit` can use.

    Takes the same arguments. `reduce` maps over nested values and reduces a
    scalar given `axis=0` as with `axis=None` (over the replicas); anything
    else reduces as in the parent class.
    """

    def reduce(self, reduce_op, value, axis):
        """Reduces `value`, possibly nested, across replicas.

        Args:
            reduce_op: A `tf.distribute.ReduceOp` value or its name.
            value: A (nest of) `PerReplica` values or tensors.
            axis: The axis to reduce over within each replica's value as
                well, or `None`; ignored for scalars.

        Returns:
            The reduced value(s), with the structure of `value`.
        """
        parent = super()

        def reduce_one(item):
            rank = self.experimental_local_results(item)[0].shape.rank
            return parent.reduce(reduce_op, item, None if rank == 0 else axis)

        return tf.nest.map_structure(reduce_one, value)


def tf_config(workers, index):
    """The `TF_CONFIG` value of one worker of a cluster.

    Args:
        workers: `"host:port"` of every worker, in the same order on all of
            them.
        index: This worker's position in `workers`; 0 is the chief.

    Returns:
        The JSON string to put in the `TF_CONFIG` environment variable.
    """
    return json.dumps(
        {
            "cluster": {"worker": list(workers)},
            "task": {"type": "worker", "index": index},
        }
    )


def shard_by_data(dataset):
    """Sets a dataset to be split between workers batch by batch.

    Each worker reads the whole dataset and keeps its share of every global
    batch (`tf.data.experimental.AutoShardPolicy.DATA`), which suits data in
    memory; the default policy would first try to split by files and warn.

    Args:
        dataset: A `tf.data.Dataset`, batched with the global batch size.

    Returns:
        The dataset with the sharding option set.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)
