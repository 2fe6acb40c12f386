"""Start-up: `import mmoeex_tf` loads TensorFlow quietly and registers every
class a saved model names; `mmoeex --help` and argument errors should
answer without TensorFlow (not yet)."""

import os
import subprocess
import sys

import pytest

PUBLIC_NAMES = """
import mmoeex_tf as mt
import keras, numpy as np
model = mt.MMoEExModel([mt.Task("y", "binary")], mt.DenseExperts(2, 3))
model.predict(np.zeros((2, 4), "float32"), verbose=0)
model.save("model.keras")
print(type(keras.saving.load_model("model.keras")).__name__)
"""

COMMAND = """
import sys
from mmoeex_tf.cli.main import main
codes = [main(["--help"]), main(["train", "--epochs", "x"])]
print(*codes, sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def run_python(code, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result


def test_import_is_quiet_and_registers_the_saved_classes(tmp_path):
    result = run_python(PUBLIC_NAMES, tmp_path)
    assert result.stdout.split("\n")[-2] == "MMoEExModel"
    assert result.stderr == ""  # TensorFlow's native start-up lines silenced


@pytest.mark.xfail(
    strict=True,
    reason="the parser's RunConfig still imports TensorFlow through "
    "mmoeex_tf.runs, mmoeex_tf.datasets, mmoeex_tf.layers and mmoeex_tf.training",
)
def test_help_and_argument_errors_do_not_import_tensorflow():
    out = run_python(COMMAND).stdout
    assert out.split("\n")[-2] == "0 2 []"
