"""The layers of docs/ARCHITECTURE.md, checked on every import of the project's own code.

1. pure (no Django): GenHRL parsing, the trainer, the process executor, outcome judgement;
2. models and configuration; 3. domain (verbs, leases, queries, snapshots, permissions, estimates,
live delivery); 4. engine, and helpers an app's commands share; 5. entry points (pages, API, admin, each command); 6. routing (URLs, ASGI).

Each module imports only its own layer or lower; an entry point never imports another entry
point, and web entry points never import the engine; below the entry points `tasks` imports
nothing from `training`. Imports inside functions count too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tasks", "training", "genhrl_site")

# (module prefix, layer, entry-point group). The longest matching prefix wins.
LAYERS: list[tuple[str, int, str]] = [
    ("tasks.genhrl", 1, ""),
    ("tasks.scene", 1, ""),
    ("training.trainer", 1, ""),
    ("training.executor", 1, ""),
    ("training.ray_executor", 1, ""),
    ("training.outcomes", 1, ""),
    ("training.hoststats", 1, ""),
    ("training.metrics", 1, ""),  # TensorBoard scalars of a run folder, downsampled  # psutil and NVML figures of a host and a process group
    ("genhrl_site.env", 2, ""),
    ("genhrl_site.settings", 2, ""),
    ("genhrl_site.converters", 2, ""),
    ("genhrl_site.errors", 2, ""),
    ("genhrl_site.security", 2, ""),
    ("tasks.apps", 2, ""),
    ("tasks.models", 2, ""),
    ("training.apps", 2, ""),
    ("training.models", 2, ""),
    ("training.tokens", 2, ""),
    ("training.config", 2, ""),
    ("training.paths", 2, ""),
    ("training.signals", 2, ""),
    ("training.lab_models", 2, ""),  # presets, sweeps, workers' figures, notifications, limits
    ("training.eval_models", 2, ""),  # a skill's evaluations (issue 13)
    ("tasks.importer", 3, ""),
    ("training.services", 3, ""),
    ("training.leases", 3, ""),
    ("training.queries", 3, ""),
    ("training.snapshots", 3, ""),
    ("training.permissions", 3, ""),
    ("training.estimates", 3, ""),
    ("training.pruning", 3, ""),
    ("training.sse", 3, ""),  # the relay and the stream body: delivery, used by the API and ASGI
    ("training.queueing", 3, ""),  # the fair queue: claim order, limits, positions, staff moves
    ("training.presets", 3, ""),
    ("training.sweeps", 3, ""),
    ("training.monitoring", 3, ""),
    ("training.notifications", 3, ""),
    ("training.comparison", 3, ""),  # history filters, a run's metrics, sessions side by side
    ("training.evaluations", 3, ""),  # evaluate verbs and reads, the background process (issue 13)
    ("training.artifacts", 3, ""),  # videos, archives, TensorBoard run names (issue 13)
    ("training.engine", 4, ""),
    ("tasks.views", 5, "tasks-pages"),
    ("tasks.forms", 5, "tasks-pages"),
    ("tasks.templatetags", 5, "tasks-pages"),
    ("tasks.admin", 5, "tasks-admin"),
    ("training.views", 5, "training-pages"),
    ("training.forms", 5, "training-pages"),
    ("training.lab_views", 5, "training-pages"),
    ("training.lab_forms", 5, "training-pages"),
    ("training.explore_views", 5, "training-pages"),
    ("training.explore_forms", 5, "training-pages"),
    ("training.media_views", 5, "training-pages"),  # videos, downloads, evaluate, flat baseline (issue 13)
    ("training.templatetags", 5, "training-pages"),
    ("training.api", 5, "api"),
    ("training.admin", 5, "training-admin"),
    ("tasks.urls", 6, ""),
    ("training.urls", 6, ""),
    ("training.api.urls", 6, ""),
    ("genhrl_site.urls", 6, ""),
    ("genhrl_site.asgi", 6, ""),
    ("genhrl_site.wsgi", 6, ""),
]
WEB_GROUPS = {"tasks-pages", "training-pages", "api", "tasks-admin", "training-admin"}
NOT_DJANGO_FREE = ("django", "ninja", "django_eventstream", "django_htmx", "rest_framework")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            if "migrations" in path.parts or "demo" in path.parts:
                continue
            found[module_name(path)] = path
    return found


def classify(module: str) -> tuple[int, str]:
    """(layer, group) of a module; a management command is an entry point of its own."""
    if ".management.commands." in module:
        return 5, module
    if ".management" in module:
        return 4, ""  # helpers the commands of an app share (what they print)
    if module in PACKAGES:
        return 2, ""
    best = max((prefix for prefix, _, _ in LAYERS if module == prefix or module.startswith(prefix + ".")),
               key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} has no layer: add it to LAYERS (and to docs/ARCHITECTURE.md)")
    _, layer, group = next(entry for entry in LAYERS if entry[0] == best)
    return layer, group


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, anywhere in it (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.add(target)
            # `from training import queries` imports the module training.queries.
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def project_imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    return {name for name in imports_of(path, module) if name in known and name != module}


def violations() -> list[str]:
    known = project_modules()
    problems = []
    for module, path in sorted(known.items()):
        layer, group = classify(module)
        for target in sorted(project_imports(path, module, known)):
            if target in PACKAGES:
                continue
            target_layer, target_group = classify(target)
            where = f"{module} (layer {layer}) imports {target} (layer {target_layer})"
            if layer == 6:
                continue
            if layer == 5:
                if target_layer == 5 and target_group != group:
                    problems.append(f"{where}: entry points never import each other")
                elif target_layer == 6:
                    problems.append(f"{where}: entry points never import routing")
                elif group in WEB_GROUPS and target.startswith("training.engine"):
                    problems.append(f"{where}: web entry points reach the engine through training.signals")
                continue
            if target_layer > layer:
                problems.append(f"{where}: imports point downward only")
            if module.startswith("tasks.") and target.startswith("training"):
                problems.append(f"{where}: below the entry points, tasks imports nothing from training")
        if layer == 1:
            for name in imports_of(path, module):
                if name.split(".")[0] in NOT_DJANGO_FREE:
                    problems.append(f"{module} (layer 1, pure) imports {name}")
    return problems


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


def test_every_module_has_a_layer() -> None:
    for module in project_modules():
        classify(module)


def test_the_layer_walk_sees_lazy_and_relative_imports() -> None:
    """The checker itself: an import inside a function and a relative import are both found."""
    path = REPO_ROOT / "training" / "trainer" / "__main__.py"
    found = imports_of(path, "training.trainer.__main__")
    assert "training.trainer.records" in found  # `from . import records`
    assert "training.trainer.embedded" in found  # imported inside main()


def test_trainer_and_executor_import_no_django() -> None:
    code = (
        "import sys, training.trainer.__main__, training.executor, training.ray_executor, training.outcomes, "
        "training.hoststats, "
        "tasks.genhrl; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'ninja', 'django_eventstream')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(  # argv list, never a shell
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", ["training.views", "training.api.views", "training.admin", "tasks.views"])
def test_web_entry_points_do_not_load_the_engine(module: str) -> None:
    """Importing a page or the API loads no engine module (signals reach the worker and relay)."""
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'genhrl_site.settings'; django.setup(); "
        f"import {module}; bad = sorted(m for m in sys.modules if m.startswith('training.engine')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(  # argv list, never a shell
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
