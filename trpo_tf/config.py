"""One dataclass of hyperparameters, with validation and YAML/``key=value`` overrides.

Defaults follow seed 004 (δ 0.01, CG 10, damping 0.1, backtrack 0.5 × 10, critic Adam 1e-3 × 5 epochs,
γ 0.99, λ 0.95, 2,048-sample batches). Task presets in ``robots/presets/*.yaml`` override them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import numbers
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


VECTOR_ENVS = ("sync", "async", "workers", "ray")
RAY_ADDRESS = re.compile(r"|auto|local|(ray://)?[A-Za-z0-9._-]+:[0-9]{1,5}")


class ConfigError(ValueError):
    """An unknown key, an ill-typed value or an out-of-range value. Its message is one readable line."""


SEED_MAX = 2**32 - 1  # numpy and Keras seeds are unsigned 32-bit
# Upper bounds catch typos (a missing decimal point) before they exhaust memory; far above any real run.
MAX_STEPS = 2**53  # env-step counters stay exact in float64 metrics
MAX_ENVS = 4096
MAX_BATCH = 2**26  # n_envs * n_steps samples held in memory at once
MAX_WIDTH = 65536  # units per hidden layer
MAX_ITERS = 10_000  # CG iterations, backtracks, critic epochs


@dataclass
class TRPOConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run directory."""

    task: str = "inverted-pendulum"
    total_steps: int = 1_000_000
    seed: int = 0

    # collection
    n_envs: int = 1
    n_steps: int = 2048  # per env per iteration; batch = n_envs * n_steps
    vector_env: str = "sync"  # "sync" (in-process), "async" (subprocesses, each stepping a block of envs, one
    #                           message per step), "workers" (subprocesses, each stepping a block of envs with
    #                           its own copy of the policy for a whole segment: one message per iteration) or
    #                           "ray" (Ray actors, as "workers", on a cluster; docs/scaling.md)
    n_workers: int = 0  # "async" and "workers": blocks of envs (this process steps one); 0 = one per CPU core
    ray_workers: int = 0  # "ray" only: rollout workers (Ray actors); 0 = as many as the cluster has CPUs
    #                       for (at most n_envs)
    ray_envs_per_worker: int = 0  # "ray" only: 0 = n_envs split over the workers; else n_envs must equal
    #                               ray_workers * ray_envs_per_worker
    ray_cpus_per_worker: float = 1.0  # "ray" only: CPUs each worker reserves on its node
    ray_address: str = ""  # "ray" only: "" = $RAY_ADDRESS if set, else a private local Ray instance;
    #                        "auto" (the cluster started on this machine), "HOST:PORT" or "ray://HOST:PORT"
    normalize_obs: bool = True
    obs_clip: float = 10.0
    normalize_reward: bool = False  # scale rewards by the running std of the discounted return

    # advantages (GAE, Schulman et al. 2016)
    gamma: float = 0.99
    gae_lambda: float = 0.95

    # policy step (seed 004)
    max_kl: float = 0.01
    cg_iters: int = 10
    cg_tol: float = 1e-10
    cg_damping: float = 0.1
    fisher_subsample: int = 1  # Fv on a random 1/k of the samples, seeded per iteration (Schulman thesis, §C.2)
    fisher_product: str = "gauss-newton"  # or "gauss-newton-autodiff", "nested-tape": equal at θ_old, see trpo.py
    backtrack_coef: float = 0.5
    backtrack_iters: int = 10
    accept_ratio: float = 0.1  # a step must realise >= this share of its expected surrogate gain

    # critic
    critic_lr: float = 1e-3
    critic_epochs: int = 5
    critic_batch_size: int = 128

    # models
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    init_log_std: float = 0.0

    # engineering
    jit_compile: bool = True
    overlap_critic: bool = True  # fit the critic of iteration k in a background thread beside its policy step
    #                              and the envs of k+1 (same maths and numbers; trpo_tf/overlap.py)
    checkpoint_every: int = 1  # iterations
    keep_checkpoints: int = 3
    eval_episodes: int = 10
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # domain randomization (robots/randomization.py), e.g. {mass_scale: [0.8, 1.2]}; {} = none.
    # Checked against the task when its envs are made (an unknown axis is a usage error).
    randomization: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Every way of building a config (defaults, presets, YAML, ``--set``, the Python API) ends here:
        each field is type-checked (ints become floats where a float is expected) and range-checked."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self.validate()

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.n_steps

    def validate(self) -> "TRPOConfig":
        """Raise :class:`ConfigError` on the first out-of-range value (every float must also be finite)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"invalid config: {f.name} must be a finite number, got {value}")
        checks: list[tuple[bool, str]] = [
            (bool(self.task.strip()), "task must be a task name or gymnasium id, got an empty string"),
            (0 < self.total_steps <= MAX_STEPS, f"total_steps must be > 0 and <= 2**53, got {self.total_steps}"),
            (0 <= self.seed <= SEED_MAX, f"seed must be in 0..{SEED_MAX} (2**32 - 1), got {self.seed}"),
            (1 <= self.n_envs <= MAX_ENVS, f"n_envs must be >= 1 and <= {MAX_ENVS}"),
            (self.n_steps >= 1, "n_steps must be >= 1"),
            (self.n_envs * self.n_steps <= MAX_BATCH, f"n_envs * n_steps must be <= {MAX_BATCH:,} samples"),
            (self.vector_env in VECTOR_ENVS, "vector_env must be 'sync', 'async', 'workers' or 'ray'"),
            (0 <= self.n_workers <= MAX_ENVS, "n_workers must be >= 0 (0 = one per CPU core) and <= n_envs limit"),
            (self.ray_workers >= 0, "ray_workers must be >= 0 (0 = one per free CPU of the cluster)"),
            (self.ray_envs_per_worker >= 0, "ray_envs_per_worker must be >= 0 (0 = n_envs split over the workers)"),
            (self.ray_cpus_per_worker > 0, "ray_cpus_per_worker must be > 0"),
            (RAY_ADDRESS.fullmatch(self.ray_address) is not None,
             f"ray_address must be empty, 'auto', 'local', HOST:PORT or ray://HOST:PORT, got {self.ray_address!r}"),
            (self.obs_clip > 0, "obs_clip must be > 0"),
            (0.0 < self.gamma <= 1.0, "gamma must be in (0, 1]"),
            (0.0 <= self.gae_lambda <= 1.0, "gae_lambda must be in [0, 1]"),
            (0 < self.max_kl <= 10.0, "max_kl must be > 0 (and <= 10)"),
            (1 <= self.cg_iters <= MAX_ITERS, f"cg_iters must be >= 1 and <= {MAX_ITERS}"),
            (self.cg_tol >= 0, "cg_tol must be >= 0"),
            (self.cg_damping >= 0, "cg_damping must be >= 0"),
            (self.fisher_subsample >= 1, "fisher_subsample must be >= 1"),
            (self.fisher_product in ("gauss-newton", "gauss-newton-autodiff", "nested-tape"),
             "fisher_product must be 'gauss-newton', 'gauss-newton-autodiff' or 'nested-tape'"),
            (0.0 < self.backtrack_coef < 1.0, "backtrack_coef must be in (0, 1)"),
            (1 <= self.backtrack_iters <= MAX_ITERS, f"backtrack_iters must be >= 1 and <= {MAX_ITERS}"),
            (0.0 < self.accept_ratio <= 1.0, "accept_ratio must be in (0, 1]"),
            (0 < self.critic_lr <= 10.0, "critic_lr must be > 0 (and <= 10)"),
            (0 <= self.critic_epochs <= MAX_ITERS, f"critic_epochs must be >= 0 and <= {MAX_ITERS}"),
            (1 <= self.critic_batch_size <= MAX_BATCH, "critic_batch_size must be >= 1"),
            (1 <= len(self.hidden_sizes) <= 64 and all(1 <= h <= MAX_WIDTH for h in self.hidden_sizes),
             f"hidden_sizes must be a list of 1 to 64 layer widths in 1..{MAX_WIDTH}"),
            (self.activation in ("tanh", "relu", "elu"), "activation must be one of tanh, relu, elu"),
            (-20.0 <= self.init_log_std <= 5.0, "init_log_std must be in [-20, 5] (std e^-20 .. e^5)"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (0 <= self.eval_episodes <= 1_000_000, "eval_episodes must be >= 0 (and <= 1,000,000)"),
            (all(isinstance(k, str) and k for k in self.env_kwargs), "env_kwargs keys must be non-empty strings"),
        ]
        if self.vector_env == "ray":
            checks += self._ray_checks()
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid config: {message}")
        return self

    def _ray_checks(self) -> list[tuple[bool, str]]:
        workers, per_worker = self.ray_workers, self.ray_envs_per_worker
        return [
            (importlib.util.find_spec("ray") is not None,
             "vector_env 'ray' needs Ray, which is not installed: pip install \"trpo-tf[ray]\" "
             "(or pip install \"ray>=2.60,<3\")"),
            (workers <= self.n_envs,
             f"ray_workers ({workers}) must be <= n_envs ({self.n_envs}): each worker steps >= 1 env"),
            (per_worker == 0 or (self.n_envs == workers * per_worker if workers else self.n_envs % per_worker == 0),
             f"n_envs ({self.n_envs}) must equal ray_workers x ray_envs_per_worker "
             f"({workers or 'k'} x {per_worker}); or set ray_envs_per_worker=0 to split n_envs over the workers"),
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        from trpo_tf.files import write_text_atomic

        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TRPOConfig":
        return cls().updated(data)

    @classmethod
    def load(cls, path: str | Path) -> "TRPOConfig":
        return cls.from_dict(read_yaml_mapping(path))

    def updated(self, data: dict[str, Any]) -> "TRPOConfig":
        """A copy with ``data`` applied; each value is checked against the field's type."""
        hints = typing.get_type_hints(type(self))
        values = self.to_dict()
        for key, value in data.items():
            if key not in hints or key not in values:
                known = ", ".join(f.name for f in dataclasses.fields(self))
                raise ConfigError(f"unknown config key {key!r}; known keys: {known}")
            values[key] = _coerce(key, value, hints[key])
        return type(self)(**values)  # __post_init__ checks every value

    def with_overrides(self, assignments: list[str]) -> "TRPOConfig":
        """Apply ``key=value`` strings (values parsed as YAML: ``max_kl=0.02``, ``hidden_sizes=[128,128]``)."""
        return self.updated(parse_assignments(assignments))


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``key=value`` strings as a dict (values parsed as YAML; keys not checked here: :meth:`TRPOConfig.updated`)."""
    data: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        data[key.strip()] = parse_value(key.strip(), raw)
    return data


def parse_value(key: str, raw: str) -> Any:
    """One ``--set`` value as YAML; a value YAML cannot read is a :class:`ConfigError`."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["invalid YAML"])[0]
        raise ConfigError(f"cannot parse value of {key!r}: {problem}") from None


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping; errors become :class:`ConfigError`."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                          "expected YAML key: value lines") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value")
    return data


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check (and gently convert: int → float) one value against a dataclass type hint."""
    origin = typing.get_origin(hint)
    given = value
    if hint in (int, float) and isinstance(value, str):  # YAML 1.1 reads "1e6" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():  # YAML 1e6
            return int(value)
    elif hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        (item_type,) = typing.get_args(hint)
        if isinstance(value, (list, tuple)):
            return [_coerce(key, v, item_type) for v in value]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
        if key == "randomization" and value in ("default", "off", True, False):  # YAML reads off as false
            return {"default": True} if value in ("default", True) else {}
    else:  # pragma: no cover - every field has one of the types above
        return value
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"config key {key!r} expects {name}, got {given!r}"[:300])
