"""Start-up: `import mmoeex_tf` leaves TensorFlow unloaded until a model class
is used, and `mmoeex --help` and argument errors answer without it."""

import os
import subprocess
import sys

import pytest

PUBLIC_NAMES = """
import sys
import mmoeex_tf as mt
before = "tensorflow" in sys.modules
task = mt.Task("y", "binary")
loaded = [mt.MMoEExModel.__name__, mt.DenseExperts.__name__, mt.layers.__name__]
print(before, "tensorflow" in sys.modules, *loaded, sorted(set(mt.__all__) - set(dir(mt))))
"""

COMMAND = """
import sys
from mmoeex_tf.cli.main import main
codes = [main(["--help"]), main(["train", "--epochs", "x"])]
print(*codes, sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def run_python(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    return result


def test_public_names_load_tensorflow_on_first_use_quietly():
    result = run_python(PUBLIC_NAMES)
    assert result.stdout.split("\n")[-2] == (
        "False True MMoEExModel DenseExperts mmoeex_tf.layers []"
    )
    assert result.stderr == ""  # TensorFlow's native start-up lines silenced


@pytest.mark.xfail(
    strict=True,
    reason="the parser's RunConfig still imports TensorFlow through "
    "mmoeex_tf.runs, mmoeex_tf.datasets, mmoeex_tf.layers and mmoeex_tf.training",
)
def test_help_and_argument_errors_do_not_import_tensorflow():
    out = run_python(COMMAND).stdout
    assert out.split("\n")[-2] == "0 2 []"
