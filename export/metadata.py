"""Policy metadata carried by every exported ONNX file: the contract between training and the robot.

Stored as ONE JSON object under the key :data:`METADATA_KEY` of the model's ``metadata_props`` and
also written to a sidecar ``<file>.onnx.json``. Standard library only: the exporter (TensorFlow side)
and the runtime (robot side, numpy + onnxruntime) both import this module.

Conventions (format version 1):

* continuous policies: ``discrete`` false, ``n_actions`` null, ``action_low``/``action_high`` lists of
  ``act_dim`` finite floats with low <= high; the graph output is float32 ``[N, act_dim]``.
* discrete policies: ``discrete`` true, ``n_actions`` = ``act_dim`` = the number of actions (the task
  registry's convention, ``TaskSpec.act_dim``), bounds null; the graph output is int64 ``[N]``.
* ``obs_layout`` lists contiguous slices of the observation whose sizes sum to ``obs_dim``.
* optional keys (absent when null, so a nominal policy's metadata is what older runtimes read):
  ``randomization`` — the domain randomization the policy was trained under (the preset's
  ``randomization:`` mapping, e.g. ``{"mass_scale": [0.8, 1.2]}``; see robots/randomization.py);
  ``robustness`` — the summary ``trpo robustness --write-sidecar`` adds to the sidecar only.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

FORMAT_VERSION = 1
METADATA_KEY = "trpo_tf"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ObsSlice:
    """One contiguous slice of the observation vector (mirrors ``robots.registry.ObsField``)."""

    name: str
    size: int
    unit: str
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class PolicyMetadata:
    """Everything a robot controller needs to know about an exported policy."""

    format_version: int = FORMAT_VERSION
    task: str
    gym_id: str
    obs_dim: int
    act_dim: int
    discrete: bool
    n_actions: int | None
    action_low: tuple[float, ...] | None
    action_high: tuple[float, ...] | None
    obs_layout: tuple[ObsSlice, ...]
    control_hz: float
    env_steps: int
    seed: int
    package_version: str
    weights_sha256: str
    randomization: dict[str, Any] | None = None
    robustness: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_consistency(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples) with keys in the documented order."""
        d = asdict(self)
        d["action_low"] = None if self.action_low is None else list(self.action_low)
        d["action_high"] = None if self.action_high is None else list(self.action_high)
        d["obs_layout"] = [asdict(f) for f in self.obs_layout]
        for key in _OPTIONAL:
            if d[key] is None:
                del d[key]
        return d

    def to_json(self, indent: int | None = None) -> str:
        """Strict JSON (no NaN/Infinity tokens)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyMetadata:
        """Validate a decoded JSON object and build the metadata; ``ValueError`` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"policy metadata must be a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(
                f"unsupported policy metadata format_version {version!r}: this runtime reads version "
                f"{FORMAT_VERSION}; re-export the policy or upgrade trpo-tf"
            )
        missing = [k for k in _FIELDS if k not in data and k not in _OPTIONAL]
        if missing:
            raise ValueError(f"policy metadata is missing key(s) {missing}; expected keys {list(_FIELDS)}")
        unknown = sorted(k for k in data if k not in _FIELDS)
        if unknown:
            raise ValueError(
                f"policy metadata has unknown key(s) {unknown} for format_version {FORMAT_VERSION}"
            )
        return cls(
            format_version=version,
            task=_str(data, "task"),
            gym_id=_str(data, "gym_id"),
            obs_dim=_int(data, "obs_dim", minimum=1),
            act_dim=_int(data, "act_dim", minimum=1),
            discrete=_bool(data, "discrete"),
            n_actions=None if data["n_actions"] is None else _int(data, "n_actions", minimum=1),
            action_low=_floats(data, "action_low"),
            action_high=_floats(data, "action_high"),
            obs_layout=_layout(data["obs_layout"]),
            control_hz=_float(data, "control_hz"),
            env_steps=_int(data, "env_steps", minimum=0),
            seed=_int(data, "seed"),
            package_version=_str(data, "package_version"),
            weights_sha256=_str(data, "weights_sha256"),
            randomization=_object(data, "randomization"),
            robustness=_object(data, "robustness"),
        )

    @classmethod
    def for_trained_policy(cls, run_info: Mapping[str, Any], *, env_steps: int, seed: int, weights_sha256: str,
                           randomization: Mapping[str, Any] | None = None) -> PolicyMetadata:
        """The metadata of a trained policy from the learner's plain records: ``run_info`` is the run's
        run.json record (``trpo_tf.run_dir.RunInfo`` as a dict), then the steps trained, the seed, the weights'
        SHA-256 and the randomization trained under (empty or None: nominal). This class alone decides the
        keys: ``n_actions`` from the action kind, the optional ``randomization`` absent when nominal."""
        discrete, act_dim = bool(run_info["discrete"]), int(run_info["act_dim"])

        def bounds(key: str) -> list[float] | None:
            value = run_info.get(key)
            return None if discrete or value is None else [float(x) for x in value]

        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            **{key: run_info[key] for key in ("task", "gym_id", "obs_dim", "act_dim", "discrete", "control_hz",
                                              "package_version")},
            "n_actions": act_dim if discrete else None,
            "action_low": bounds("action_low"), "action_high": bounds("action_high"),
            "obs_layout": [{"name": f["name"], "size": f["size"], "unit": f["unit"],
                            "description": f.get("description", "")} for f in run_info["obs_layout"]],
            "env_steps": int(env_steps), "seed": int(seed), "weights_sha256": weights_sha256,
        }
        if randomization:
            data["randomization"] = dict(randomization)
        return cls.from_dict(data)  # the same checks as a file read back

    @classmethod
    def from_json(cls, text: str | bytes) -> PolicyMetadata:
        """Parse and validate the JSON text stored in the ONNX file or its sidecar."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:  # JSONDecodeError is a ValueError
            raise ValueError(f"policy metadata is not valid JSON: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> PolicyMetadata:
        """Read the metadata from an ONNX model's ``metadata_props`` (a str → str mapping)."""
        if METADATA_KEY not in props:
            raise ValueError(
                f"the ONNX file has no {METADATA_KEY!r} metadata (found keys {sorted(props)}); "
                "export it with trpo-tf (export/onnx.py) so the runtime knows its shapes and bounds"
            )
        return cls.from_json(props[METADATA_KEY])


_FIELDS = tuple(PolicyMetadata.__dataclass_fields__)
_OPTIONAL = ("randomization", "robustness")


def sidecar_path(onnx_path: str | os.PathLike[str]) -> Path:
    """Where the JSON copy of the metadata lives: ``policy.onnx`` → ``policy.onnx.json``."""
    return Path(f"{os.fspath(onnx_path)}.json")


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"policy metadata {key!r} must be a string, got {value!r}")
    return value


def _int(data: Mapping[str, Any], key: str, minimum: int | None = None) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"policy metadata {key!r} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"policy metadata {key!r} must be >= {minimum}, got {value}")
    return value


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise ValueError(f"policy metadata {key!r} must be true or false, got {value!r}")
    return value


def _float(data: Mapping[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"policy metadata {key!r} must be a number, got {value!r}")
    return float(value)


def _floats(data: Mapping[str, Any], key: str) -> tuple[float, ...] | None:
    value = data[key]
    if value is None:
        return None
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        raise ValueError(f"policy metadata {key!r} must be null or a list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"policy metadata {key!r} must be null or a JSON object, got {value!r}")
    return dict(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _layout(value: Any) -> tuple[ObsSlice, ...]:
    if not isinstance(value, list):
        raise ValueError(f"policy metadata 'obs_layout' must be a list of objects, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"name", "size", "unit", "description"}:
            raise ValueError(
                f"obs_layout[{i}] must be an object with keys name, size, unit, description; got {item!r}"
            )
        out.append(
            ObsSlice(
                name=_str(item, "name"),
                size=_int(item, "size", minimum=1),
                unit=_str(item, "unit"),
                description=_str(item, "description"),
            )
        )
    return tuple(out)


def _check_consistency(m: PolicyMetadata) -> None:
    """Cross-field rules; also run when the dataclass is built directly (e.g. by the exporter)."""
    if m.format_version != FORMAT_VERSION:
        raise ValueError(
            f"unsupported policy metadata format_version {m.format_version!r}; expected {FORMAT_VERSION}"
        )
    if m.obs_dim < 1 or m.act_dim < 1:
        raise ValueError(f"obs_dim and act_dim must be >= 1, got {m.obs_dim} and {m.act_dim}")
    total = sum(f.size for f in m.obs_layout)
    if not m.obs_layout or total != m.obs_dim:
        raise ValueError(f"obs_layout sizes must sum to obs_dim={m.obs_dim}, they sum to {total}")
    if not (math.isfinite(m.control_hz) and m.control_hz > 0):
        raise ValueError(f"control_hz must be a positive finite number, got {m.control_hz}")
    if not _SHA256.match(m.weights_sha256):
        raise ValueError(
            "weights_sha256 must be 64 lowercase hex digits (hashlib.sha256().hexdigest()), "
            f"got {m.weights_sha256!r}"
        )
    if m.discrete:
        if m.n_actions is None or m.n_actions != m.act_dim:
            raise ValueError(
                "a discrete policy needs n_actions == act_dim (the number of actions), "
                f"got n_actions={m.n_actions}, act_dim={m.act_dim}"
            )
        if m.action_low is not None or m.action_high is not None:
            raise ValueError("a discrete policy must have action_low and action_high null")
        return
    if m.n_actions is not None:
        raise ValueError(f"a continuous policy must have n_actions null, got {m.n_actions}")
    if m.action_low is None or m.action_high is None:
        raise ValueError("a continuous policy needs action_low and action_high (lists of act_dim numbers)")
    for name, bound in (("action_low", m.action_low), ("action_high", m.action_high)):
        if len(bound) != m.act_dim:
            raise ValueError(f"{name} must have act_dim={m.act_dim} entries, got {len(bound)}")
        if not all(math.isfinite(b) for b in bound):
            raise ValueError(f"{name} must be finite (a robot needs finite limits), got {list(bound)}")
    bad = [i for i, (lo, hi) in enumerate(zip(m.action_low, m.action_high)) if lo > hi]
    if bad:
        raise ValueError(f"action_low must be <= action_high; violated at index(es) {bad}")
