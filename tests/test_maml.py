import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

import mmoeex_tf as mt
from mmoeex_tf import MAMLMTL, MMoEExError, MMoEExModel, Task
from mmoeex_tf.datasets import load_census3
from mmoeex_tf.training.row_split import split_rows
from mmoeex_tf.training.stateless import StatelessNetwork
from tests.helpers import run_on_two_cpu_replicas

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
    """A MAML-MTL step traced once: `run(x, y) -> (loss, gradient, task losses)`."""
    compute = tf.function(
        lambda *data: (lambda r: (r.loss, r.gradients, r.task_losses))(
            model.optimization.compute_gradients(model, *data)
        )
    )

    def run(x, y):
        loss, gradients, task_losses = compute(*batch(model, x, y))
        flat = np.concatenate([g.numpy().ravel() for g in gradients])
        return float(loss), flat, task_losses.numpy()

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
        ({"order": 3}, r"MAMLMTL order must be one of \(1, 2\), got 3\.$"),
        ({"order": 2.0}, r"MAMLMTL order must be one of \(1, 2\), got 2\.0\.$"),
        ({"order": True}, r"MAMLMTL order must be one of \(1, 2\), got True\.$"),
        ({"order": "2"}, r"MAMLMTL order must be one of \(1, 2\), got '2'\.$"),
        ({"split_ratio": 0.0}, r"split_ratio must be None or a number in \(0, 1\)"),
        ({"split_ratio": 1.0}, r"split_ratio must be None or a number in \(0, 1\)"),
        ({"split_ratio": 1.5}, "split_ratio must be"),
        ({"split_ratio": 0.9999}, "leaves no inner or no outer row"),
        ({"inner_weights": "towers"}, r"inner_weights must be one of \('all'"),
        ({"outer": "vmap"}, r"outer must be one of \('auto'"),
        ({"balancer": "gradnorm"}, "balancer must be"),
        (
            {"tasks_per_step": 0},
            r"tasks_per_step must be None \(all tasks\) or an integer >= 1, got 0",
        ),
        ({"tasks_per_step": 2.0}, "tasks_per_step must be"),
        ({"tasks_per_step": True}, "tasks_per_step must be"),
        ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*63\), got -1"),
        ({"seed": None}, "seed must be"),
        ({"seed": 2**63}, "seed must be"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(MMoEExError, match=message):
        MAMLMTL(**kwargs)


def test_order_accepts_numpy_integers_as_python_ints():
    scheme = MAMLMTL(order=np.int64(1))
    assert scheme.order == 1 and type(scheme.order) is int
    assert scheme.get_config()["order"] == 1


def test_a_task_missing_from_the_loss_weights_is_named():
    with pytest.raises(MMoEExError, match=r"missing: \['grade'\]"):
        dense_model(MAMLMTL(balancer={"flag": 1.0, "value": 2.0}))


def test_more_tasks_per_step_than_tasks_is_named():
    with pytest.raises(MMoEExError, match="tasks_per_step=4 exceeds the model's 3"):
        dense_model(MAMLMTL(tasks_per_step=4))


def test_split_rows_repeat_a_pattern_so_shards_split_alike():
    inner, outer = (r.numpy() for r in split_rows(tf.constant(20), 5, 1))
    np.testing.assert_array_equal(outer, [4, 9, 14, 19])
    np.testing.assert_array_equal(np.sort(np.concatenate([inner, outer])), range(20))
    for shard in (inner, outer):  # rows 10-19 are the second replica's shard
        local = [r.numpy() for r in split_rows(tf.constant(10), 5, 1)]
        second = shard[shard >= 10] - 10
        assert any(np.array_equal(second, part) for part in local)
    inner, outer = (r.numpy() for r in split_rows(tf.constant(3), 5, 1))
    np.testing.assert_array_equal(inner, [0, 1, 2])  # too small: all rows twice
    np.testing.assert_array_equal(outer, [0, 1, 2])
    inner, outer = (r.numpy() for r in split_rows(tf.constant(10), 4, 3))
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


@pytest.mark.parametrize(
    "inner_weights, gate_units", [("all", None), ("shared", None), ("all", 3)]
)
def test_loss_is_each_tasks_outer_loss_after_its_own_inner_step(
    inner_weights, gate_units
):
    optimization = MAMLMTL(inner_lr=0.3, inner_weights=inner_weights)
    model = dense_model(optimization, gate_units=gate_units)
    expected = reference_loss(model, 0.3, inner_weights)
    assert meta_loss(model, X, Y) == pytest.approx(expected, rel=1e-5)


def test_only_the_weights_the_tasks_share_get_a_copy_per_task():
    model = dense_model(MAMLMTL(), gate_units=3)
    network = StatelessNetwork(model, "all")
    owned = {
        variable.path
        for variable, is_owned in zip(network.trainable, network.owned)
        if is_owned
    }
    gate = model.mixture.gate
    per_task = [gate.kernel, gate.bias, *model.towers.trainable_variables]
    per_task += model.heads.trainable_variables
    assert owned == {variable.path for variable in per_task}
    assert gate.projection.path not in owned
    assert all(v.path not in owned for v in model.mixture.experts.weights)


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


@pytest.mark.parametrize(
    "inner_weights, options, gate_units",
    [
        ("all", {}, None),
        ("shared", {}, None),
        ("all", {}, 3),
        ("all", {"tasks_per_step": 2, "order": 1}, 3),
    ],
)
def test_batched_and_looped_outer_passes_agree(inner_weights, options, gate_units):
    looped, batched = (
        dense_model(
            MAMLMTL(0.3, inner_weights=inner_weights, outer=o, **options),
            dropout=0.2,
            gate_units=gate_units,
        )
        for o in ("loop", "batched")
    )
    assert_train_alike(looped, batched, epochs=1, rtol=1e-5, atol=1e-6)


def test_frozen_experts_train_the_gates_alike_in_both_outer_passes():
    looped, batched = (
        dense_model(MAMLMTL(0.3, inner_weights="shared", outer=o))
        for o in ("loop", "batched")
    )
    for model in (looped, batched):
        model.mixture.experts.trainable = False
        model.compile(optimizer=keras.optimizers.SGD(0.05))
    experts = [w.numpy() for w in looped.mixture.experts.weights]
    gates = [w.numpy() for w in looped.mixture.gate.weights]
    assert_train_alike(looped, batched, epochs=1, rtol=1e-5, atol=1e-6)
    for before, after in zip(experts, batched.mixture.experts.weights):
        np.testing.assert_array_equal(after.numpy(), before)
    assert not np.allclose(batched.mixture.gate.weights[0].numpy(), gates[0])


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
        inner_lr=0.01,
        order=1,
        split_ratio=0.75,
        inner_weights="shared",
        tasks_per_step=2,
        seed=5,
    )
    model = dense_model(optimization)
    model.fit(X, Y, epochs=1, batch_size=40, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimization, MAMLMTL)
    assert loaded.optimization.get_config() == optimization.get_config()
    for want, got in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(  # the draws go on where they were
        loaded.optimization.sampled_tasks(loaded),
        model.optimization.sampled_tasks(model),
    )
    loaded.fit(X, Y, epochs=1, batch_size=40, verbose=0)


@pytest.mark.parametrize(
    "options",
    [
        {"outer": "loop", "order": 2},
        {"outer": "batched", "order": 2, "inner_weights": "shared"},
        {"outer": "batched", "order": 1},
        {"outer": "loop", "order": 1, "split_ratio": None},
    ],
)
def test_all_tasks_per_step_is_the_full_step(options):
    full = dense_model(MAMLMTL(0.3, **options), dropout=0.2)
    sampled = dense_model(
        MAMLMTL(0.3, tasks_per_step=len(TASKS), **options), dropout=0.2
    )
    sampled.set_weights(full.get_weights())
    want, got = traced_step(full)(X, Y), traced_step(sampled)(X, Y)
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6)


def test_all_tasks_per_step_trains_like_the_full_scheme_with_a_balancer():
    full = dense_model(MAMLMTL(0.3, balancer="uncertainty"))
    sampled = dense_model(MAMLMTL(0.3, balancer="uncertainty", tasks_per_step=3))
    assert_train_alike(full, sampled, epochs=1, rtol=1e-5, atol=1e-6)


def outer_losses_at_current_weights(model):
    """Task losses of the outer rows (default split) at the model's weights."""
    rows = np.arange(len(X))[np.arange(len(X)) % 5 == 4]
    x, labels, weights = batch(model, X[rows], {n: v[rows] for n, v in Y.items()})
    logits = model(x, training=True, return_logits=True)
    return model.compute_task_losses(labels, weights, logits).numpy()


@pytest.mark.parametrize(
    "outer, order", [("loop", 2), ("batched", 2), ("loop", 1), ("batched", 1)]
)
def test_sampled_step_is_the_scaled_sum_over_the_drawn_tasks(outer, order):
    sampled = dense_model(MAMLMTL(0.3, order, outer=outer, tasks_per_step=2, seed=4))
    sampled.optimizer.iterations.assign(3)
    drawn = sampled.optimization.sampled_tasks(sampled).numpy()
    assert len(set(drawn)) == 2
    # The full scheme with the other task's weight 0 and the drawn ones' T/k.
    scaled = {t.name: 1.5 if k in drawn else 0.0 for k, t in enumerate(TASKS)}
    reference = dense_model(MAMLMTL(0.3, order, outer=outer, balancer=scaled))
    reference.set_weights(sampled.get_weights())
    want, got = traced_step(reference)(X, Y), traced_step(sampled)(X, Y)
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-7)
    # Task losses: outer losses at the adapted weights for the drawn tasks,
    # at the current weights for the other.
    np.testing.assert_allclose(got[2][drawn], want[2][drawn], rtol=1e-6)
    other = [k for k in range(len(TASKS)) if k not in drawn]
    current = outer_losses_at_current_weights(sampled)
    np.testing.assert_allclose(got[2][other], current[other], rtol=1e-6)
    assert not np.allclose(got[2][drawn], current[drawn], rtol=1e-3)


MANY = 40
MANY_X = RNG.normal(size=(256, 8)).astype("float32")
MANY_TASKS = [Task(f"assay{k}", "binary") for k in range(MANY)]
MANY_DIRECTIONS = RNG.normal(size=(8, 4))  # the tasks share 4 directions
MANY_Y = {
    task.name: (MANY_X @ MANY_DIRECTIONS[:, k % 4] > 0).astype("float32")
    for k, task in enumerate(MANY_TASKS)
}


def many_task_model(optimization):
    keras.utils.set_random_seed(0)
    model = MMoEExModel(
        MANY_TASKS, mt.DenseExperts(4, 8), alpha=0.5, optimization=optimization
    )
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    model(MANY_X[:2])
    model.optimizer.build(model.trainable_variables)
    return model


def draws(model, steps):
    drawn = []
    for step in range(steps):
        model.optimizer.iterations.assign(step)
        drawn.append(model.optimization.sampled_tasks(model).numpy())
    return np.array(drawn)


def test_task_draws_and_training_are_reproducible_and_new_every_step():
    one, two, other = (
        many_task_model(MAMLMTL(tasks_per_step=4, seed=seed)) for seed in (7, 7, 8)
    )
    drawn = draws(one, 400)
    np.testing.assert_array_equal(draws(two, 400), drawn)
    assert not np.array_equal(draws(other, 400), drawn)
    assert all(len(set(d)) == 4 and list(d) == sorted(d) for d in drawn)
    assert len({tuple(d) for d in drawn}) > 390
    counts = np.bincount(drawn.ravel(), minlength=MANY)  # 40 expected each
    assert counts.min() > 15 and counts.max() < 65
    for model in (one, two):  # same seed, weights and data: same training
        model.optimizer.iterations.assign(0)
        model.fit(MANY_X, MANY_Y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for want, got in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_task_sampling_settings_survive_a_config_round_trip():
    optimization = MAMLMTL(outer="loop", balancer="dwa", tasks_per_step=3, seed=11)
    config = keras.saving.serialize_keras_object(optimization)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, MAMLMTL)
    assert (restored.tasks_per_step, restored.seed) == (3, 11)
    assert restored.get_config() == optimization.get_config()


@pytest.mark.parametrize("outer, balancer", [("loop", None), ("batched", "dwa")])
def test_many_tasks_train_with_a_few_tasks_per_step(outer, balancer):
    optimization = MAMLMTL(outer=outer, balancer=balancer, tasks_per_step=4)
    model = many_task_model(optimization)
    before = model.evaluate(MANY_X, MANY_Y, verbose=0, return_dict=True)["loss"]
    history = model.fit(MANY_X, MANY_Y, epochs=5, batch_size=32, verbose=0)
    after = model.evaluate(MANY_X, MANY_Y, verbose=0, return_dict=True)["loss"]
    assert optimization.trace_count == 1
    losses = history.history["loss"]  # estimates from 4 tasks of 40: noisy
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0]
    assert after < 0.97 * before
    if balancer == "dwa":  # it got every task's loss, drawn or not
        means = model.balancer.epoch_means.numpy()[1]
        assert np.all(np.isfinite(means)) and means.min() > 0.1


TWO_REPLICAS = """
import keras
import numpy as np
import mmoeex_tf as mt

rng = np.random.default_rng(0)
x = rng.normal(size=(120, 5)).astype("float32")
y = {"flag": (x[:, 0] > 0).astype("float32"), "value": x[:, 1] * 2}
y["value"][::7] = np.nan
tasks = [mt.Task("flag", "binary"), mt.Task("value", "regression")]

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

for options in (
    {},
    {"outer": "loop", "balancer": "uncertainty"},
    {"outer": "batched", "tasks_per_step": 1, "seed": 2},
):
    make = lambda: mt.MAMLMTL(inner_lr=0.5, **options)
    one = train(tf.distribute.get_strategy(), make())
    two = train(mirrored, make())
    error = max(np.abs(a - b).max() / np.abs(a).max() for a, b in zip(one, two))
    print(error)
"""


def test_two_replicas_train_like_one_device():
    errors = run_on_two_cpu_replicas(TWO_REPLICAS)
    assert len(errors) == 3 and max(errors) < 1e-5


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
