"""tasks.genhrl stays framework-free: trainers and scripts can use it without Django."""

from __future__ import annotations

import subprocess
import sys

from tests.factories import REPO_ROOT


def test_genhrl_module_imports_without_django():
    code = "import sys, tasks.genhrl; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
