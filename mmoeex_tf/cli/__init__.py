"""The `mmoeex` command line."""

from mmoeex_tf.cli.main import main

__all__ = ["main"]
