"""Turning a trained model into a subclass that carries more of its data."""


def converted(model, cls, **config):
    """A `cls` model with the layers, weights and compile config of `model`.

    Used to save a trained `MMoEExModel` as a subclass that also carries its
    data's preprocessing (`TableModel`, `InputStatisticsModel`). An uncompiled
    `model` gives an uncompiled copy.

    Args:
        model: A built `MMoEExModel`.
        cls: The `MMoEExModel` subclass to make.
        **config: The constructor arguments `cls` adds to `model`'s config.

    Returns:
        The new model, built, with `model`'s weights.
    """
    copy = cls.from_config({**model.get_config(), **config})
    copy.build(model.get_build_config()["input_shape"])
    copy.set_weights(model.get_weights())
    compile_config = model.get_compile_config()
    if compile_config:
        copy.compile_from_config(compile_config)
    return copy
