"""The TRPO policy step as ONE compiled ``tf.function`` (seed 004, Schulman et al. 2015 §6 and App. C).

    g   = ∇θ L(θ),  L(θ) = mean( π_θ(a|s) / π_old(a|s) · Â )          surrogate gradient
    x  ≈ F⁻¹ g   by conjugate gradient on Fisher-vector products        natural gradient direction
    Fv = Jᵀ · H_z · (J · v) + damping · v                               Gauss-Newton form (default), or
    Fv = ∇θ( (∇θ KL(π_old ‖ π_θ)) · v ) + damping · v                  nested GradientTape
    step = √(2δ / xᵀFx) · x                   largest step of the quadratic model (F·x = g − r, CG's residual)
    θ_new = θ_old + 0.5ᵏ · step,  the smallest k with KL ≤ δ and L(θ_new) − L(θ_old) > 0 and
                                    ≥ accept_ratio · 0.5ᵏ · gᵀstep (a real share of the linear model's
                                    promise, Schulman's original code); else θ_old

For the Dense-chain actors of trpo_tf/models.py, the Gauss-Newton product and the surrogate gradient are
evaluated from per-sample layer Jacobians recorded once per step (trpo_tf/fisher.py: 44 MFLOP a product at the
seed settings instead of 76). ``fisher_product="gauss-newton-autodiff"`` keeps the autodiff evaluation below,
which any other actor uses too.

The two Fisher-vector products are equal at θ_old (the KL's gradient vanishes there, so its Hessian is the
Gauss-Newton matrix Jᵀ H_z J; Martens 2014, "New insights and perspectives on the natural gradient", §9).
J = ∂z/∂θ is the Jacobian of the distribution's parameter tensors z (Gaussian loc/scale, or logits) and
H_z the Hessian of the mean KL in z, which is cheap (elementwise). J·v is one forward-mode pass, Jᵀ·u one
backward pass through a forward pass recorded once, so a product costs about one forward + one backward
instead of a double backward.

Candidates are evaluated functionally (``keras.Model.stateless_call``), so the actor's variables are
written once, at the end: with the accepted parameters, or with the old ones, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from trpo_tf.fisher import Linearization, dense_chain, kl_hessian_product
from trpo_tf.models import GaussianActor, _Actor

tfd = tfp.distributions

# Why an update was rejected; index = the ``status`` diagnostic.
STATUS_REASONS = (
    "accepted",
    "line search failed: no step within KL <= max_kl that improves the surrogate",
    "non-finite surrogate or gradient (check advantages and observations)",
    "non-finite conjugate-gradient solution or step (Fisher product ill-conditioned)",
    "zero policy gradient: advantages are all zero or constant",
)

# "gauss-newton": from per-sample layer Jacobians for Dense-chain actors (trpo_tf/fisher.py), by autodiff
# otherwise; "gauss-newton-autodiff": always by autodiff; "nested-tape": the double backward.
FISHER_PRODUCTS = ("gauss-newton", "gauss-newton-autodiff", "nested-tape")


@dataclass(frozen=True)
class TRPOStepSettings:
    """Hyperparameters of the policy step (defaults: seed 004)."""

    max_kl: float = 0.01
    cg_iters: int = 10
    cg_tol: float = 1e-10
    cg_damping: float = 0.1
    fisher_subsample: int = 1
    backtrack_coef: float = 0.5
    backtrack_iters: int = 10
    fisher_product: str = "gauss-newton"  # one of FISHER_PRODUCTS: equal at θ_old, Gauss-Newton is cheaper
    accept_ratio: float = 0.1  # least share of the expected improvement a step must realise

    def __post_init__(self) -> None:
        if not 0.0 < self.accept_ratio <= 1.0:
            raise ValueError(f"accept_ratio must be in (0, 1], got {self.accept_ratio!r}")
        if self.fisher_product not in FISHER_PRODUCTS:
            raise ValueError(f"fisher_product must be one of {FISHER_PRODUCTS}, got {self.fisher_product!r}")


def flatten(tensors: list[tf.Tensor]) -> tf.Tensor:
    """Concatenate tensors into one flat vector."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(flat: tf.Tensor, like: list[tf.Tensor]) -> list[tf.Tensor]:
    """Split a flat vector into tensors shaped like ``like``."""
    sizes = [int(np.prod(t.shape)) for t in like]
    return [tf.reshape(part, t.shape) for part, t in zip(tf.split(flat, sizes), like)]


def mean_kl(policy: Callable, params: list[tf.Tensor], obs: tf.Tensor, old_dist) -> tf.Tensor:
    """Mean over states of KL(π_old(·|s) ‖ π_θ(·|s)) (TFP ``kl_divergence``)."""
    return tf.reduce_mean(old_dist.kl_divergence(policy(params, obs)))


def fisher_vector_product(policy: Callable, params: list[tf.Tensor], obs: tf.Tensor, old_dist,
                          v: tf.Tensor, damping: float) -> tf.Tensor:
    """F·v + damping·v, F the Hessian of the mean KL at θ_old (seed 004, "Fisher-Vector Product"):
    differentiate (∇θ KL)·v once more, by nested ``tf.GradientTape``; F itself is never formed."""
    with tf.GradientTape() as outer:
        outer.watch(params)
        with tf.GradientTape() as inner:
            inner.watch(params)
            kl = mean_kl(policy, params, obs, old_dist)
        grad_kl_v = tf.tensordot(flatten(inner.gradient(kl, params)), tf.stop_gradient(v), 1)
    return flatten(outer.gradient(grad_kl_v, params)) + damping * v


def gauss_newton_fvp(policy: Callable, params: list[tf.Tensor], obs: tf.Tensor,
                     damping: float) -> Callable[[tf.Tensor], tf.Tensor]:
    """v ↦ Jᵀ·H_z·(J·v) + damping·v, the Fisher-vector product at θ_old = ``params`` (Martens 2014, §9).

    z are the tensors of π_θ(·|obs) (``tf.nest.flatten(dist, expand_composites=True)``: Gaussian loc and
    scale, or logits), J = ∂z/∂θ and H_z the Hessian of mean KL(π_old ‖ π_z) in z at z_old. The forward pass
    is recorded once for every Jᵀ·u; J·v is one forward-mode pass; H_z·w a cheap elementwise double backprop.
    Equal to :func:`fisher_vector_product` at θ_old, where the KL's gradient in z vanishes.
    """
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(params)
        dist = policy(params, obs)
        z = tf.nest.flatten(dist, expand_composites=True)
    z_old = [tf.stop_gradient(t) for t in z]
    old = tf.nest.pack_sequence_as(dist, z_old, expand_composites=True)

    def hessian_z(w: list[tf.Tensor]) -> list[tf.Tensor]:
        return kl_hessian_product(old, lambda at: tf.nest.pack_sequence_as(dist, at, expand_composites=True),
                                  z_old, w)

    def fvp(v: tf.Tensor) -> tf.Tensor:
        with tf.autodiff.ForwardAccumulator(params, unflatten(v, params)) as acc:
            z_v = tf.nest.flatten(policy(params, obs), expand_composites=True)
        jv = [acc.jvp(t, unconnected_gradients=tf.UnconnectedGradients.ZERO) for t in z_v]
        jt_u = tape.gradient(z, params, output_gradients=hessian_z(jv),
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return flatten(jt_u) + damping * v

    return fvp


def conjugate_gradient(matvec: Callable[[tf.Tensor], tf.Tensor], b: tf.Tensor, iters: int,
                       tol: float = 1e-10) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Solve A x = b for symmetric positive-definite A given only ``matvec(v) = A v`` (seed 004).

    Stops after ``iters`` iterations or when ‖r‖² ≤ tol. Returns (x, ‖r‖², iterations done); see
    :func:`conjugate_gradient_ax` for A·x as well.
    """
    x, _, rr, i = conjugate_gradient_ax(matvec, b, iters, tol)
    return x, rr, i


def conjugate_gradient_ax(matvec: Callable[[tf.Tensor], tf.Tensor], b: tf.Tensor, iters: int,
                          tol: float = 1e-10) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """:func:`conjugate_gradient`, also returning A·x = b − r (the recursion keeps r = b − A·x, x₀ = 0), so
    the step size's xᵀAx needs no extra product: (x, A·x, ‖r‖², iterations done).

    A ``tf.while_loop``: measured as fast as a Python-unrolled loop at 10 iterations, 1.7× faster at 25, and
    quicker to compile (docs/benchmarks.md); tensors computed outside it (the Gauss-Newton product's
    recorded forward pass) are shared by every iteration anyway.
    """
    x = tf.zeros_like(b)
    r = tf.identity(b)
    p = tf.identity(b)
    rr = tf.tensordot(r, r, 1)

    def keep_going(i, x, r, p, rr):
        return tf.logical_and(i < iters, rr > tol)

    def iteration(i, x, r, p, rr):
        ap = matvec(p)
        alpha = rr / tf.tensordot(p, ap, 1)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = tf.tensordot(r, r, 1)
        p = r + (rr_new / rr) * p
        return i + 1, x, r, p, rr_new

    i, x, r, _, rr = tf.while_loop(keep_going, iteration, (tf.constant(0), x, r, p, rr))
    return x, b - r, rr, i


def fisher_rows(n: tf.Tensor, every: int, seed: tf.Tensor) -> tf.Tensor:
    """⌈n / every⌉ distinct row indices drawn uniformly from the flattened batch (stateless, ``seed`` [2]).

    A random subset, not ``[::every]``: the batch is time-major [T·n_envs], so a stride that is a multiple of
    n_envs would keep the same envs every time (every = n_envs keeps env 0 only).
    """
    return tf.argsort(tf.random.stateless_uniform([n], seed))[: (n + every - 1) // every]


def _all_finite(*tensors: tf.Tensor) -> tf.Tensor:
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def backtracking_line_search(evaluate: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]], flat_old: tf.Tensor,
                             full_step: tf.Tensor, surrogate_before: tf.Tensor, max_kl: float,
                             coef: float = 0.5, max_tries: int | tf.Tensor = 10,
                             expected_improvement: tf.Tensor | float = 0.0, accept_ratio: float = 0.1):
    """Try θ_old + coefᵏ·step for k = 0, 1, …; accept the first with finite values, KL ≤ max_kl and an
    actual improvement L_new − L_old that is > 0 and ≥ accept_ratio · coefᵏ · ``expected_improvement``
    (seed 004, "Line Search"; seed 000, step 6; the ratio test of Schulman's original TRPO code).

    ``expected_improvement`` is gᵀ·full_step, the linear model's gain for the full step (0 keeps only the
    "> 0" test). Without the ratio test a step whose gain is float32 noise above zero would be accepted.
    ``evaluate(flat_params) -> (surrogate, mean KL)``. Returns (accepted, tries, flat_new, surrogate, kl) with
    ``flat_new`` equal to ``flat_old`` element for element when nothing was accepted.
    """

    def not_done(k, accepted, surrogate_new, kl_new):
        return tf.logical_and(tf.logical_not(accepted), k < max_tries)

    def backtrack(k, accepted, surrogate_new, kl_new):
        fraction = tf.pow(coef, tf.cast(k, tf.float32))
        surrogate_new, kl_new = evaluate(flat_old + fraction * full_step)
        improvement = surrogate_new - surrogate_before
        ok = (_all_finite(surrogate_new, kl_new) & (kl_new <= max_kl) & (improvement > 0.0)
              & (improvement >= accept_ratio * fraction * expected_improvement))
        return k + 1, ok, surrogate_new, kl_new

    tries, accepted, surrogate_new, kl_new = tf.while_loop(
        not_done, backtrack, (tf.constant(0), tf.constant(False), surrogate_before, tf.constant(0.0)))
    fraction = tf.pow(coef, tf.cast(tries - 1, tf.float32))
    flat_new = tf.where(accepted, flat_old + fraction * full_step, flat_old)
    return accepted, tries, flat_new, surrogate_new, kl_new


class TRPOPolicyStep:
    """Owns the compiled policy step for one actor. Call :meth:`__call__` with a rollout batch."""

    def __init__(self, actor: _Actor, settings: TRPOStepSettings = TRPOStepSettings(),
                 jit_compile: bool = True, seed: int = 0) -> None:
        self.actor = actor
        self.settings = settings
        self._rng = np.random.default_rng(seed)  # Fisher sub-sample seeds when the caller passes none
        self._chain = dense_chain(actor)  # None: not a Dense chain, the Gauss-Newton product by autodiff
        # The loops are explicit tf.while_loops, so no AutoGraph: converting the sources was ~1 s of the first call.
        self._compiled = tf.function(self._step, jit_compile=jit_compile, reduce_retracing=True, autograph=False)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, advantages: np.ndarray,
                 fisher_seed: int | None = None) -> dict[str, float]:
        """Run one step; returns diagnostics as Python numbers (``reason`` says why if rejected).

        ``fisher_seed`` picks the random Fisher sub-sample (used when ``fisher_subsample`` > 1); without it
        the step draws one from its own generator (seeded at construction, not checkpointed: pass one drawn
        from the run's checkpointed generator for a bit-exact resume). A tensor argument: no retracing.
        """
        out = self._compiled(tf.convert_to_tensor(obs, tf.float32), tf.convert_to_tensor(actions),
                             tf.convert_to_tensor(advantages, tf.float32), self.fisher_seed_tensor(fisher_seed))
        return self.diagnostics({k: v.numpy() for k, v in out.items()})

    def fisher_seed_tensor(self, fisher_seed: int | None) -> tf.Tensor:
        """The [2] int64 seed of the Fisher sub-sample (drawn from the step's own generator if None)."""
        if fisher_seed is None:
            fisher_seed = int(self._rng.integers(2**31 - 1))
        return tf.constant([fisher_seed, 0], tf.int64)

    @staticmethod
    def diagnostics(out: dict[str, np.ndarray]) -> dict[str, float]:
        """The compiled step's outputs as Python numbers, with ``accepted`` a bool and the ``reason``."""
        diagnostics = {k: float(v) for k, v in out.items()}
        diagnostics["accepted"] = bool(diagnostics["accepted"])
        diagnostics["reason"] = STATUS_REASONS[int(diagnostics["status"])]
        return diagnostics

    # --- the compiled step -------------------------------------------------------------------------
    def graph(self, obs: tf.Tensor, actions: tf.Tensor, advantages: tf.Tensor,
              fisher_seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """The step as graph ops, for callers that compile it together with more work
        (:class:`trpo_tf.update.TRPOUpdate`)."""
        return self._step(obs, actions, advantages, fisher_seed)

    def _step(self, obs: tf.Tensor, actions: tf.Tensor, advantages: tf.Tensor,
              fisher_seed: tf.Tensor) -> dict[str, tf.Tensor]:
        s = self.settings
        variables = self.actor.trainable_variables
        params = [tf.identity(v.value) for v in variables]
        fixed = [v.value for v in self.actor.non_trainable_variables]
        flat_old = flatten(params)

        def policy(p: list[tf.Tensor], x: tf.Tensor):
            return self.actor.stateless_call(p, fixed, x)[0]

        # π_old: the policy that collected the batch, a constant from here on.
        frozen = [tf.stop_gradient(p) for p in params]
        old_dist = policy(frozen, obs)
        old_log_prob = tf.stop_gradient(old_dist.log_prob(actions))
        obs_fisher = obs if s.fisher_subsample == 1 else \
            tf.gather(obs, fisher_rows(tf.shape(obs)[0], s.fisher_subsample, fisher_seed))
        # Constant advantages carry no signal: make them exactly 0 (centring by a rounded mean would leave
        # a constant residue that the division by a tiny std blows up into a random direction).
        spread = tf.reduce_max(advantages) - tf.reduce_min(advantages)
        adv = tf.where(spread == 0.0, tf.zeros_like(advantages),  # (a NaN spread keeps the NaNs: status 2)
                       (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8))

        # L = mean(π(a|s) / π_old(a|s) · Â) for a candidate's distribution
        def surrogate_of(dist: tfd.Distribution) -> tf.Tensor:
            ratio = tf.exp(dist.log_prob(actions) - old_log_prob)
            return tf.reduce_mean(ratio * adv)

        # 1. surrogate gradient g; 2. Fisher-vector product on (a sub-sample of) the batch
        if s.fisher_product == "gauss-newton" and self._chain is not None:
            # g = Jᵀ·∂L/∂(o, s) and Fv = Jᵀ·H·J·v + damping·v, with J recorded once (trpo_tf/fisher.py)
            linear = Linearization(self.actor, self._chain, params, obs)
            surrogate_before = surrogate_of(old_dist)
            g = linear.gradient(surrogate_of)[1]
            linear_fisher = linear if s.fisher_subsample == 1 else \
                Linearization(self.actor, self._chain, params, obs_fisher)

            def fvp(v: tf.Tensor) -> tf.Tensor:
                return linear_fisher.fvp(v, s.cg_damping)
        else:
            with tf.GradientTape() as tape:
                tape.watch(params)
                surrogate_before = surrogate_of(policy(params, obs))
            g = flatten(tape.gradient(surrogate_before, params))
            if s.fisher_product == "nested-tape":
                old_dist_fisher = old_dist if s.fisher_subsample == 1 else policy(frozen, obs_fisher)

                def fvp(v: tf.Tensor) -> tf.Tensor:
                    return fisher_vector_product(policy, params, obs_fisher, old_dist_fisher, v, s.cg_damping)
            else:  # "gauss-newton-autodiff", or "gauss-newton" for an actor that is not a Dense chain
                fvp = gauss_newton_fvp(policy, params, obs_fisher, s.cg_damping)

        # 3. natural gradient direction x ≈ F⁻¹ g, and the largest step √(2δ / xᵀFx)·x
        gradient_ok = _all_finite(surrogate_before, g)
        safe_g = tf.where(gradient_ok, g, tf.zeros_like(g))
        gradient_zero = tf.reduce_all(tf.equal(safe_g, 0.0))
        x, fx, cg_residual, cg_iterations = conjugate_gradient_ax(fvp, safe_g, s.cg_iters, s.cg_tol)
        xfx = tf.tensordot(x, fx, 1)  # F·x from CG's residual: no 11th product
        full_step = tf.sqrt(2.0 * s.max_kl / xfx) * x
        step_ok = tf.logical_and(_all_finite(x, full_step), xfx > 0.0)
        can_search = gradient_ok & ~gradient_zero & step_ok
        full_step = tf.where(can_search, full_step, tf.zeros_like(full_step))
        expected_improvement = tf.tensordot(safe_g, full_step, 1)  # gᵀ·step, the linear model's gain

        # 4. backtracking line search: the first 0.5ᵏ·step with KL ≤ δ and L improved by a real share of
        #    the expected 0.5ᵏ·gᵀstep
        def evaluate(flat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            dist = policy(unflatten(flat, params), obs)  # one forward pass for both
            return surrogate_of(dist), tf.reduce_mean(old_dist.kl_divergence(dist))

        accepted, tries, flat_new, surrogate_after, kl = backtracking_line_search(
            evaluate, flat_old, full_step, surrogate_before, s.max_kl, s.backtrack_coef,
            tf.where(can_search, s.backtrack_iters, 0), expected_improvement, s.accept_ratio)

        # 5. write the weights once: the accepted candidate, or θ_old exactly
        for variable, value in zip(variables, unflatten(flat_new, params)):
            variable.assign(value)

        status = tf.where(~gradient_ok, 2, tf.where(gradient_zero, 4, tf.where(~step_ok, 3, tf.where(accepted, 0, 1))))
        entropy = tf.reduce_mean(old_dist.entropy())
        mean_std = tf.reduce_mean(tf.exp(self.actor.log_std)) if isinstance(self.actor, GaussianActor) \
            else tf.constant(0.0)
        return {
            "accepted": tf.cast(accepted, tf.float32),
            "status": tf.cast(status, tf.float32),
            "surrogate_before": surrogate_before,
            "surrogate_after": tf.where(accepted, surrogate_after, surrogate_before),
            "kl": tf.where(accepted, kl, 0.0),
            "backtracks": tf.cast(tf.where(accepted, tries - 1, tries), tf.float32),
            "cg_residual": cg_residual,
            "cg_iterations": tf.cast(cg_iterations, tf.float32),
            "grad_norm": tf.norm(g),
            "step_norm": tf.norm(flat_new - flat_old),
            "expected_improvement": expected_improvement,
            "entropy": entropy,
            "mean_std": mean_std,
        }
