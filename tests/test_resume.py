"""Crash safety for real: ``trpo train`` processes killed with SIGKILL at several moments, then
``trpo train --resume`` to the total; determinism of same-seed runs; corrupted checkpoints rejected. What
reads the crashed run afterwards (evaluate, the corrupted-checkpoint refusals) runs in-process through
``main(argv)``: no process start-up needed to show it."""

from __future__ import annotations

import csv
import json
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from cli_helpers import FAST, snapshot, start, trpo

N_STEPS = 256
ITERATIONS = 40
TOTAL = N_STEPS * ITERATIONS
TRAIN = ["--task", "Pendulum-v1", "--set", f"n_steps={N_STEPS}", "eval_episodes=1", *FAST, "--no-progress"]
TIME_COLUMNS = {"time_s", "steps_per_s", "collect_s", "policy_s",
                "acting_s", "env_s", "gae_s", "update_s", "normalizer_s", "critic_wait_s"}  # per-phase seconds (issue 13)


def _main(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """``trpo ARGV`` in this process: exit code, stdout, stderr lines."""
    from trpo_tf.app.cli import main

    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    return code, out, err.strip().splitlines()


def _rows(run: Path) -> list[dict[str, str]]:
    if not (run / "metrics.csv").exists():
        return []
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _checkpoints(run: Path) -> list[int]:
    index = run / "checkpoints" / "checkpoint"
    if not index.exists():
        return []
    text = index.read_text()
    return sorted(int(line.split("ckpt-")[1].rstrip('"')) for line in text.splitlines()
                  if line.startswith("all_model_checkpoint_paths"))


def _kill_when(proc, condition, timeout: float = 180) -> bool:
    """SIGKILL ``proc`` as soon as ``condition()`` holds; False if it exited (finished) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("condition never held")


@pytest.fixture(scope="module")
def crashed_and_resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run killed four times (after its 1st checkpoint; after the 2nd checkpoint of the next process;
    right after a metrics row; at a random moment mid-training), then resumed to the total."""
    run = tmp_path_factory.mktemp("resume") / "run"
    kills = []
    proc = start("train", *TRAIN, "--steps", str(TOTAL), "--out", str(run))
    kills.append(_kill_when(proc, lambda: len(_checkpoints(run)) >= 1))
    first_ckpts = _checkpoints(run)

    proc = start("train", "--resume", str(run))
    kills.append(_kill_when(proc, lambda: _checkpoints(run) and max(_checkpoints(run)) >= max(first_ckpts) + 2))

    proc = start("train", "--resume", str(run))
    rng = random.Random(1234)
    seen = len(_rows(run))
    # Right after a metrics row is appended, most likely before that iteration's checkpoint is saved.
    kills.append(_kill_when(proc, lambda: len(_rows(run)) > seen))
    # At a random moment (0–0.4 s) after training is under way again: mid-collection, -update or -save.
    proc = start("train", "--resume", str(run))
    seen = len(_rows(run))
    delay = rng.uniform(0.0, 0.4)
    moment: dict[str, float] = {}

    def random_moment() -> bool:
        if len(_rows(run)) > seen and "t" not in moment:
            moment["t"] = time.monotonic() + delay
        return "t" in moment and time.monotonic() >= moment["t"]

    kills.append(_kill_when(proc, random_moment))
    final = trpo("train", "--resume", str(run), "--no-progress")
    return {"run": run, "kills": kills, "final": final}


def test_every_kill_happened_before_the_end(crashed_and_resumed: dict) -> None:
    assert all(crashed_and_resumed["kills"]), crashed_and_resumed["kills"]


def test_resume_completes_to_the_total(crashed_and_resumed: dict) -> None:
    final = crashed_and_resumed["final"]
    assert final.returncode == 0, final.stderr
    assert "resumed" in final.stderr and f"{TOTAL:,} env steps" in final.stdout


def test_metrics_have_each_iteration_exactly_once(crashed_and_resumed: dict) -> None:
    rows = _rows(crashed_and_resumed["run"])
    assert [int(r["iteration"]) for r in rows] == list(range(1, ITERATIONS + 1))
    assert [int(r["env_steps"]) for r in rows] == [N_STEPS * i for i in range(1, ITERATIONS + 1)]


def test_newest_checkpoint_restores(crashed_and_resumed: dict, capfd: pytest.CaptureFixture[str]) -> None:
    run = crashed_and_resumed["run"]
    assert max(_checkpoints(run)) == ITERATIONS
    before = json.loads((run / "eval.json").read_text())
    code, out, err = _main(["evaluate", str(run), "--episodes", "1", "--json"], capfd)
    assert code == 0, err
    ev = json.loads(out)
    assert ev["iteration"] == ITERATIONS and ev["env_steps"] == TOTAL
    # The restored policy is the one that ran the final evaluation: same seed, same return.
    assert ev["returns"] == pytest.approx(before["returns"], abs=1e-6)


def test_same_seed_gives_identical_first_iterations(tmp_path: Path) -> None:
    """Two fresh runs, one in-process env each, same seed: the first 3 metrics rows match (time columns aside)."""
    rows = []
    for name in ("a", "b"):
        result = trpo("train", *TRAIN, "--steps", str(3 * N_STEPS), "--seed", "7", "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        rows.append([{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in _rows(tmp_path / name)])
    assert len(rows[0]) == 3 and rows[0] == rows[1]


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_corrupted_checkpoint_is_rejected(crashed_and_resumed: dict, tmp_path: Path, damage: str,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(crashed_and_resumed["run"], run)
    data = run / "checkpoints" / f"ckpt-{ITERATIONS}.data-00000-of-00001"
    blob = bytearray(data.read_bytes())
    if damage == "truncate":
        data.write_bytes(bytes(blob[: len(blob) // 2]))
    else:
        rng = random.Random(0)
        for i in range(len(blob) // 4, len(blob) // 4 + 256):
            blob[i] = rng.randrange(256)
        data.write_bytes(bytes(blob))
    before = snapshot(run)
    code, _, err = _main(["train", "--resume", str(run), "--steps", str(TOTAL + N_STEPS), "--no-progress"], capfd)
    assert code == 2 and len(err) == 1 and err[0].startswith("trpo") and ": error: " in err[0], err
    line = err[0]
    assert "corrupted" in line and f"ckpt-{ITERATIONS}" in line
    assert snapshot(run) == before
