"""export/metadata.py: round trip and every validation error of the policy metadata."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from export.metadata import FORMAT_VERSION, METADATA_KEY, ObsSlice, PolicyMetadata, sidecar_path
from export.builders import make_metadata


def _valid(discrete: bool = False) -> dict:
    return make_metadata(obs_dim=4, act_dim=2, discrete=discrete, bound=2.0, weights_sha256="ab" * 32)


@pytest.mark.parametrize("discrete", [False, True])
def test_round_trip(discrete: bool) -> None:
    data = _valid(discrete)
    meta = PolicyMetadata.from_json(json.dumps(data))
    assert meta.to_dict() == data
    assert PolicyMetadata.from_json(meta.to_json()) == meta
    assert list(json.loads(meta.to_json(indent=2))) == list(data)  # documented key order
    assert meta.obs_layout[0] == ObsSlice("x0", 1, "1", "test entry 0")
    assert PolicyMetadata.from_props({METADATA_KEY: meta.to_json(), "other": "x"}) == meta


def test_constants_and_sidecar() -> None:
    assert FORMAT_VERSION == 1 and METADATA_KEY == "trpo_tf"
    assert str(sidecar_path("runs/policy.onnx")) == "runs/policy.onnx.json"


def test_integer_numbers_are_accepted_as_floats() -> None:
    data = _valid()
    data["control_hz"] = 100
    data["action_low"], data["action_high"] = [-1, 0], [1, 0]
    meta = PolicyMetadata.from_dict(data)
    assert meta.control_hz == 100.0 and meta.action_high == (1.0, 0.0)


def _mutated(change: dict, discrete: bool = False) -> dict:
    data = copy.deepcopy(_valid(discrete))
    for key, value in change.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    return data


BAD = {
    "missing key": ({"seed": KeyError}, "missing key"),
    "unknown key": ({"extra": 1}, "unknown key"),
    "format version 2": ({"format_version": 2}, "unsupported policy metadata format_version 2"),
    "format version missing": ({"format_version": KeyError}, "format_version None"),
    "format version true": ({"format_version": True}, "format_version True"),
    "task not str": ({"task": 3}, "'task' must be a string"),
    "obs_dim float": ({"obs_dim": 4.0}, "'obs_dim' must be an integer"),
    "obs_dim bool": ({"obs_dim": True}, "'obs_dim' must be an integer"),
    "act_dim zero": ({"act_dim": 0}, "'act_dim' must be >= 1"),
    "discrete int": ({"discrete": 1}, "'discrete' must be true or false"),
    "env_steps negative": ({"env_steps": -1}, "'env_steps' must be >= 0"),
    "control_hz str": ({"control_hz": "100"}, "'control_hz' must be a number"),
    "control_hz zero": ({"control_hz": 0}, "control_hz must be a positive"),
    "layout sum": ({"obs_layout": [{"name": "a", "size": 3, "unit": "m", "description": ""}]},
                   "obs_layout sizes must sum to obs_dim=4, they sum to 3"),
    "layout empty": ({"obs_layout": []}, "sum to obs_dim=4, they sum to 0"),
    "layout not list": ({"obs_layout": {"a": 4}}, "must be a list of objects"),
    "layout item keys": ({"obs_layout": [{"name": "a", "size": 4}]}, "obs_layout[0] must be an object"),
    "layout size zero": ({"obs_layout": [{"name": "a", "size": 0, "unit": "", "description": ""}]},
                         "'size' must be >= 1"),
    "low > high": (
        {"action_low": [3.0, -2.0]},
        "action_low must be <= action_high; violated at index(es) [0]",
    ),
    "low length": ({"action_low": [-1.0]}, "action_low must have act_dim=2 entries, got 1"),
    "high length": ({"action_high": [1.0, 1.0, 1.0]}, "action_high must have act_dim=2 entries, got 3"),
    "low not numbers": ({"action_low": ["a", "b"]}, "must be null or a list of numbers"),
    "low inf": ({"action_low": [float("-inf"), 0.0]}, "action_low must be finite"),
    "high nan": ({"action_high": [float("nan"), 0.0]}, "action_high must be finite"),
    "bounds missing": ({"action_low": None}, "needs action_low and action_high"),
    "continuous n_actions": ({"n_actions": 2}, "continuous policy must have n_actions null"),
    "sha not hex": ({"weights_sha256": "xyz"}, "weights_sha256 must be 64 lowercase hex"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_validation_errors(name: str) -> None:
    change, message = BAD[name]
    with pytest.raises(ValueError, match=re.escape(message)):
        PolicyMetadata.from_json(json.dumps(_mutated(change)))


def test_discrete_rules() -> None:
    with pytest.raises(ValueError, match="n_actions == act_dim"):
        PolicyMetadata.from_dict(_mutated({"n_actions": 3}, discrete=True))
    with pytest.raises(ValueError, match="n_actions == act_dim"):
        PolicyMetadata.from_dict(_mutated({"n_actions": None}, discrete=True))
    with pytest.raises(ValueError, match="action_low and action_high null"):
        bounds = {"action_low": [0.0, 0.0], "action_high": [1.0, 1.0]}
        PolicyMetadata.from_dict(_mutated(bounds, discrete=True))


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"trpo"', b"\xff\xfe"])
def test_not_a_json_object(text: str | bytes) -> None:
    with pytest.raises(ValueError, match="not valid JSON|must be a JSON object"):
        PolicyMetadata.from_json(text)


def test_missing_props_key_names_the_key() -> None:
    with pytest.raises(ValueError, match="no 'trpo_tf' metadata"):
        PolicyMetadata.from_props({"producer": "tf2onnx"})


def test_direct_construction_is_validated() -> None:
    """The exporter builds the dataclass directly; cross-field rules apply there too."""
    meta = PolicyMetadata.from_dict(_valid())
    kwargs = {**meta.__dict__, "action_low": (5.0, 5.0)}
    with pytest.raises(ValueError, match="action_low must be <= action_high"):
        PolicyMetadata(**kwargs)


def test_randomization_and_robustness_are_optional_objects() -> None:
    plain = PolicyMetadata.from_dict(_valid())
    assert plain.randomization is None and "randomization" not in plain.to_dict()  # older runtimes read it
    data = _valid() | {"randomization": {"mass_scale": [0.8, 1.2], "action_delay_steps": [0, 2]},
                       "robustness": {"nominal": {"mean_return": 3000.0}}}
    meta = PolicyMetadata.from_json(json.dumps(data))
    assert meta.randomization == {"mass_scale": [0.8, 1.2], "action_delay_steps": [0, 2]}
    assert PolicyMetadata.from_json(meta.to_json()).to_dict() == data
    for key in ("randomization", "robustness"):
        with pytest.raises(ValueError, match=f"'{key}' must be null or a JSON object"):
            PolicyMetadata.from_dict(_valid() | {key: [0.8, 1.2]})


def test_a_trained_policy_s_records_become_metadata_with_optional_keys_decided_here() -> None:
    """for_trained_policy: the learner's plain records (a real run.json) in, the documented keys out."""
    run_info = json.loads((Path(__file__).parent / "data" / "run-0.1.0" / "run.json").read_text())
    facts = {"env_steps": 512, "seed": 3, "weights_sha256": "cd" * 32}
    nominal = PolicyMetadata.for_trained_policy(run_info, **facts, randomization={})
    d = nominal.to_dict()
    assert list(d) == [k for k in PolicyMetadata.__dataclass_fields__ if k not in ("randomization", "robustness")]
    assert d["task"] == "Pendulum-v1" and d["n_actions"] is None and d["action_high"] == [2.0]
    assert d["env_steps"] == 512 and d["seed"] == 3 and d["package_version"] == "0.1.0"
    assert nominal.obs_layout[0] == ObsSlice("obs_0", 1, "", "")
    assert PolicyMetadata.for_trained_policy(run_info, **facts) == nominal  # None: nominal too
    randomized = PolicyMetadata.for_trained_policy(run_info, **facts, randomization={"mass_scale": [0.8, 1.2]})
    assert randomized.to_dict()["randomization"] == {"mass_scale": [0.8, 1.2]}
    assert PolicyMetadata.from_json(randomized.to_json()) == randomized
    discrete = run_info | {"discrete": True, "act_dim": 2, "action_low": None, "action_high": None}
    meta = PolicyMetadata.for_trained_policy(discrete, **facts)
    assert meta.n_actions == 2 and meta.action_low is None and meta.action_high is None
    with pytest.raises(ValueError, match="obs_layout sizes must sum to obs_dim=4"):  # still checked
        PolicyMetadata.for_trained_policy(run_info | {"obs_dim": 4}, **facts)
