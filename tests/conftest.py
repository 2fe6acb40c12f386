"""Shared test settings: quiet TensorFlow, deterministic seeds, data paths."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

# The shared real data sets, beside the repository; every test reads them
# through the `shared_data` fixture.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def shared_data():
    """Path of the shared real data sets; skips the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip("shared data folder ../shared/data not found")
    return SHARED_DATA
