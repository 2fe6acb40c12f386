import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

import mmoeex_tf as mt
from mmoeex_tf import MAMLMTL, MMoEExError, MMoEExModel, Task
from mmoeex_tf.datasets import load_census3
from mmoeex_tf.maml import _split_rows

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 5)).astype("float32")
TASKS = [
    Task("flag", "binary"),
    Task("value", "regression"),
    Task("grade", "multiclass", output_size=3),
]
Y = {
    "flag": (X[:, 0] > 0).astype("float32"),
    "value": X[:, 1] * 2.0 + X[:, 2],
    "grade": np.digitize(X[:, 3], [-0.5, 0.5]).astype("float32"),
}
Y["value"][::7] = np.nan
SEQ = RNG.normal(size=(10, 4, 3)).astype("float32")
SEQ_TASKS = [Task("ihm", "binary"), Task("los", "regression", per_step=True)]
SEQ_Y = {"ihm": (SEQ[:, -1, 0] > 0).astype("float32"), "los": SEQ[:, :, 1]}


def dense_model(optimization, dropout=0.0, **kwargs):
    experts = mt.DenseExperts(4, 6, activation="tanh", dropout=dropout, seed=1)
    options = {"alpha": 0.5, "seed": 3, "tower_units": [4], "tower_activation": "tanh"}
    model = MMoEExModel(TASKS, experts, optimization=optimization, **options, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    model(X[:2])
    return model


def batch(model, x, y):
    x = tf.constant(x, model.trainable_variables[0].dtype)
    labels, weights = model.prepare_batch(x, y, None)
    return x, labels, weights


def traced_step(model):
    """Returns `run(x, y) -> (loss, flat gradient)` of a MAML-MTL step, traced once."""
    compute = tf.function(
        lambda *data: (lambda r: (r.loss, r.gradients))(
            model.optimization.compute_gradients(model, *data)
        )
    )

    def run(x, y):
        loss, gradients = compute(*batch(model, x, y))
        return float(loss), np.concatenate([g.numpy().ravel() for g in gradients])

    return run


def meta_loss(model, x, y):
    return traced_step(model)(x, y)[0]


def flat_weights(model):
    return np.concatenate([v.numpy().ravel() for v in model.trainable_variables])


def set_flat_weights(model, flat):
    start = 0
    for variable in model.trainable_variables:
        size = int(np.prod(variable.shape))
        variable.assign(flat[start : start + size].reshape(variable.shape))
        start += size


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inner_lr": -0.1}, r"inner_lr must be None .* or a finite number >= 0"),
        ({"inner_lr": float("nan")}, "inner_lr must be"),
        ({"inner_lr": float("inf")}, "inner_lr must be"),
        ({"inner_lr": "0.1"}, "inner_lr must be"),
        ({"order": 3}, "order must be 1 or 2, got 3"),
        ({"order": True}, "order must be 1 or 2"),
        ({"split_ratio": 0.0}, r"split_ratio must be None or a number in \(0, 1\)"),
        ({"split_ratio": 1.0}, r"split_ratio must be None or a number in \(0, 1\)"),
        ({"split_ratio": 1.5}, "split_ratio must be"),
        ({"split_ratio": 0.9999}, "leaves no inner or no outer row"),
        ({"inner_weights": "towers"}, r"inner_weights must be one of \('all'"),
        ({"outer": "vmap"}, r"outer must be one of \('auto'"),
        ({"balancer": "gradnorm"}, "balancer must be"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(MMoEExError, match=message):
        MAMLMTL(**kwargs)


def test_a_task_missing_from_the_loss_weights_is_named():
    with pytest.raises(MMoEExError, match=r"missing: \['grade'\]"):
        dense_model(MAMLMTL(balancer={"flag": 1.0, "value": 2.0}))


def test_split_rows_repeat_a_pattern_so_shards_split_alike():
    inner, outer = (r.numpy() for r in _split_rows(tf.constant(20), 5, 1))
    np.testing.assert_array_equal(outer, [4, 9, 14, 19])
    np.testing.assert_array_equal(np.sort(np.concatenate([inner, outer])), range(20))
    for shard in (inner, outer):  # rows 10-19 are the second replica's shard
        local = [r.numpy() for r in _split_rows(tf.constant(10), 5, 1)]
        second = shard[shard >= 10] - 10
        assert any(np.array_equal(second, part) for part in local)
    inner, outer = (r.numpy() for r in _split_rows(tf.constant(3), 5, 1))
    np.testing.assert_array_equal(inner, [0, 1, 2])  # too small: all rows twice
    np.testing.assert_array_equal(outer, [0, 1, 2])
    inner, outer = (r.numpy() for r in _split_rows(tf.constant(10), 4, 3))
    np.testing.assert_array_equal(inner, [0, 4, 8])
    np.testing.assert_array_equal(outer, [1, 2, 3, 5, 6, 7, 9])


def reference_loss(model, inner_lr, moving):
    """MAML-MTL loss computed the plain way: temporary weights assigned to a copy."""
    copy = MMoEExModel.from_config(model.get_config())
    copy(X[:2])
    rows = np.arange(len(X))
    inner, outer = rows[rows % 5 < 4], rows[rows % 5 == 4]
    total = 0.0
    for k in range(len(TASKS)):
        copy.set_weights(model.get_weights())
        variables = copy.trainable_variables if moving == "all" else None
        variables = variables or copy.mixture.trainable_variables
        x, labels, weights = batch(copy, X[inner], {n: v[inner] for n, v in Y.items()})
        with tf.GradientTape() as tape:
            logits = copy(x, training=True, return_logits=True)
            loss = copy.compute_task_losses(labels, weights, logits)[k]
        for variable, grad in zip(variables, tape.gradient(loss, variables)):
            variable.assign_sub(inner_lr * grad)
        x, labels, weights = batch(copy, X[outer], {n: v[outer] for n, v in Y.items()})
        logits = copy(x, training=True, return_logits=True)
        total += float(copy.compute_task_losses(labels, weights, logits)[k])
    return total


@pytest.mark.parametrize("inner_weights", ["all", "shared"])
def test_loss_is_each_tasks_outer_loss_after_its_own_inner_step(inner_weights):
    optimization = MAMLMTL(inner_lr=0.3, inner_weights=inner_weights)
    model = dense_model(optimization)
    expected = reference_loss(model, 0.3, inner_weights)
    assert meta_loss(model, X, Y) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("experts", ["dense", "recurrent"])
def test_second_order_gradient_matches_finite_differences(experts, float64):
    if experts == "dense":
        x, y, model = X[:30], {n: v[:30] for n, v in Y.items()}, None
        second, first = (
            dense_model(MAMLMTL(inner_lr=0.3, order=order), dtype="float64")
            for order in (2, 1)
        )
    else:
        x, y = SEQ, SEQ_Y
        second, first = (
            MMoEExModel(
                SEQ_TASKS,
                mt.RecurrentExperts(2, 3, cell="gru"),
                alpha=0.5,
                tower_units=[3],
                tower_activation="tanh",
                optimization=MAMLMTL(inner_lr=0.5, order=order, split_ratio=0.6),
                dtype="float64",
            )
            for order in (2, 1)
        )
        for model in (second, first):
            model.compile(optimizer="sgd")
            model(x[:2])
        first.set_weights(second.get_weights())
    run = traced_step(second)
    exact, approximate = run(x, y)[1], traced_step(first)(x, y)[1]
    theta = flat_weights(second)
    directions = np.random.default_rng(1).normal(size=(2, theta.size))
    analytic = directions @ exact
    numeric = []
    for direction in directions:
        step = 1e-2 / np.abs(direction).max()
        values = []
        for h in (step, -step, step / 2, -step / 2):
            set_flat_weights(second, theta + h * direction)
            values.append(run(x, y)[0])
        coarse = (values[0] - values[1]) / (2 * step)
        fine = (values[2] - values[3]) / step
        numeric.append((4 * fine - coarse) / 3)  # Richardson extrapolation
    error = np.linalg.norm(numeric - analytic) / np.linalg.norm(analytic)
    assert error < 1e-3
    first_order_error = np.linalg.norm(directions @ approximate - analytic)
    assert first_order_error / np.linalg.norm(analytic) > 1e-2


def assert_train_alike(reference, other, epochs, rtol, atol):
    """Starts `other` from `reference`'s weights, trains both, compares."""
    other.set_weights(reference.get_weights())
    for model in (reference, other):
        model.fit(X, Y, epochs=epochs, batch_size=40, shuffle=False, verbose=0)
    for want, got in zip(reference.get_weights(), other.get_weights()):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_zero_inner_lr_is_joint_training():
    joint = dense_model(None)
    maml = dense_model(MAMLMTL(inner_lr=0.0, split_ratio=None))
    assert_train_alike(joint, maml, epochs=2, rtol=1e-6, atol=1e-7)


def test_computing_the_loss_leaves_the_variables_alone():
    model = dense_model(MAMLMTL(inner_lr=0.5))
    before = [v.numpy() for v in model.variables]
    traced_step(model)(X, Y)
    for want, variable in zip(before, model.variables):
        np.testing.assert_array_equal(variable.numpy(), want)
    with_dropout = dense_model(MAMLMTL(inner_lr=0.5), dropout=0.3)
    before = [v.numpy() for v in with_dropout.trainable_variables]
    traced_step(with_dropout)(X, Y)
    for want, variable in zip(before, with_dropout.trainable_variables):
        np.testing.assert_array_equal(variable.numpy(), want)


def test_closed_gates_stay_closed():
    model = dense_model(MAMLMTL(inner_lr=0.5))
    closed = model.gate_mask == 0
    result = model.optimization.compute_gradients(model, *batch(model, X, Y))
    gate_gradient = dict(zip(map(id, model.trainable_variables), result.gradients))
    kernel = gate_gradient[id(model.mixture.gate.kernel)].numpy()
    assert np.all(kernel[:, closed] == 0.0)
    model.fit(X, Y, epochs=1, batch_size=40, verbose=0)
    _, gates = model(X, return_gates=True)
    assert np.all(gates.numpy()[:, closed] == 0.0)


@pytest.mark.parametrize("inner_weights", ["all", "shared"])
def test_batched_and_looped_outer_passes_agree(inner_weights):
    looped, batched = (
        dense_model(MAMLMTL(0.3, inner_weights=inner_weights, outer=o), dropout=0.2)
        for o in ("loop", "batched")
    )
    assert_train_alike(looped, batched, epochs=1, rtol=1e-5, atol=1e-6)


def test_default_inner_lr_follows_the_optimizer_without_retracing():
    tied = dense_model(MAMLMTL())
    fixed = dense_model(MAMLMTL(inner_lr=0.2))
    fixed.set_weights(tied.get_weights())
    run = traced_step(tied)
    for rate in (0.05, 0.2):
        tied.optimizer.learning_rate = rate
        loss = run(X, Y)[0]
    assert tied.optimization.trace_count == 1
    assert loss == pytest.approx(meta_loss(fixed, X, Y), rel=1e-6)


def test_no_retracing_across_epochs():
    optimization = MAMLMTL()
    model = dense_model(optimization)
    # Built first: creating the optimizer's variables inside the first trace
    # makes tf.function trace twice, for joint training too.
    model.optimizer.build(model.trainable_variables)
    model.fit(X, Y, epochs=3, batch_size=40, verbose=0)
    assert optimization.trace_count == 1


@pytest.mark.parametrize("setting", ["mixed_float16", "jit_compile"])
def test_mixed_precision_and_xla_steps_lower_the_loss(setting):
    if setting == "mixed_float16":
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = MMoEExModel(
            TASKS, mt.DenseExperts(4, 8), alpha=0.5, optimization=MAMLMTL()
        )
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            jit_compile=setting == "jit_compile",
        )
        before = model.evaluate(X, Y, verbose=0, return_dict=True)["loss"]
        model.fit(X, Y, epochs=4, batch_size=40, verbose=0)
        after = model.evaluate(X, Y, verbose=0, return_dict=True)["loss"]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if setting == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert after < 0.8 * before


def test_second_order_switches_recurrent_layers_off_cudnn():
    def lstm_model(order, use_cudnn="auto"):
        experts = mt.RecurrentExperts(2, 3, cell="lstm", use_cudnn=use_cudnn)
        return MMoEExModel(SEQ_TASKS, experts, optimization=MAMLMTL(order=order))

    layers = lstm_model(2).mixture.experts.experts
    assert all(layer.use_cudnn is False for expert in layers for layer in expert)
    layers = lstm_model(1).mixture.experts.experts
    assert all(layer.use_cudnn == "auto" for expert in layers for layer in expert)
    with pytest.raises(MMoEExError, match="use_cudnn=True, but cuDNN"):
        lstm_model(2, use_cudnn=True)


def test_save_and_load_keep_the_scheme(tmp_path):
    optimization = MAMLMTL(
        inner_lr=0.01, order=1, split_ratio=0.75, inner_weights="shared"
    )
    model = dense_model(optimization)
    model.fit(X, Y, epochs=1, batch_size=40, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimization, MAMLMTL)
    assert loaded.optimization.get_config() == optimization.get_config()
    for want, got in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(got, want)
    loaded.fit(X, Y, epochs=1, batch_size=40, verbose=0)


TWO_REPLICAS = textwrap.dedent(
    """
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    import numpy as np
    import mmoeex_tf as mt

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype("float32")
    y = {"flag": (x[:, 0] > 0).astype("float32"), "value": x[:, 1] * 2}
    y["value"][::7] = np.nan
    tasks = [mt.Task("flag", "binary"), mt.Task("value", "regression")]
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def train(strategy, optimization):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = mt.MMoEExModel(
                tasks, mt.DenseExperts(4, 8), alpha=0.5, optimization=optimization
            )
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            model(x[:2])
        model.fit(x, y, epochs=2, batch_size=40, shuffle=False, verbose=0)
        return [v.numpy() for v in model.trainable_variables]

    for options in ({}, {"outer": "loop", "balancer": "uncertainty"}):
        make = lambda: mt.MAMLMTL(inner_lr=0.5, **options)
        one = train(tf.distribute.get_strategy(), make())
        two = train(mirrored, make())
        error = max(np.abs(a - b).max() / np.abs(a).max() for a, b in zip(one, two))
        print(error)
    """
)


def test_two_replicas_train_like_one_device():
    result = subprocess.run(
        [sys.executable, "-c", TWO_REPLICAS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    errors = [float(line) for line in result.stdout.split()]
    assert len(errors) == 2 and max(errors) < 1e-5


def test_census3_maml_mtl_reaches_joint_training():
    # Learning rate and epochs were chosen once on the validation split for
    # joint training (lr in {1e-3, 3e-3, 1e-2}, 1 to 8 epochs: best mean
    # validation AUC at 3e-3 after 8 epochs) and are used for both. Measured
    # mean test AUC: joint 0.94302, MAML-MTL 0.94294; the margin allows for
    # float differences between machines. With split_ratio=0.8 the outer
    # loss sees a fifth of each batch and MAML-MTL stays near 0.936 at this
    # budget, so the inner and outer parts share the rows here.
    data = load_census3()
    scores = {}
    for name, optimization in (("joint", None), ("maml", MAMLMTL(split_ratio=None))):
        keras.utils.set_random_seed(0)
        model = MMoEExModel(
            data.tasks,
            mt.DenseExperts(12, 4),
            alpha=0.75,
            tower_units=[4],
            optimization=optimization,
        )
        model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.01))
        model.fit(data.x["train"], data.y["train"], batch_size=512, epochs=8, verbose=0)
        predicted = model.predict(data.x["test"], batch_size=4096, verbose=0)
        scores[name] = np.mean(
            [roc_auc_score(data.y["test"][t], predicted[t]) for t in predicted]
        )
    assert scores["joint"] > 0.94
    assert scores["maml"] >= scores["joint"] - 5e-4
