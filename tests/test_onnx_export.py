"""export/onnx.py on really trained policies: parity with TensorFlow, the graph, metadata, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf

from export.metadata import METADATA_KEY, PolicyMetadata, sidecar_path
from export.onnx import (ExportResult, ParityError, check_parity, convert, export_onnx, export_policy,
                         parity_observations, policy_metadata)
from export.runtime import OnnxPolicy
from export.sim import run_onnx
from trained_runs import exported_run, trained_run
from trpo_tf import Policy, load_policy
from robots import EnvFactory
from trpo_tf.episodes import run_episodes

TASKS = ["cartpole", "inverted-pendulum", "hopper-bullet"]  # discrete, MuJoCo, PyBullet


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Policy, ExportResult]]:
    return {task: exported_run(task, tmp_path_factory) for task in TASKS}


def _tf_logits(policy: Policy, obs: np.ndarray) -> np.ndarray:
    return policy.actor(tf.constant(obs)).logits_parameter().numpy()


@pytest.mark.parametrize("task", TASKS)
def test_round_trip_matches_tensorflow_within_1e_5(exported, task: str) -> None:
    policy, result = exported[task]
    assert result.max_abs_error <= 1e-5 and result.n_observations >= 1000 and result.n_recorded >= 500
    # An independent check from the file on disk, on observations the gate did not see (another seed).
    obs, _ = parity_observations(policy, 1000, seed=123)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = session.run(["action"], {"observation": obs})[0]
    want = policy.tf_action(tf.constant(obs)).numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    if policy.discrete:
        differ = got != want
        logits = _tf_logits(policy, obs[differ])
        ties = logits[np.arange(differ.sum()), got[differ]] == logits[np.arange(differ.sum()), want[differ]]
        assert ties.all()  # identical argmax except exact ties
    else:
        assert np.max(np.abs(got.astype(np.float64) - want)) <= 1e-5


@pytest.mark.parametrize("task", TASKS)
def test_graph_is_valid_standard_onnx_with_declared_io(exported, task: str) -> None:
    policy, result = exported[task]
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)  # no custom ops
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "observation" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", policy.obs_dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    if policy.discrete:
        assert out.type.tensor_type.elem_type == onnx.TensorProto.INT64 and out_dims == ["N"]
        assert "ArgMax" in {n.op_type for n in model.graph.node}
    else:
        assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and out_dims == ["N", policy.act_dim]


@pytest.mark.parametrize("task", TASKS)
def test_metadata_reads_back_through_onnx_policy_and_sidecar(exported, task: str) -> None:
    policy, result = exported[task]
    runtime = OnnxPolicy(result.path)
    assert runtime.metadata == result.metadata
    assert runtime.metadata == policy_metadata(policy)
    meta = runtime.metadata.to_dict()
    assert (meta["task"], meta["obs_dim"], meta["act_dim"], meta["env_steps"], meta["seed"]) == \
        (policy.info.task, policy.obs_dim, policy.act_dim, policy.env_steps, policy.config.seed)
    assert meta["action_high"] == policy.info.action_high and meta["obs_layout"] == policy.info.obs_layout
    assert ("randomization" in meta) == bool(policy.config.randomization)
    assert runtime.metadata.weights_sha256 == policy.weights_sha256()
    sidecar = json.loads(sidecar_path(result.path).read_text())
    assert PolicyMetadata.from_dict(sidecar) == result.metadata
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert json.loads(props[METADATA_KEY]) == sidecar
    obs, _ = parity_observations(policy, 1000, seed=5)
    for row in obs[::97]:
        want = policy.tf_action(tf.constant(row[None])).numpy()[0]
        np.testing.assert_allclose(runtime.act(row), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_graph_never_leaves_the_action_bounds(exported, task: str) -> None:
    policy, result = exported[task]
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    d = policy.obs_dim
    extreme = np.concatenate([
        rng.standard_normal((2000, d)) * 10.0 ** rng.uniform(-3, 38, (2000, 1)),  # up to ~1e38
        np.full((1, d), np.finfo(np.float32).max), np.full((1, d), -np.finfo(np.float32).max),
        np.full((1, d), np.inf), np.full((1, d), -np.inf), np.zeros((1, d)),
        rng.choice([np.inf, -np.inf, 0.0, 1e30], (500, d)),
    ]).astype(np.float32)
    actions = session.run(["action"], {"observation": extreme})[0]
    if policy.discrete:
        assert ((actions >= 0) & (actions < policy.act_dim)).all()
    else:
        assert np.isfinite(actions).all()
        assert (actions >= policy.action_low).all() and (actions <= policy.action_high).all()


def test_failed_gate_writes_nothing_and_reports_the_error(exported, tmp_path: Path) -> None:
    policy, _ = exported["inverted-pendulum"]
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"previous export")
    with pytest.raises(ParityError) as info:
        export_policy(policy, target, tolerance=-1.0)  # no graph can meet a negative tolerance
    err = info.value
    assert 0.0 <= err.max_abs_error <= 1e-5 and err.n_observations == 1000 and err.tolerance == -1.0
    assert "no file was written" in str(err)
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.onnx"]  # no sidecar, no temp files


@pytest.mark.parametrize("task", ["inverted-pendulum", "cartpole"])
def test_a_perturbed_network_fails_parity(tmp_path_factory, task: str) -> None:
    policy = load_policy(trained_run(task, tmp_path_factory))  # a private copy: we damage it
    metadata = policy_metadata(policy)
    model = convert(policy, metadata)
    obs, n_recorded = parity_observations(policy, 1000)
    assert check_parity(model, policy, obs, 1e-5, n_recorded).max_abs_error <= 1e-5
    if policy.discrete:
        policy.actor.logits_head.bias.assign_add([5.0, -5.0])  # TF now mostly prefers action 0
    else:
        policy.actor.mean_head.bias.assign_add([1e-3])
    with pytest.raises(ParityError) as info:
        check_parity(model, policy, obs, 0.0)
    if policy.discrete:
        assert info.value.max_abs_error > 1.0 and "differing actions" in str(info.value)
    else:
        assert info.value.max_abs_error == pytest.approx(1e-3, rel=1e-2)


def test_bad_arguments_are_value_errors(exported, tmp_path: Path) -> None:
    policy, _ = exported["cartpole"]
    with pytest.raises(ValueError, match="n_parity must be an integer >= 1000"):
        export_policy(policy, tmp_path / "p.onnx", n_parity=10)
    with pytest.raises(ValueError, match="tolerance must be a finite number"):
        export_policy(policy, tmp_path / "p.onnx", tolerance=float("nan"))
    assert not any(tmp_path.iterdir())


def test_export_onnx_from_a_run_directory(tmp_path_factory) -> None:
    """The user's path: run dir → ``<run>/policy.onnx``, and the file is the *trained* policy."""
    run = trained_run("inverted-pendulum", tmp_path_factory)
    result = export_onnx(run)
    assert result.path == run / "policy.onnx" and sidecar_path(result.path).is_file()
    assert result.max_abs_error <= 1e-5
    fresh = load_policy(run)
    assert OnnxPolicy(result.path).metadata.weights_sha256 == fresh.weights_sha256()
    onnx_run = run_onnx(result.path, episodes=3, seed=11)  # closed loop, in a separately loaded policy
    tf_run = run_episodes(lambda o: fresh.tf_action(tf.constant(o)).numpy(), EnvFactory(fresh.info.gym_id),
                          episodes=3, seed=11)
    assert onnx_run["mean_return"] == pytest.approx(tf_run["mean_return"], rel=0.01)
