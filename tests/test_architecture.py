"""The layers are a contract (pyproject.toml, docs/architecture.md): ``lint-imports`` passes, a planted
violation breaks it, and no project module reaches itself through imports (function-level ones included)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
PACKAGES = ("trpo_tf", "export", "robots")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    assert LINT_IMPORTS is not None, "import-linter is not installed (pip install import-linter)"
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)})


def test_lint_imports_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _copy_sources(dest: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dest)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.yaml",
                                                                                      "*.xml"))


def test_a_learner_module_importing_robots_breaks_the_contract(tmp_path: Path) -> None:
    _copy_sources(tmp_path)
    with open(tmp_path / "trpo_tf" / "advantages.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _planted():\n    import robots  # noqa: F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout
    assert "trpo_tf.advantages -> robots" in result.stdout


def test_the_runtime_importing_tensorflow_breaks_the_contract(tmp_path: Path) -> None:
    _copy_sources(tmp_path)
    with open(tmp_path / "export" / "control.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _planted():\n    import tensorflow  # noqa: F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "export.control -> tensorflow" in result.stdout


def test_no_project_module_imports_itself_through_a_cycle() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    cycles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.append(" -> ".join((importer, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles[:10])
