"""Start-up: `import mmoeex_tf` imports no TensorFlow; once Keras is imported
every class a saved model names is registered, and TensorFlow's native
start-up lines stay silenced; `mmoeex --help` and argument errors answer
without TensorFlow or Keras."""

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

# Loading a saved model after `import mmoeex_tf` and whichever import brings
# Keras in: TensorFlow (which imports Keras part-way through its own import),
# or a module of the package (which has run only in part when Keras is in).
LOAD = """
{first}
import keras
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


@pytest.mark.parametrize(
    "first", ["import mmoeex_tf, tensorflow", "import mmoeex_tf.runs.run"]
)
def test_saved_classes_are_registered_whichever_import_brings_keras(tmp_path, first):
    import numpy as np

    import mmoeex_tf as mt

    model = mt.MMoEExModel([mt.Task("y", "binary")], mt.DenseExperts(2, 3))
    model.predict(np.zeros((2, 4), "float32"), verbose=0)
    model.save(tmp_path / "model.keras")
    result = run_python(LOAD.format(first=first), tmp_path)
    assert result.stdout.split("\n")[-2] == "MMoEExModel"
    assert result.stderr == ""


def test_help_and_argument_errors_do_not_import_tensorflow():
    out = run_python(COMMAND).stdout
    assert out.split("\n")[-2] == "0 2 []"
