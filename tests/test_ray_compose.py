"""compose.ray.yaml: one image for a Ray head, worker nodes and the trainer (no Docker engine here: the file is
checked as YAML against the commands docs/scaling.md documents)."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "compose.ray.yaml"


def test_a_head_two_workers_and_a_driver_from_one_image():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {s["image"] for s in services.values()} == {"trpo-tf"}
    head, worker, train = services["ray-head"], services["ray-worker"], services["train"]
    assert head["entrypoint"] == worker["entrypoint"] == ["ray"]
    assert head["command"][:2] == ["start", "--head"] and "--port=6379" in head["command"]
    assert "--address=ray-head:6379" in worker["command"] and worker["deploy"]["replicas"] == 2
    assert "--block" in head["command"] and "--block" in worker["command"]
    assert train["entrypoint"] == ["trpo"] and train["command"][:1] == ["train"]
    assert train["command"][train["command"].index("--ray") + 1] == "ray-head:6379"
    for service in services.values():  # one token for every node and the driver; room for the object store
        assert service["environment"]["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" in service["environment"]
        assert service["shm_size"]
