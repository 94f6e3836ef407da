"""trpo_tf.app.bench on small real problems: the result dicts hold finite timings, the settings and the machine."""

from __future__ import annotations

import math

import pytest

from trpo_tf.app.bench import bench_train, bench_update, bench_vector_env, bench_vector_envs, machine_info


def test_machine_info_names_the_conditions():
    info = machine_info()
    assert info["cpu_count"] >= 1 and len(info["load_avg_1_5_15"]) == 3 and info["tensorflow"]


def test_bench_update_times_a_real_update_and_echoes_its_settings():
    out = bench_update(obs_dim=5, act_dim=2, batch=256, hidden=(16,), cg_iters=3, critic_epochs=1,
                       critic_batch=64, jit_compile=False, repeats=3, warmup=1)
    for key in ("update_ms_median", "policy_step_ms_median", "critic_ms_median", "update_ms_min",
                "update_cpu_ms_median", "separate_calls_ms_median", "fused_ms_median"):
        assert math.isfinite(out[key]) and out[key] > 0.0, key
    assert out["update_ms_min"] <= out["update_ms_median"]
    assert isinstance(out["update_parallel"], bool)
    assert out["accepted"] is True  # the synthetic advantages give the line search a real direction
    assert out["settings"]["batch"] == 256 and out["settings"]["fisher_product"] == "gauss-newton"
    assert out["machine"]["cpu_count"] >= 1


def test_bench_update_refuses_bad_arguments():
    with pytest.raises(ValueError, match="fisher_product"):
        bench_update(fisher_product="exact")
    with pytest.raises(ValueError, match="repeats"):
        bench_update(repeats=0)


def test_bench_vector_env_steps_a_real_vector_env():
    assert bench_vector_env("CartPole-v1", 2, "sync", steps=400) > 0.0


def test_bench_train_runs_a_short_real_training():
    out = bench_train("cartpole", steps=512, overrides={"n_steps": 256, "jit_compile": False, "critic_epochs": 1},
                      raw_env_steps=200)
    assert out["env_steps"] == 512 and out["gym_id"] == "CartPole-v1"
    assert out["steps_per_s"] > 0.0 and out["raw_vector_env_steps_per_s"] > 0.0
    before, after = out["raw_before_after_steps_per_s"]
    assert before > 0.0 and after > 0.0
    assert out["raw_vector_env_steps_per_s"] == pytest.approx((before + after) / 2, abs=0.1)
    assert out["fraction_of_raw"]["overall"] == pytest.approx(out["steps_per_s"] / out["raw_vector_env_steps_per_s"],
                                                              abs=6e-4)  # (rounded to 3 places)
    assert out["settings"]["n_steps"] == 256
    assert set(out["median_iteration_s"]) == {"collect_s", "acting_s", "env_s", "policy_s", "gae_s", "update_s",
                                              "normalizer_s", "critic_wait_s", "log_s", "checkpoint_s"}
    assert out["settings"]["overlap_critic"] is True and out["process_cpu_s"] > 0
    assert out["setup_s"] > 0.0  # building the trainer, outside the timed train()
    phases = out["median_iteration_s"]
    assert phases["acting_s"] > 0 and phases["update_s"] > 0 and phases["checkpoint_s"] > 0
    assert abs(phases["acting_s"] + phases["env_s"] - phases["collect_s"]) < 0.05 * phases["collect_s"] + 1e-3


def test_bench_vector_envs_tabulates_each_mode(capsys):
    """``trpo bench train --vector-env ...``: medians per mode from real runs, and the printed table."""
    from trpo_tf.app.commands import print_vector_env_table

    out = bench_vector_envs("cartpole", ["sync"], steps=512,
                            overrides={"n_steps": 256, "jit_compile": False, "critic_epochs": 1})
    row = out["modes"]["sync"]
    assert row["steady_steps_per_s"] > 0 and row["relative_to_first"] == 1.0
    assert row["collect_s_median"] > 0 and row["policy_s_median"] > 0  # policy_s: the whole update
    print_vector_env_table(out)
    assert capsys.readouterr().out.splitlines()[-1].split()[0] == "sync"


def test_bench_train_takes_set_and_refuses_a_bad_key_in_one_line(capfd):
    """``trpo bench train --set KEY=VALUE``: a bad key is exit 2 and one ``trpo: error:`` line, before timing."""
    from trpo_tf.app.cli import main

    assert main(["bench", "train", "--task", "cartpole", "--steps", "256", "--set", "overlap_critic=maybe"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trpo: error:") and "overlap_critic" in err[0]
