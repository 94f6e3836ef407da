"""export/runtime.py: OnnxPolicy on real ONNX files with real onnxruntime sessions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.runtime import OnnxPolicy, float32_bounds
from export.builders import build_mlp_model, make_metadata, write_mlp

OBS, ACT = 11, 3
LOW, HIGH = [0.2, -1.0, -3.0], [0.8, 1.0, -2.0]  # zero lies outside dims 0 and 2
SAFE = np.array([0.2, 0.0, -2.0], np.float32)  # the zero action clipped into the bounds
N_ACTIONS = 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("policies")
    return {
        "cont": write_mlp(d / "cont.onnx", obs_dim=OBS, act_dim=ACT, low=LOW, high=HIGH),
        # The graph does not clip: the runtime's own clip must keep actions in the bounds.
        "unclipped": write_mlp(
            d / "unclipped.onnx", obs_dim=OBS, act_dim=ACT, low=LOW, high=HIGH, clip=False
        ),
        "disc": write_mlp(d / "disc.onnx", obs_dim=OBS, act_dim=N_ACTIONS, discrete=True),
        "nan_out": write_mlp(d / "nan.onnx", obs_dim=OBS, act_dim=ACT, low=LOW, high=HIGH, sqrt_input=True),
        "bad_index": write_mlp(d / "idx.onnx", obs_dim=OBS, act_dim=N_ACTIONS, discrete=True, index_offset=7),
    }


def _in_bounds(a: np.ndarray) -> bool:
    """Inside the exact metadata bounds, compared in float64."""
    a = np.asarray(a, np.float64)
    return bool(np.isfinite(a).all() and (a >= LOW).all() and (a <= HIGH).all())


def test_act_1d_and_2d_agree_with_raw_onnxruntime(files: dict[str, Path]) -> None:
    policy = OnnxPolicy(files["cont"])
    raw = ort.InferenceSession(str(files["cont"]), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((5, OBS)).astype(np.float32)
    # the graph clips to float32(0.8) = 0.800000012; the runtime to the inward-rounded 0.79999995
    expected = np.clip(raw.run(["action"], {"observation": x})[0], policy.action_low, policy.action_high)
    batch = policy.act(x)
    assert batch.shape == (5, ACT) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, expected)
    for i in range(5):
        one = policy.act(x[i])
        assert one.shape == (ACT,) and one.dtype == np.float32
        np.testing.assert_array_equal(one, expected[i])
    np.testing.assert_array_equal(policy.act(x[0].astype(np.float64)), expected[0])
    np.testing.assert_array_equal(policy.act(x[0].tolist()), expected[0])
    assert policy.metadata.obs_dim == OBS and policy.metadata.act_dim == ACT
    np.testing.assert_array_equal(policy.safe_action, SAFE)


def test_returned_action_is_a_fresh_array_and_input_is_untouched(files: dict[str, Path]) -> None:
    policy = OnnxPolicy(files["cont"])
    x = np.linspace(-1, 1, OBS).astype(np.float32)
    x_copy = x.copy()
    a = policy.act(x)
    a_copy = a.copy()
    a[:] = 123.0
    np.testing.assert_array_equal(policy.act(x), a_copy)
    np.testing.assert_array_equal(x, x_copy)


def test_discrete_policy(files: dict[str, Path]) -> None:
    policy = OnnxPolicy(files["disc"], on_invalid="zero")
    x = np.random.default_rng(2).standard_normal((20, OBS)).astype(np.float32)
    batch = policy.act(x)
    assert batch.shape == (20,) and batch.dtype == np.int64
    assert len(set(batch.tolist())) > 1  # the test policy is not constant
    for i in range(20):
        one = policy.act(x[i])
        assert type(one) is int and one == batch[i]
    assert policy.act(np.full(OBS, np.inf)) == 0  # safe discrete action: index 0
    assert policy.safe_action == 0


def test_runtime_clips_an_unclipped_graph(files: dict[str, Path]) -> None:
    policy = OnnxPolicy(files["unclipped"])
    raw = ort.InferenceSession(str(files["unclipped"]), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((64, OBS)).astype(np.float32) * 10
    unclipped = raw.run(["action"], {"observation": x})[0]
    assert not _in_bounds(unclipped)  # the graph alone violates the bounds
    clipped = policy.act(x)
    np.testing.assert_array_equal(clipped, np.clip(unclipped, policy.action_low, policy.action_high))
    assert _in_bounds(clipped) and all(_in_bounds(policy.act(row)) for row in x)


def test_float32_bounds_round_inward() -> None:
    low, high = float32_bounds((0.2, -1.0, -0.1), (0.8, 1.0, 0.3))
    assert low.dtype == high.dtype == np.float32
    assert (low.astype(np.float64) >= (0.2, -1.0, -0.1)).all()
    assert (high.astype(np.float64) <= (0.8, 1.0, 0.3)).all()
    assert high[0] == np.nextafter(np.float32(0.8), np.float32(0)) and low[1] == -1 and high[1] == 1


def test_on_invalid_raise_zero_hold_single(files: dict[str, Path]) -> None:
    x = np.full(OBS, 0.3, np.float32)
    bad = x.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match=r"NaN/Inf .* index\(es\) \[4\]"):
        OnnxPolicy(files["cont"], on_invalid="raise").act(bad)

    zero = OnnxPolicy(files["cont"], on_invalid="zero")
    zero.act(x)
    np.testing.assert_array_equal(zero.act(bad), SAFE)
    assert zero.n_invalid_inputs == 1

    hold = OnnxPolicy(files["cont"], on_invalid="hold")
    np.testing.assert_array_equal(hold.act(bad), SAFE)  # nothing held yet → safe action
    good = hold.act(x)
    np.testing.assert_array_equal(hold.act(bad), good)
    np.testing.assert_array_equal(hold.act(np.full(OBS, -np.inf)), good)
    np.testing.assert_array_equal(hold.act(np.full(OBS, 1e300)), good)  # float64 → inf in float32
    hold.reset()
    np.testing.assert_array_equal(hold.act(bad), SAFE)


def test_on_invalid_batches(files: dict[str, Path]) -> None:
    x = np.random.default_rng(4).standard_normal((4, OBS)).astype(np.float32)
    bad = x.copy()
    bad[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        OnnxPolicy(files["cont"], on_invalid="raise").act(bad)
    clean = OnnxPolicy(files["cont"]).act(x)

    out = OnnxPolicy(files["cont"], on_invalid="zero").act(bad)
    np.testing.assert_array_equal(out[[0, 2, 3]], clean[[0, 2, 3]])
    np.testing.assert_array_equal(out[1], SAFE)

    hold = OnnxPolicy(files["cont"], on_invalid="hold")
    np.testing.assert_array_equal(hold.act(bad)[1], SAFE)  # stream 1 has no valid action yet
    hold.act(x)
    np.testing.assert_array_equal(hold.act(bad), clean)  # row 1 holds its last valid action
    np.testing.assert_array_equal(hold.act(bad[:3])[1], SAFE)  # a new batch size starts afresh


def test_invalid_outputs_are_replaced_or_raised(files: dict[str, Path]) -> None:
    x = np.full(OBS, 0.5, np.float32)
    neg = x.copy()
    neg[0] = -1.0  # Sqrt(-1) → NaN inside the graph
    with pytest.raises(ValueError, match="invalid output"):
        OnnxPolicy(files["nan_out"], on_invalid="raise").act(neg)
    with pytest.raises(ValueError, match="invalid actions for rows"):
        OnnxPolicy(files["nan_out"], on_invalid="raise").act(np.stack([x, neg]))
    hold = OnnxPolicy(files["nan_out"], on_invalid="hold")
    good = hold.act(x)
    np.testing.assert_array_equal(hold.act(neg), good)
    zero = OnnxPolicy(files["nan_out"], on_invalid="zero")
    np.testing.assert_array_equal(zero.act(neg), SAFE)
    np.testing.assert_array_equal(zero.act(np.stack([neg, x])), np.stack([SAFE, good]))
    assert zero.n_invalid_outputs == 2 and zero.n_invalid_inputs == 0

    idx = OnnxPolicy(files["bad_index"], on_invalid="zero")  # ArgMax + 7: always out of range
    assert idx.act(x) == 0
    assert idx.act(np.stack([x, x])).tolist() == [0, 0]
    with pytest.raises(ValueError, match="outside"):
        OnnxPolicy(files["bad_index"]).act(x)


@pytest.mark.parametrize(
    "obs",
    [
        np.zeros(OBS + 1, np.float32),
        np.zeros((0,), np.float32),
        np.zeros((0, OBS), np.float32),
        np.float32(1.0),
        np.zeros((1, 1, OBS), np.float32),
        np.zeros((2, OBS - 1)),
        [[1.0] * OBS, [1.0] * (OBS - 1)],
    ],
    ids=["long", "empty", "empty-batch", "0d", "3d", "narrow-batch", "ragged"],
)
def test_wrong_shapes_name_the_expected_shape(files: dict[str, Path], obs: object) -> None:
    with pytest.raises(ValueError, match=rf"\({OBS},\) or \(N, {OBS}\)"):
        OnnxPolicy(files["cont"], on_invalid="zero").act(obs)


@pytest.mark.parametrize(
    "obs",
    [
        np.array(["a"] * OBS),
        np.zeros(OBS, dtype=object),
        np.zeros(OBS, dtype=np.complex64),
        np.zeros(OBS, dtype=bool),
        [1.0] * (OBS - 1) + ["x"],
        [1.0] * (OBS - 1) + [None],
        "observation",
        {"x": 1.0},
        None,
    ],
    ids=["str", "object", "complex", "bool", "mixed-str", "mixed-none", "string", "dict", "none"],
)
def test_non_numeric_inputs_are_rejected(files: dict[str, Path], obs: object) -> None:
    with pytest.raises(ValueError, match="expected a real numeric array"):
        OnnxPolicy(files["cont"], on_invalid="hold").act(obs)


def test_load_errors(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        OnnxPolicy(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        OnnxPolicy(garbage)
    with pytest.raises(ValueError, match="on_invalid must be one of"):
        OnnxPolicy(files["cont"], on_invalid="ignore")
    with pytest.raises(ValueError, match="intra_op_threads"):
        OnnxPolicy(files["cont"], intra_op_threads=0)

    cases = {
        "no metadata": (dict(metadata=None), "no 'trpo_tf' metadata"),
        "bad json": (dict(metadata="{oops"), "not valid JSON"),
        "bad version": (dict(metadata={**make_metadata(OBS, ACT), "format_version": 9}), "format_version 9"),
        "obs_dim mismatch": (dict(metadata=make_metadata(OBS + 1, ACT)), r"requires tensor\(float\)"),
        "act_dim mismatch": (dict(metadata=make_metadata(OBS, ACT + 1)), r"\[N, 4\]"),
        "discrete meta, continuous graph": (dict(metadata=make_metadata(OBS, ACT, discrete=True)), "int64"),
        "input name": (dict(input_name="obs"), "expected one input 'observation'"),
        "fixed batch": (dict(batch_dim=1), r"\[N, 11\]"),
    }
    for name, (kwargs, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.onnx"
        onnx.save(build_mlp_model(obs_dim=OBS, act_dim=ACT, **kwargs), str(path))
        with pytest.raises(ValueError, match=message):
            OnnxPolicy(path)


@pytest.mark.parametrize("batch_dim", ["unk__7", None], ids=["tf2onnx-style-name", "unnamed"])
@pytest.mark.parametrize("discrete", [False, True])
def test_any_dynamic_batch_axis_is_accepted(tmp_path: Path, batch_dim: str | None, discrete: bool) -> None:
    path = write_mlp(tmp_path / "p.onnx", obs_dim=OBS, act_dim=ACT, discrete=discrete, batch_dim=batch_dim)
    policy = OnnxPolicy(path)
    assert np.shape(policy.act(np.zeros((5, OBS)))) == ((5,) if discrete else (5, ACT))


def test_imports_without_tensorflow(files: dict[str, Path]) -> None:
    """The robot has numpy + onnxruntime only: TF, tf2onnx, keras and even onnx are blocked."""
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tf2onnx', 'keras', 'tensorflow_probability', 'onnx'):\n"
        "    sys.modules[name] = None\n"
        "import export.runtime, export.control, export.metadata\n"
        "import numpy as np\n"
        f"p = export.runtime.OnnxPolicy(sys.argv[1])\n"
        f"print(p.act(np.zeros({OBS}, np.float32)).shape)\n"
        "assert not any(m.startswith('tensorflow') for m in sys.modules if sys.modules[m] is not None)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(files["cont"])], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"({ACT},)"


# ---------------------------------------------------------------------- hostile-input fuzz

SPECIALS = [np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45]


def _hostile_inputs(n: int, seed: int = 0) -> list[tuple[object, str]]:
    """``n`` inputs of every hostile kind, each tagged "ok", "nonfinite" or "bad" (must raise)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[object, str]] = []
    junk: list[object] = [
        None, "obs", b"\x00" * OBS, {"a": 1}, {1.0, 2.0}, 3.5, 7, object(), Path("x"), (lambda: 0),
        [1.0] * (OBS - 1) + ["1.0"], [1.0] * (OBS - 1) + [None], [1.0] * (OBS - 1) + [[1.0]],
        [[1.0] * OBS, [1.0] * 3], [2**70] * OBS, np.array([1.0] * OBS, dtype=object),
        np.array(["1"] * OBS), np.zeros(OBS, np.complex128), np.ones(OBS, bool), np.zeros(OBS, "m8[s]"),
    ]
    shapes = [(OBS - 1,), (OBS + 1,), (0,), (), (1, 1, OBS), (2, OBS + 1), (0, OBS), (OBS, 1), (3, 0)]
    for _ in range(n):
        c = int(rng.integers(9))
        if c == 0:  # valid float32 over 33 orders of magnitude
            obs = (rng.standard_normal(OBS) * 10 ** rng.uniform(-3, 30)).astype(np.float32)
        elif c == 1:  # special values sprinkled into float32
            obs = rng.standard_normal(OBS).astype(np.float32)
            idx = rng.integers(OBS, size=int(rng.integers(1, 4)))
            obs[idx] = rng.choice(SPECIALS, size=len(idx))
        elif c == 2:  # float64 beyond float32 range → ±inf after the cast
            obs = rng.choice([1e30, -1e30, 1e300, -1e300, 1e38, 3.5e38, np.nan, 0.5], size=OBS)
        elif c == 3:  # integer / small float dtypes that are fine to cast
            dtype = [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float16][int(rng.integers(6))]
            obs = np.abs(rng.standard_normal(OBS) * 100).astype(dtype)
        elif c == 4:  # batches with some invalid rows
            obs = rng.standard_normal((int(rng.integers(1, 7)), OBS)).astype(np.float32)
            if rng.random() < 0.5:
                obs[rng.integers(len(obs)), rng.integers(OBS)] = rng.choice(SPECIALS[:3])
        elif c == 5:
            obs = np.zeros(shapes[int(rng.integers(len(shapes)))], rng.choice([np.float32, np.float64]))
        elif c == 6:
            out.append((junk[int(rng.integers(len(junk)))], "bad"))
            continue
        elif c == 7:  # python lists, possibly with nan/inf
            obs = [float(v) for v in rng.standard_normal(OBS)]
            if rng.random() < 0.5:
                obs[int(rng.integers(OBS))] = float(rng.choice(SPECIALS[:3]))
            if rng.random() < 0.3:
                obs = [obs, obs]
        else:  # python ints
            obs = [int(v) for v in rng.integers(-1000, 1000, OBS)]
        out.append((obs, _kind(obs)))
    return out


def _kind(obs: object) -> str:
    arr = np.asarray(obs)
    if arr.ndim not in (1, 2) or arr.shape[-1] != OBS or arr.size == 0:
        return "bad"
    with np.errstate(over="ignore", invalid="ignore"):
        return "ok" if np.isfinite(arr.astype(np.float32)).all() else "nonfinite"


def _check_action(policy: OnnxPolicy, obs: object, action: object) -> None:
    batch = np.asarray(obs).ndim == 2
    if policy.discrete:
        values = np.asarray(action)
        assert (values.dtype == np.int64 and values.ndim == 1) if batch else type(action) is int
        assert ((values >= 0) & (values < N_ACTIONS)).all()
    else:
        assert isinstance(action, np.ndarray) and action.dtype == np.float32
        assert action.shape == ((len(obs), ACT) if batch else (ACT,))
        assert _in_bounds(action), action


@pytest.mark.filterwarnings("error")  # a numpy warning would be an exception on a strict robot
@pytest.mark.parametrize("mode", ["raise", "hold", "zero"])
@pytest.mark.parametrize("name", ["unclipped", "disc"])
def test_hostile_input_fuzz(files: dict[str, Path], mode: str, name: str) -> None:
    """10,000 hostile inputs: only ValueError, never an action outside the bounds, documented fallbacks."""
    policy = OnnxPolicy(files[name], on_invalid=mode)
    safe = policy.safe_action
    inputs = _hostile_inputs(10_000)
    assert {k for _, k in inputs} == {"ok", "nonfinite", "bad"}
    last_one = safe  # the last action returned for a valid single observation
    counts = {"ok": 0, "nonfinite": 0, "bad": 0, "raised": 0}
    for obs, kind in inputs:
        counts[kind] += 1
        try:
            action = policy.act(obs)
        except ValueError as e:  # anything else propagates and fails the test
            counts["raised"] += 1
            msg = str(e)
            if kind == "ok":  # only raise mode may refuse, and only a non-finite *output*
                assert mode == "raise" and "invalid" in msg, msg
            elif kind == "nonfinite":
                assert mode == "raise" and "NaN/Inf" in msg, msg
            else:
                assert f"({OBS},) or (N, {OBS})" in msg, msg
            continue
        assert kind != "bad", f"accepted {obs!r}"
        assert not (kind == "nonfinite" and mode == "raise")
        _check_action(policy, obs, action)
        single = np.asarray(obs).ndim == 1
        if single and kind == "nonfinite":
            np.testing.assert_array_equal(action, last_one if mode == "hold" else safe)
        elif single and policy.n_invalid_outputs == 0:
            last_one = action
    assert counts["raised"] >= counts["bad"] and min(counts.values()) > 500
