"""One dataclass of hyperparameters, with validation and YAML/``key=value`` overrides.

Defaults follow seed 004 (δ 0.01, CG 10, damping 0.1, backtrack 0.5 × 10, critic Adam 1e-3 × 5 epochs,
γ 0.99, λ 0.95, 2,048-sample batches). Task presets in ``robots/presets/*.yaml`` override them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


VECTOR_ENVS = ("sync", "async", "ray")
RAY_ADDRESS = re.compile(r"|auto|local|(ray://)?[A-Za-z0-9._-]+:[0-9]{1,5}")


class ConfigError(ValueError):
    """An unknown key, an ill-typed value or an out-of-range value. Its message is one readable line."""


@dataclass
class TRPOConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run directory."""

    task: str = "inverted-pendulum"
    total_steps: int = 1_000_000
    seed: int = 0

    # collection
    n_envs: int = 1
    n_steps: int = 2048  # per env per iteration; batch = n_envs * n_steps
    vector_env: str = "sync"  # "sync" (in-process), "async" (subprocesses, each stepping a block of envs)
    #                           or "ray" (Ray actors, each stepping a block of envs; docs/scaling.md)
    n_workers: int = 0  # "async" only: worker processes; 0 = one per CPU core
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
    fisher_product: str = "gauss-newton"  # or "nested-tape"; equal at θ_old, Gauss-Newton is ~2x cheaper
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
    checkpoint_every: int = 1  # iterations
    keep_checkpoints: int = 3
    eval_episodes: int = 10
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # domain randomization (robots/randomization.py), e.g. {mass_scale: [0.8, 1.2]}; {} = none.
    # Checked against the task when its envs are made (an unknown axis is a usage error).
    randomization: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.n_steps

    def validate(self) -> "TRPOConfig":
        """Raise :class:`ConfigError` on the first out-of-range value."""
        checks: list[tuple[bool, str]] = [
            (self.total_steps > 0, "total_steps must be > 0"),
            (self.n_envs >= 1, "n_envs must be >= 1"),
            (self.n_steps >= 1, "n_steps must be >= 1"),
            (self.vector_env in VECTOR_ENVS, "vector_env must be 'sync', 'async' or 'ray'"),
            (self.n_workers >= 0, "n_workers must be >= 0 (0 = one per CPU core)"),
            (self.ray_workers >= 0, "ray_workers must be >= 0 (0 = one per free CPU of the cluster)"),
            (self.ray_envs_per_worker >= 0, "ray_envs_per_worker must be >= 0 (0 = n_envs split over the workers)"),
            (self.ray_cpus_per_worker > 0, "ray_cpus_per_worker must be > 0"),
            (RAY_ADDRESS.fullmatch(self.ray_address) is not None,
             f"ray_address must be empty, 'auto', 'local', HOST:PORT or ray://HOST:PORT, got {self.ray_address!r}"),
            (self.obs_clip > 0, "obs_clip must be > 0"),
            (0.0 < self.gamma <= 1.0, "gamma must be in (0, 1]"),
            (0.0 <= self.gae_lambda <= 1.0, "gae_lambda must be in [0, 1]"),
            (self.max_kl > 0, "max_kl must be > 0"),
            (self.cg_iters >= 1, "cg_iters must be >= 1"),
            (self.cg_tol >= 0, "cg_tol must be >= 0"),
            (self.cg_damping >= 0, "cg_damping must be >= 0"),
            (self.fisher_subsample >= 1, "fisher_subsample must be >= 1"),
            (self.fisher_product in ("gauss-newton", "nested-tape"),
             "fisher_product must be 'gauss-newton' or 'nested-tape'"),
            (0.0 < self.backtrack_coef < 1.0, "backtrack_coef must be in (0, 1)"),
            (self.backtrack_iters >= 1, "backtrack_iters must be >= 1"),
            (0.0 < self.accept_ratio <= 1.0, "accept_ratio must be in (0, 1]"),
            (self.critic_lr > 0, "critic_lr must be > 0"),
            (self.critic_epochs >= 0, "critic_epochs must be >= 0"),
            (self.critic_batch_size >= 1, "critic_batch_size must be >= 1"),
            (len(self.hidden_sizes) >= 1 and all(h >= 1 for h in self.hidden_sizes),
             "hidden_sizes must be a non-empty list of positive ints"),
            (self.activation in ("tanh", "relu", "elu"), "activation must be one of tanh, relu, elu"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.eval_episodes >= 0, "eval_episodes must be >= 0"),
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
        return type(self)(**values).validate()

    def with_overrides(self, assignments: list[str]) -> "TRPOConfig":
        """Apply ``key=value`` strings (values parsed as YAML: ``max_kl=0.02``, ``hidden_sizes=[128,128]``)."""
        data: dict[str, Any] = {}
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--set expects key=value, got {item!r}")
            try:
                data[key.strip()] = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise ConfigError(f"cannot parse value of {key.strip()!r}: {exc.problem}") from None
        return self.updated(data)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping; errors become :class:`ConfigError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
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
    if hint in (int, float) and isinstance(value, str):  # YAML 1.1 reads "1e6" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 1e6 in YAML is a float
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
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
    raise ConfigError(f"config key {key!r} expects {name}, got {value!r}")
