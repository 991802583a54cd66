"""The web process's garbage collector (genhrl_site/asgi.py, GENHRL_GC_YOUNG_THRESHOLD): what daphne
loaded is frozen and young collections are rare, so full collections do not pause a thousand
streams (bench_progress measures the effect); 0 leaves Python's defaults.

Checked in a real interpreter that loads the ASGI application the way daphne does.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.factories import REPO_ROOT, child_env

PROBE = (
    "import gc, json, genhrl_site.asgi; "
    "print(json.dumps({'threshold': gc.get_threshold(), 'frozen': gc.get_freeze_count()}))"
)


def web_process_gc(tmp_path, setting: str | None) -> dict:
    env = child_env(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, GENHRL_EMBEDDED_WORKER="0")
    env.pop("GENHRL_GC_YOUNG_THRESHOLD", None)
    if setting is not None:
        env["GENHRL_GC_YOUNG_THRESHOLD"] = setting
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def pythons_default() -> int:
    done = subprocess.run([sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"], capture_output=True,
                          text=True, timeout=30, check=True)
    return int(done.stdout)


@pytest.mark.parametrize(("setting", "young", "frozen"), [(None, 50_000, True), ("0", None, False)])
def test_the_web_process_freezes_what_it_loaded_and_collects_young_objects_rarely(tmp_path, setting, young, frozen):
    young = young or pythons_default()  # 700 in Python 3.11 and 3.12
    seen = web_process_gc(tmp_path, setting)
    assert seen["threshold"][0] == young
    assert (seen["frozen"] > 50_000) is frozen  # Django and the apps: ~120,000 objects
