"""TRPOConfig: defaults from the seeds, typed overrides, one-line errors for bad keys and values."""

from __future__ import annotations

import pytest

from trpo_tf.config import ConfigError, TRPOConfig


def test_defaults_follow_seed_004():
    c = TRPOConfig()
    assert (c.max_kl, c.cg_iters, c.cg_damping, c.backtrack_coef, c.backtrack_iters) == (0.01, 10, 0.1, 0.5, 10)
    assert (c.critic_lr, c.critic_epochs, c.gamma, c.gae_lambda) == (1e-3, 5, 0.99, 0.95)
    assert c.batch_size == 2048


def test_overrides_are_parsed_as_yaml_and_typed():
    c = TRPOConfig().with_overrides(["max_kl=0.02", "hidden_sizes=[128, 128]", "total_steps=1e5",
                                     "normalize_reward=true", "task=hopper"])
    assert c.max_kl == 0.02 and c.hidden_sizes == [128, 128] and c.total_steps == 100_000
    assert c.normalize_reward is True and c.task == "hopper"
    assert isinstance(TRPOConfig().updated({"max_kl": 1}).max_kl, float)  # int → float is fine


@pytest.mark.parametrize("assignment, message", [
    ("max_kll=0.1", "unknown config key 'max_kll'"),
    ("max_kl=abc", "expects float"),
    ("cg_iters=2.5", "expects int"),
    ("normalize_obs=1", "expects bool"),
    ("hidden_sizes=64", "expects list"),
    ("max_kl=0", "max_kl must be > 0"),
    ("max_kl=-1", "max_kl must be > 0"),
    ("gamma=0", "gamma must be in (0, 1]"),
    ("gamma=1.5", "gamma must be in (0, 1]"),
    ("total_steps=0", "total_steps must be > 0"),
    ("vector_env=threads", "vector_env must be"),
    ("fisher_product=exact", "fisher_product must be"),
    ("noequals", "expects key=value"),
])
def test_bad_values_raise_one_line_config_errors(assignment, message):
    with pytest.raises(ConfigError) as info:
        TRPOConfig().with_overrides([assignment])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_round_trip(tmp_path):
    c = TRPOConfig(task="ant", max_kl=0.02, hidden_sizes=[256, 256], env_kwargs={"ctrl_cost_weight": 0.1})
    c.save(tmp_path / "c.yaml")
    assert TRPOConfig.load(tmp_path / "c.yaml") == c


def test_unreadable_or_malformed_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        TRPOConfig.load(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        TRPOConfig.load(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TRPOConfig.load(tmp_path / "bad.yaml")


@pytest.mark.parametrize("assignments, message", [
    (["vector_env=ray", "ray_workers=9"], "ray_workers (9) must be <= n_envs (8)"),
    (["vector_env=ray", "ray_workers=2", "ray_envs_per_worker=3"],
     "n_envs (8) must equal ray_workers x ray_envs_per_worker (2 x 3)"),
    (["vector_env=ray", "ray_envs_per_worker=3"], "n_envs (8) must equal ray_workers x ray_envs_per_worker (k x 3)"),
    (["ray_workers=-1"], "ray_workers must be >= 0"),
    (["ray_cpus_per_worker=0"], "ray_cpus_per_worker must be > 0"),
    (["ray_address=somewhere"], "ray_address must be empty, 'auto', 'local', HOST:PORT or ray://HOST:PORT"),
    (["ray_address=http://head:6379"], "ray_address must be"),
])
def test_ray_layout_and_address_are_validated(assignments, message):
    with pytest.raises(ConfigError) as info:
        TRPOConfig(n_envs=8).with_overrides(assignments)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_ray_layouts_that_fit():
    c = TRPOConfig(n_envs=8).with_overrides(["vector_env=ray", "ray_workers=4", "ray_address=head-node:6379"])
    assert (c.ray_workers, c.ray_envs_per_worker, c.ray_address) == (4, 0, "head-node:6379")
    assert TRPOConfig(n_envs=1).with_overrides(["vector_env=ray"]).ray_workers == 0  # sized by the cluster
    c = TRPOConfig(n_envs=8).with_overrides(["vector_env=ray", "ray_envs_per_worker=4", "ray_cpus_per_worker=0.5",
                                             "ray_address=ray://10.0.0.2:10001"])
    assert (c.ray_workers, c.ray_envs_per_worker, c.ray_cpus_per_worker) == (0, 4, 0.5)  # 2 workers of 4

def test_randomization_is_a_mapping_or_the_words_default_and_off() -> None:
    from trpo_tf.config import TRPOConfig

    assert TRPOConfig().randomization == {}
    assert TRPOConfig().with_overrides(["randomization=default"]).randomization == {"default": True}
    assert TRPOConfig().with_overrides(["randomization=off"]).randomization == {}
    cfg = TRPOConfig().with_overrides(["randomization={mass_scale: [0.8, 1.2]}"])
    assert cfg.randomization == {"mass_scale": [0.8, 1.2]}
