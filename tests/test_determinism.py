"""Same seed, same data, same machine: identical training logs and weights."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "scripts" / "deterministic_fit.py"


def run(seed):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_same_seed_gives_identical_runs():
    first, second = run(7), run(7)
    assert first == second
    assert first != run(8)
