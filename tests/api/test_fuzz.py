"""schemathesis against the live API, every check: no 500, answers as documented, bad input refused.

The operations run on a real task (fetch_block of PointMass, see `FUZZ_CONFIG`); nothing trains
(the live server's worker is off), so starts queue, cancels cancel and the stream of a finished
session ends. The suite runs a bounded sample; `make fuzz` runs every phase with many more examples
(`FUZZ_EXAMPLES`, `FUZZ_PHASES`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import LiveDaphne
from training.tokens import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ_CONFIG = """
[parameters]
"path.task_name" = "fetch_block"
"query.robot" = "PointMass"
"""


def test_schemathesis_finds_nothing(api_daphne: LiveDaphne, fetch_block, researcher, tmp_path: Path) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("schemathesis is not installed (requirements-test.txt)")
    token = ApiToken.issue(researcher, name="fuzz")[1]
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG)
    argv = [
        executable, "--config-file", str(config), "run", api_daphne.url("/api/openapi.json"),
        "--header", f"Authorization: Bearer {token}", "--checks", "all",
        "--phases", os.environ.get("FUZZ_PHASES", "coverage,fuzzing"),
        "--max-examples", os.environ.get("FUZZ_EXAMPLES", "15"),
        "--seed", os.environ.get("FUZZ_SEED", "20261130"), "--request-timeout", "10", "--workers", "1",
        "--no-color",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900)  # argv list, never a shell
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-6000:]
