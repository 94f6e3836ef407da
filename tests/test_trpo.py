"""The TRPO policy step: CG, Fisher-vector products, line search, acceptance and exact revert."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from trpo_tf.fisher import dense_chain, layer_jacobian_fvp
from trpo_tf.models import build_models
from trpo_tf.trpo import (
    TRPOPolicyStep,
    TRPOStepSettings,
    backtracking_line_search,
    conjugate_gradient,
    fisher_rows,
    fisher_vector_product,
    flatten,
    gauss_newton_fvp,
    mean_kl,
    unflatten,
)

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
SPACES = {"gaussian": gym.spaces.Box(-1.0, 1.0, (2,), np.float32), "categorical": gym.spaces.Discrete(3)}


def _actor(kind: str, hidden=(16, 16), seed: int = 0):
    tf.keras.utils.set_random_seed(seed)
    actor, _ = build_models(OBS, SPACES[kind], list(hidden))
    return actor


def _batch(actor, n: int = 512, seed: int = 0):
    """Observations, actions sampled from the policy, and advantages that reward the first action dim."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 5)).astype(np.float32)
    actions = actor(obs).sample(seed=seed).numpy()
    signal = actions[:, 0] if actions.ndim == 2 else (actions == 1).astype(np.float32)
    adv = (signal + obs[:, 0] * signal + 0.1 * rng.normal(size=n)).astype(np.float32)
    return obs, actions, adv


def _weights(actor) -> list[bytes]:
    return [v.numpy().tobytes() for v in actor.variables]


def _functional(actor):
    fixed = [v.value for v in actor.non_trainable_variables]
    return lambda p, x: actor.stateless_call(p, fixed, x)[0]


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(30, 30))
    a = (m @ m.T + 30 * np.eye(30)).astype(np.float32)
    b = rng.normal(size=30).astype(np.float32)
    matrix = tf.constant(a)
    x, residual, iters = conjugate_gradient(lambda v: tf.linalg.matvec(matrix, v), tf.constant(b), iters=60,
                                            tol=1e-12)
    expected = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    assert np.linalg.norm(x.numpy() - expected) / np.linalg.norm(expected) < 1e-5
    assert int(iters) <= 60


def test_conjugate_gradient_stops_early_on_tolerance():
    a = tf.constant(np.diag([1.0, 2.0, 3.0]).astype(np.float32))
    x, residual, iters = conjugate_gradient(lambda v: tf.linalg.matvec(a, v), tf.constant([1.0, 1.0, 1.0]),
                                            iters=10, tol=1e-10)
    assert int(iters) == 3  # exact in n steps for an n×n system
    np.testing.assert_allclose(x.numpy(), [1.0, 0.5, 1.0 / 3.0], rtol=1e-5)


@pytest.mark.parametrize("product", ["nested-tape", "gauss-newton-autodiff", "gauss-newton"])
@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_fisher_vector_product_equals_explicit_kl_hessian(kind, product):
    actor = _actor(kind, hidden=(8,))
    obs, _, _ = _batch(actor, n=64)
    obs = tf.constant(obs)
    policy = _functional(actor)
    params = [tf.identity(v.value) for v in actor.trainable_variables]
    # Move θ away from init so the test is not at a special point, then define π_old there.
    params = [p + 0.3 * tf.random.stateless_normal(p.shape, seed=[i, 7]) for i, p in enumerate(params)]
    old_dist = policy([tf.stop_gradient(p) for p in params], obs)
    flat = flatten(params)

    # Explicit Hessian: the Jacobian of the KL gradient with respect to the flat parameters.
    with tf.GradientTape() as outer:
        outer.watch(flat)
        with tf.GradientTape() as inner:
            inner.watch(flat)
            kl = mean_kl(policy, unflatten(flat, params), obs, old_dist)
        grad = inner.gradient(kl, flat)
    hessian = outer.jacobian(grad, flat).numpy()
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-5)

    def product_fn(damping: float):
        if product == "gauss-newton":  # from the layer Jacobians (trpo_tf/fisher.py)
            return layer_jacobian_fvp(actor, dense_chain(actor), params, obs, damping)
        if product == "gauss-newton-autodiff":
            return gauss_newton_fvp(policy, params, obs, damping)
        return lambda v: fisher_vector_product(policy, params, obs, old_dist, v, damping)

    rng = np.random.default_rng(3)
    for _ in range(3):
        v = rng.normal(size=flat.shape[0]).astype(np.float32)
        fv = product_fn(0.0)(tf.constant(v)).numpy()
        expected = hessian @ v
        np.testing.assert_allclose(fv, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
        damped = product_fn(0.1)(tf.constant(v)).numpy()
        np.testing.assert_allclose(damped - fv, 0.1 * v, atol=1e-5)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("jit, product", [(False, "nested-tape"), (True, "nested-tape"), (True, "gauss-newton")])
def test_accepted_step_respects_trust_region_and_improves(kind, jit, product):
    actor = _actor(kind)
    obs, actions, adv = _batch(actor)
    policy = _functional(actor)
    old_params = [tf.identity(v.value) for v in actor.trainable_variables]
    old_dist = policy(old_params, tf.constant(obs))
    settings = TRPOStepSettings(max_kl=0.01, fisher_product=product)

    info = TRPOPolicyStep(actor, settings, jit_compile=jit)(obs, actions, adv)

    assert info["accepted"] and info["status"] == 0 and info["reason"] == "accepted"
    new_params = [v.value for v in actor.trainable_variables]
    kl = float(mean_kl(policy, new_params, tf.constant(obs), old_dist))
    assert 0.0 < kl <= settings.max_kl
    assert kl == pytest.approx(info["kl"], rel=1e-4, abs=1e-7)
    assert info["surrogate_after"] > info["surrogate_before"]
    gain = info["surrogate_after"] - info["surrogate_before"]  # a real share of the linear model's promise
    assert gain >= settings.accept_ratio * settings.backtrack_coef ** info["backtracks"] * info["expected_improvement"]
    assert info["cg_iterations"] >= 1 and info["grad_norm"] > 0
    assert np.isfinite([info[k] for k in ("entropy", "cg_residual", "step_norm")]).all()


def test_first_full_step_lands_near_the_trust_region_boundary():
    """√(2δ/xᵀFx)·x is sized so the quadratic KL model equals δ: the accepted KL is of order δ."""
    actor = _actor("gaussian")
    obs, actions, adv = _batch(actor, n=2048)
    info = TRPOPolicyStep(actor, TRPOStepSettings(max_kl=0.01, cg_iters=20), jit_compile=False)(obs, actions, adv)
    assert info["accepted"]
    assert 0.01 * 0.5**(info["backtracks"] + 2) < info["kl"] <= 0.01


def test_line_search_rejects_a_harmful_direction_and_returns_old_parameters_exactly():
    actor = _actor("gaussian")
    obs, actions, adv = _batch(actor)
    policy = _functional(actor)
    params = [tf.identity(v.value) for v in actor.trainable_variables]
    obs_t = tf.constant(obs)
    old_dist = policy(params, obs_t)
    old_log_prob = old_dist.log_prob(actions)
    adv_n = tf.constant((adv - adv.mean()) / adv.std())

    def evaluate(flat):
        p = unflatten(flat, params)
        ratio = tf.exp(policy(p, obs_t).log_prob(actions) - old_log_prob)
        return tf.reduce_mean(ratio * adv_n), mean_kl(policy, p, obs_t, old_dist)

    flat_old = flatten(params)
    with tf.GradientTape() as tape:
        tape.watch(params)
        surrogate = evaluate(flatten(params))[0]
    g = flatten(tape.gradient(surrogate, params))
    harmful = -0.05 * g / tf.norm(g)  # descends the surrogate at every step size
    accepted, tries, flat_new, _, _ = backtracking_line_search(evaluate, flat_old, harmful, surrogate, 0.01, 0.5, 10)
    assert not bool(accepted) and int(tries) == 10
    assert flat_new.numpy().tobytes() == flat_old.numpy().tobytes()

    helpful = 0.05 * g / tf.norm(g)
    accepted, tries, flat_new, surrogate_new, kl = backtracking_line_search(evaluate, flat_old, helpful, surrogate,
                                                                             0.01, 0.5, 10)
    assert bool(accepted) and float(kl) <= 0.01 and float(surrogate_new) > float(surrogate)


@pytest.mark.parametrize("jit", [False, True])
def test_nan_advantages_are_rejected_and_weights_are_bit_identical(jit):
    actor = _actor("gaussian")
    obs, actions, adv = _batch(actor)
    adv[7] = np.nan
    before = _weights(actor)
    info = TRPOPolicyStep(actor, jit_compile=jit)(obs, actions, adv)
    assert not info["accepted"] and info["status"] == 2 and "non-finite" in info["reason"]
    assert _weights(actor) == before


def test_infinite_observation_is_rejected_and_weights_are_bit_identical():
    actor = _actor("categorical")
    obs, actions, adv = _batch(actor)
    actor.normalizer.enabled = False  # let the inf reach the network (the clip would otherwise absorb it)
    obs[3, 2] = np.inf
    before = _weights(actor)
    info = TRPOPolicyStep(actor, jit_compile=False)(obs, actions, adv)
    assert not info["accepted"] and info["status"] in (2, 3)
    assert _weights(actor) == before


def test_constant_advantages_give_no_direction_and_change_nothing():
    actor = _actor("gaussian")
    obs, actions, _ = _batch(actor)
    before = _weights(actor)
    info = TRPOPolicyStep(actor, jit_compile=False)(obs, actions, np.ones(len(obs), np.float32))
    assert not info["accepted"]
    assert _weights(actor) == before


def test_fisher_subsample_still_respects_kl_on_the_full_batch():
    actor = _actor("gaussian")
    obs, actions, adv = _batch(actor, n=1024)
    policy = _functional(actor)
    old_dist = policy([tf.identity(v.value) for v in actor.trainable_variables], tf.constant(obs))
    info = TRPOPolicyStep(actor, TRPOStepSettings(fisher_subsample=5), jit_compile=False)(obs, actions, adv)
    assert info["accepted"]
    kl = float(mean_kl(policy, [v.value for v in actor.trainable_variables], tf.constant(obs), old_dist))
    assert kl <= 0.01


def test_flatten_unflatten_round_trip():
    tensors = [tf.random.normal((3, 4)), tf.random.normal((4,)), tf.random.normal((2, 2, 2))]
    back = unflatten(flatten(tensors), tensors)
    for a, b in zip(tensors, back):
        assert a.shape == b.shape
        assert a.numpy().tobytes() == b.numpy().tobytes()


# --- issue 8: acceptance ratio, zero gradient, random Fisher sub-sample ------------------------------------


def test_line_search_wants_a_share_of_the_expected_gain_not_float_noise():
    """Schulman's original test: actual gain > 0 and ≥ accept_ratio · coefᵏ · gᵀstep."""
    flat_old = tf.zeros(2)
    step = tf.constant([1.0, 0.0])  # gᵀstep = 1 for g = (1, 0)

    def nearly_flat_at_full_step(flat):  # L(t) = t − (1 − 1e-6)·t²: gains 1e-6 at t = 1, 0.25 at t = 0.5
        t = flat[0]
        return t - (1.0 - 1e-6) * t * t, tf.constant(0.0)

    accepted, tries, flat_new, _, _ = backtracking_line_search(
        nearly_flat_at_full_step, flat_old, step, tf.constant(0.0), 0.01, 0.5, 10,
        expected_improvement=1.0, accept_ratio=0.1)
    assert bool(accepted) and int(tries) == 2  # the full step's 1e-6 gain is refused, the half step taken
    np.testing.assert_allclose(flat_new.numpy(), [0.5, 0.0])

    def noise(flat):  # "improves" by float32 noise at every step size
        return tf.constant(1e-7), tf.constant(0.0)

    accepted, tries, flat_new, _, _ = backtracking_line_search(
        noise, flat_old, step, tf.constant(0.0), 0.01, 0.5, 10, expected_improvement=1.0, accept_ratio=0.1)
    assert not bool(accepted) and int(tries) == 10
    assert flat_new.numpy().tobytes() == flat_old.numpy().tobytes()


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_accept_ratio_outside_zero_one_is_refused(ratio):
    with pytest.raises(ValueError, match="accept_ratio"):
        TRPOStepSettings(accept_ratio=ratio)
    assert TRPOStepSettings(accept_ratio=1.0).accept_ratio == 1.0


@pytest.mark.parametrize("jit, value", [(False, 0.0), (False, 0.1), (True, -3.7)])
def test_zero_or_constant_advantages_report_a_zero_gradient_and_keep_weights(jit, value):
    actor = _actor("gaussian")
    obs, actions, _ = _batch(actor)
    before = _weights(actor)
    info = TRPOPolicyStep(actor, jit_compile=jit)(obs, actions, np.full(len(obs), value, np.float32))
    assert not info["accepted"] and info["status"] == 4 and info["grad_norm"] == 0.0
    assert info["reason"] == "zero policy gradient: advantages are all zero or constant"
    assert _weights(actor) == before


def test_fisher_rows_are_a_seeded_random_subset_covering_every_env():
    """On a time-major [T·n_envs] batch, a stride of n_envs would keep env 0 only."""
    n_steps, n_envs = 256, 8
    rows = fisher_rows(tf.constant(n_steps * n_envs), n_envs, tf.constant([3, 0], tf.int64)).numpy()
    assert len(rows) == n_steps and len(np.unique(rows)) == n_steps
    assert rows.min() >= 0 and rows.max() < n_steps * n_envs
    per_env = np.bincount(rows % n_envs, minlength=n_envs)
    assert per_env.min() >= 12 and per_env.max() <= 60  # ~32 each (binomial sd ~5)
    again = fisher_rows(tf.constant(n_steps * n_envs), n_envs, tf.constant([3, 0], tf.int64)).numpy()
    other = fisher_rows(tf.constant(n_steps * n_envs), n_envs, tf.constant([4, 0], tf.int64)).numpy()
    np.testing.assert_array_equal(rows, again)
    assert not np.array_equal(rows, other)
    assert len(fisher_rows(tf.constant(10), 3, tf.constant([0, 0], tf.int64))) == 4  # ⌈10 / 3⌉


def test_fisher_subsample_of_a_time_major_batch_sees_every_env():
    """Env 0 sits still (one repeated observation), the other envs move. A Fisher matrix estimated on env 0
    alone misjudges the step's size on the full batch; a random sub-sample sizes it like the full Fisher."""
    n_steps, n_envs = 256, 8
    actor = _actor("gaussian")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n_steps, n_envs, 5)).astype(np.float32)
    obs[:, 0] = obs[0, 0]
    obs = obs.reshape(-1, 5)  # time-major flattening, as the runner does
    actions = actor(obs).sample(seed=1).numpy()
    adv = (actions[:, 0] * (1.0 + obs[:, 0]) + 0.1 * rng.normal(size=len(obs))).astype(np.float32)
    start = [v.numpy() for v in actor.variables]

    def step(subsample: int, seed: int):
        for variable, value in zip(actor.variables, start):
            variable.assign(value)
        settings = TRPOStepSettings(fisher_subsample=subsample, cg_iters=20)
        return TRPOPolicyStep(actor, settings, jit_compile=False)(obs, actions, adv, fisher_seed=seed)

    full = step(1, 0)
    sub = step(n_envs, 0)
    assert full["accepted"] and sub["accepted"]
    assert sub["backtracks"] == full["backtracks"]
    assert 0.5 * full["kl"] < sub["kl"] < 2.0 * full["kl"]


def test_fisher_seed_is_used_and_the_compiled_step_is_traced_once():
    actor = _actor("gaussian")
    obs, actions, adv = _batch(actor, n=1024)
    start = [v.numpy() for v in actor.variables]
    step = TRPOPolicyStep(actor, TRPOStepSettings(fisher_subsample=4), jit_compile=True)
    results = []
    for seed in (1, 2, 1):
        for variable, value in zip(actor.variables, start):
            variable.assign(value)
        assert step(obs, actions, adv, fisher_seed=seed)["accepted"]
        results.append(_weights(actor))
    step(obs, actions, adv)  # no seed: drawn from the step's own generator
    assert results[0] == results[2] and results[0] != results[1]
    assert step._compiled.experimental_get_tracing_count() == 1
