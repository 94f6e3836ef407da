"""trpo_tf/app/bench_profile.py: the analytic FLOP count by hand, and a real (tiny) profile run end to end."""

from __future__ import annotations

import math

from trpo_tf.app.bench_profile import mlp_macs, profile_update, sgemm_rate, update_flops


def test_mlp_macs_counts_forward_and_input_gradient_multiply_adds():
    assert mlp_macs([11, 64, 64, 3]) == (11 * 64 + 64 * 64 + 64 * 3, 64 * 64 + 64 * 3)


def test_update_flops_at_the_seed_settings():
    f = update_flops()  # 2,048 × (11, 64, 64, 3), CG 10, one line-search try, 5 critic epochs of 128
    forward = 2 * 2048 * 4992 / 1e6
    product = 4 * 2048 * (4992 + 3 * (64 + 64)) / 1e6  # a dot each way per layer + the 3-wide contractions
    assert math.isclose(f["one_fisher_product"], product)  # 44.0 MFLOP
    assert math.isclose(f["fisher_products"], 10 * product)  # xᵀFx needs no 11th product
    assert math.isclose(f["fisher_setup"], forward + 2 * 2048 * 3 * 64 * 64 / 1e6)  # + K_1 = K_2·W_2ᵀ
    assert math.isclose(f["line_search"], forward)  # surrogate and KL on one forward pass
    critic_step = 2 * 128 * 4864 + 2 * 128 * (4864 + 4160)
    assert math.isclose(f["critic_minibatches"], 80 * critic_step / 1e6)
    assert math.isclose(f["update"], f["policy_step"] + f["critic_fit"])
    assert 800 < f["update"] < 1100  # ~0.97 GFLOP (1.3 with the autodiff product, issue 13)


def test_sgemm_rate_is_measured_in_a_fresh_process():
    rate = sgemm_rate(batch=256, repeats=5, threads=1)
    assert rate["gflops_wall"] > 0 and rate["gflops_cpu"] > 0


def test_profile_update_times_every_piece_on_a_tiny_problem():
    out = profile_update(obs_dim=4, act_dim=2, batch=256, hidden=(8,), cg_iters=2, critic_epochs=2,
                         critic_batch=64, rounds=1)
    assert set(out["pieces_ms"]) >= {"empty_compiled_call", "fvp_x1", "fvp_x3", "policy_step+restore"}
    for piece in out["pieces_ms"].values():
        assert piece["wall_ms"] > 0
    assert out["mflop"]["update"] > 0 and out["line_search_tries"] >= 1
    assert out["numpy_sgemm_gflops"]["one_thread"]["gflops_cpu"] > 0
