from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.integrations.distributed import shard_by_data, tf_config
from mmoeex_tf.training.strategies import make_strategy
from tests.helpers import finish, free_ports, run_on_two_cpu_replicas, start_process

SCRIPT = Path(__file__).parent / "scripts" / "multi_worker_fit.py"
WORKER_TIMEOUT_S = 180

RNG = np.random.default_rng(3)
X = RNG.normal(size=(128, 6)).astype("float32")
Y = {"flag": (X[:, 0] > 0).astype("float32"), "value": X[:, 1] - X[:, 2]}
TASKS = [mt.Task("flag", "binary"), mt.Task("value", "regression")]


def test_two_workers_end_with_the_same_weights_as_one_process(tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    outputs = [tmp_path / "worker0.npz", tmp_path / "worker1.npz", tmp_path / "one.npz"]
    processes = [
        start_process([SCRIPT, outputs[i]], tmp_path, TF_CONFIG=tf_config(workers, i))
        for i in (0, 1)
    ]
    processes.append(start_process([SCRIPT, outputs[2]], tmp_path))
    for code, log in finish(processes, WORKER_TIMEOUT_S):
        assert code == 0, log[-3000:]
    first, second, alone = (np.load(path) for path in outputs)
    assert first.files == alone.files
    assert {"loss", "flag_auc", "value_mae", "val_loss", "val_flag_auc"} <= set(
        alone.files
    )
    for key in alone.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        np.testing.assert_allclose(first[key], alone[key], atol=1e-5, err_msg=key)


def test_shard_by_data_sets_the_data_policy():
    dataset = shard_by_data(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA


class _Crash(Exception):
    pass


class _CrashAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Crash(f"interrupted after epoch {epoch}")


def _model(init_seed):
    keras.utils.set_random_seed(init_seed)
    model = mt.MMoEExModel(TASKS, mt.DenseExperts(4, 8), alpha=0.5, seed=0)
    model.build((None, 6))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _fit(model, callbacks):
    return model.fit(
        X, Y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=callbacks
    )


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    reference = _model(init_seed=7)
    _fit(reference, [])
    backup = tmp_path / "backup"
    with pytest.raises(_Crash):
        _fit(
            _model(init_seed=7),
            [keras.callbacks.BackupAndRestore(backup), _CrashAfterEpoch(1)],
        )
    assert (backup / "training_metadata.json").is_file()
    # A new process would start from fresh weights: restoring must replace them.
    resumed = _model(init_seed=8)
    history = _fit(resumed, [keras.callbacks.BackupAndRestore(backup)])
    assert history.epoch == [2, 3]
    for want, got in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not backup.exists()  # deleted once training completes


@pytest.mark.cluster
def test_a_mirrored_run_on_two_cpu_replicas_ends_as_one_replica(tmp_path):
    replicas, difference = run_on_two_cpu_replicas(
        f"""
        import dataclasses

        import numpy as np
        from mmoeex_tf import runs
        from mmoeex_tf.training.strategies import make_strategy

        config = runs.RunConfig(
            data="synthetic",
            data_options={{"sizes": [256, 64, 64], "num_features": 8}},
            experts=4,
            expert_units=(8,),
            epochs=2,
            batch_size=32,
        )
        for strategy in ("mirrored", "auto"):
            output = r"{tmp_path}/" + strategy
            runs.run(
                dataclasses.replace(config, strategy=strategy, output=output),
                verbose=0,
            )
        print(make_strategy("mirrored").num_replicas_in_sync)
        mirrored, alone = (
            runs.load_saved_model(r"{tmp_path}/" + name + "/model.keras").get_weights()
            for name in ("mirrored", "auto")
        )
        print(max(float(np.max(np.abs(a - b))) for a, b in zip(mirrored, alone)))
        """
    )
    assert replicas == 2
    assert difference < 1e-6


def test_single_process_strategies():
    assert make_strategy("auto") is tf.distribute.get_strategy()
    one = make_strategy("one-device")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert one.num_replicas_in_sync == 1
    with pytest.raises(MMoEExError, match="Unknown strategy 'ring'"):
        make_strategy("ring")
