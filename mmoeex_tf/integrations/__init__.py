"""Bridges to SavedModel, Keras Tuner, callbacks and multi-worker training."""
