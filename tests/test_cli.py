"""The ``trpo`` command through real subprocesses: help, tasks, a short real training run, evaluate, export,
and every kind of bad input (exit 2, one ``trpo: error:`` line, no traceback, nothing written).

Every bad case runs in-process through ``main(argv)`` (the code a process runs); :data:`PROCESS_CASES`, one per
command and per point where ``train`` stops, also run as real processes: what only a process shows (a whole
stderr of one line, with no native-library start-up chatter) depends on what the command imports, not on the
case. (A process start-up costs seconds: TensorFlow's import.)"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from cli_helpers import FAST, TRPO, snapshot, trpo, user_error_line

COMMANDS = ["tasks", "train", "evaluate", "export", "run-onnx", "render", "plot", "bench", "demo"]
BAD_CASES = [
    "unknown task", "unknown --set key", "ill-typed --set value", "delta <= 0", "gamma > 1", "steps <= 0",
    "non-integer --seed", "missing config file", "invalid yaml", "unknown key in config file",
    "out is an existing run", "resume missing dir", "resume foreign dir", "resume with --task",
    "evaluate missing dir", "evaluate foreign dir", "export foreign dir", "render unknown format",
    "plot missing dir", "run-onnx missing file", "unknown command",
]
PROCESS_CASES = [  # by what the process has loaded when it fails: argparse only; TensorFlow + robots (train
    #                 before its env, and after MuJoCo made one); + onnx/tf2onnx (export); + OSMesa (render);
    #                 matplotlib (plot); onnxruntime (run-onnx)
    "unknown command", "unknown task", "out is an existing run", "export foreign dir", "render unknown format",
    "plot missing dir", "run-onnx missing file",
]
EXPECTED = {  # case → what its error line says
    "unknown task": "unknown task 'no-such-robot'",
    "unknown --set key": "unknown config key 'learning_rate'",
    "ill-typed --set value": "max_kl",
    "delta <= 0": "max_kl must be > 0",
    "gamma > 1": "gamma must be in (0, 1]",
    "steps <= 0": "total_steps must be > 0",
    "out is an existing run": "already exists",
    "resume foreign dir": "not a trpo-tf run directory",
    "render unknown format": ".mp4 or .gif",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gripper-reach, 3 iterations of 64 steps, configured through every layer: preset ← file ← --set ← flag."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "settings.yaml"
    config.write_text("n_steps: 128\nmax_kl: 0.05\ntotal_steps: 99999\neval_episodes: 2\n")
    out = root / "reach"
    result = trpo("train", "--task", "gripper-reach", "--config", str(config), "--set", "max_kl=0.03",
                  "n_steps=64", *FAST, "--steps", "192", "--seed", "3", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"run {out}: 3 iterations" in result.stdout
    return out


def test_help_lists_every_command() -> None:
    result = trpo("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    module = subprocess.run([sys.executable, "-m", "trpo_tf", "train", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert module.returncode == 0 and "--resume" in module.stdout and "--set" in module.stdout


def test_tasks_json_parses_and_describes_each_task() -> None:
    result = trpo("tasks", "--json")
    assert result.returncode == 0, result.stderr
    tasks = {t["name"]: t for t in json.loads(result.stdout)}
    assert {"gripper-reach", "hopper-bullet", "inverted-pendulum"} <= set(tasks)
    reach = tasks["gripper-reach"]
    assert reach["gym_id"] == "robots/GripperReach-v0" and reach["simulator"] == "mujoco"
    assert sum(f["size"] for f in reach["obs_layout"]) == reach["obs_dim"] == 16
    assert {"family", "act_dim", "control_hz"} <= set(reach)
    table = trpo("tasks")
    assert table.returncode == 0 and "robots/HopperBullet-v0" in table.stdout


def test_train_writes_a_complete_run_directory(run_dir: Path) -> None:
    for name in ("config.yaml", "run.json", "metrics.csv", "eval.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "checkpoints" / "checkpoint").is_file()
    assert any((run_dir / "tb").glob("events.out.tfevents.*"))
    rows = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3 and rows[0].startswith("iteration,env_steps")
    assert [int(r.split(",")[1]) for r in rows[1:]] == [64, 128, 192]
    ev = json.loads((run_dir / "eval.json").read_text())
    assert ev["episodes"] == 2 and "success_rate" in ev and len(ev["returns"]) == 2


def test_config_layers_apply_in_order(run_dir: Path) -> None:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["task"] == "gripper-reach"
    assert config["gamma"] == 0.98 and config["init_log_std"] == -0.5  # preset (defaults are 0.99, 0.0)
    assert config["eval_episodes"] == 2  # file over default
    assert config["max_kl"] == 0.03 and config["n_steps"] == 64  # --set over file over preset
    assert config["total_steps"] == 192 and config["seed"] == 3  # flags over everything


def test_evaluate_json_reproduces_the_final_evaluation(run_dir: Path) -> None:
    before = json.loads((run_dir / "eval.json").read_text())
    result = trpo("evaluate", str(run_dir), "--episodes", "2", "--json")
    assert result.returncode == 0, result.stderr
    ev = json.loads(result.stdout)
    assert {"mean_return", "std_return", "episodes", "success_rate"} <= set(ev)
    assert ev["episodes"] == 2 and ev["env_steps"] == 192
    # Same checkpoint, same default seeds (10000 + run seed), deterministic actions: the same episodes.
    assert ev["returns"] == pytest.approx(before["returns"], abs=1e-6)
    assert json.loads((run_dir / "eval.json").read_text()) == ev


def test_export_writes_an_onnx_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reach.onnx"
    result = trpo("export", str(run_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.is_file() and out.stat().st_size > 1000
    assert "parity vs TensorFlow: max abs error" in result.stdout


def _bad_cases(root: Path, run_dir: Path) -> dict[str, list[str]]:
    """name → argv; every case must fail with exit 2 before writing anything."""
    foreign = root / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a run\n")
    bad_yaml = root / "bad.yaml"
    bad_yaml.write_text("max_kl: [0.01\n")
    unknown_key = root / "unknown.yaml"
    unknown_key.write_text("learning_rate: 0.1\n")
    out = str(root / "new-run")
    train = ["train", "--task", "Pendulum-v1", "--out", out, "--no-progress"]
    return {
        "unknown task": ["train", "--task", "no-such-robot", "--out", out],
        "unknown --set key": [*train, "--set", "learning_rate=0.1"],
        "ill-typed --set value": [*train, "--set", "max_kl=large"],
        "delta <= 0": [*train, "--set", "max_kl=0"],
        "gamma > 1": [*train, "--set", "gamma=1.5"],
        "steps <= 0": [*train, "--steps", "0"],
        "non-integer --seed": [*train, "--seed", "abc"],
        "missing config file": [*train, "--config", str(root / "missing.yaml")],
        "invalid yaml": [*train, "--config", str(bad_yaml)],
        "unknown key in config file": [*train, "--config", str(unknown_key)],
        "out is an existing run": ["train", "--task", "gripper-reach", "--out", str(run_dir)],
        "resume missing dir": ["train", "--resume", str(root / "missing-run")],
        "resume foreign dir": ["train", "--resume", str(foreign)],
        "resume with --task": ["train", "--resume", str(run_dir), "--task", "hopper"],
        "evaluate missing dir": ["evaluate", str(root / "missing-run")],
        "evaluate foreign dir": ["evaluate", str(foreign)],
        "export foreign dir": ["export", str(foreign)],
        "render unknown format": ["render", str(run_dir), "--out", str(root / "video.avi")],
        "plot missing dir": ["plot", str(root / "missing-run"), "--out", str(root / "curve.png")],
        "run-onnx missing file": ["run-onnx", str(root / "missing.onnx")],
        "unknown command": ["fly"],
    }


def test_every_bad_case_is_listed(tmp_path: Path) -> None:
    assert list(_bad_cases(tmp_path, tmp_path / "run")) == BAD_CASES
    assert set(PROCESS_CASES) <= set(BAD_CASES) and set(EXPECTED) <= set(BAD_CASES)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(case: str, run_dir: Path, tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, in an otherwise empty working directory (commands resolve relative paths from it)."""
    from trpo_tf.app.cli import main

    root = tmp_path / "bad"
    root.mkdir()
    argv = _bad_cases(root, run_dir)[case]
    before_root, before_run = snapshot(root), snapshot(run_dir)
    capfd.readouterr()
    monkeypatch.chdir(root)
    code = main(argv)
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("trpo") and ": error: " in err[0], err
    assert len(err[0]) < 1000  # one line, even when it lists every known config key
    assert EXPECTED.get(case, "") in err[0]
    assert snapshot(root) == before_root, "a failing command created or changed files in its working directory"
    assert snapshot(run_dir) == before_run, "a failing command touched the existing run directory"


@pytest.fixture(scope="module")
def bad_results(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Run :data:`PROCESS_CASES` (two at a time) as real processes in an otherwise empty working directory; keep
    result + snapshots."""
    root = tmp_path_factory.mktemp("bad")
    cases = {k: v for k, v in _bad_cases(root, run_dir).items() if k in PROCESS_CASES}
    assert set(cases) == set(PROCESS_CASES)
    before_root, before_run = snapshot(root), snapshot(run_dir)

    def one(argv: list[str]) -> subprocess.CompletedProcess:
        return trpo(*argv, cwd=root, timeout=180)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(cases, pool.map(one, cases.values())))
    return {"results": results, "unchanged": (before_root == snapshot(root), before_run == snapshot(run_dir))}


@pytest.mark.parametrize("case", PROCESS_CASES)
def test_bad_input_in_a_process_exits_2_with_an_error_line(bad_results: dict, case: str) -> None:
    line = user_error_line(bad_results["results"][case])
    assert EXPECTED.get(case, "") in line


def test_bad_input_in_a_process_writes_nothing(bad_results: dict) -> None:
    root_unchanged, run_unchanged = bad_results["unchanged"]
    assert root_unchanged, "a failing command created or changed files in its working directory"
    assert run_unchanged, "a failing command touched the existing run directory"


def test_bad_input_is_one_line_on_stderr(bad_results: dict) -> None:
    """The whole stderr of a process is the error line: no native-library start-up chatter before it."""
    noisy = {case: r.stderr.strip().splitlines()[:-1] for case, r in bad_results["results"].items()
             if len(r.stderr.strip().splitlines()) != 1}
    assert not noisy, f"stderr had extra lines, e.g. {next(iter(noisy.items()))}"


def test_console_script_is_installed_and_its_entry_point_exists() -> None:
    import importlib

    from cli_helpers import script_target

    assert TRPO is not None and Path(TRPO).is_file()
    module, _, name = script_target().partition(":")
    assert callable(getattr(importlib.import_module(module), name))
