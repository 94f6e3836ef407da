"""The Gauss-Newton Fisher-vector product of a Dense-chain actor, from per-sample layer Jacobians.

The product is the one of :func:`trpo_tf.trpo.gauss_newton_fvp` (Martens 2014, "New insights and
perspectives on the natural gradient", §9): Fv = Jᵀ·H·J·v + damping·v. Here it is evaluated for the actors of
:mod:`trpo_tf.models` — normalize → hidden Dense layers h_l = σ(y_l), y_l = h_{l-1}·W_l + b_l → a Dense head
o = h_L·W_o + b_o → π(·|o, s), with s the state-free parameters (the Gaussian's log-std).

Within one policy step the CG loop multiplies by the same J ten times. What does not change between those
products is computed once: the forward pass, and the per-sample Jacobians K_l = ∂o/∂y_l [n, k, m_l] of the
head's k outputs in each hidden pre-activation, by a backward recursion with k columns (k = action dimension):

    K_L = W_oᵀ ⊙ σ'(y_L),    K_l = (K_{l+1}·W_{l+1}ᵀ) ⊙ σ'(y_l)

Then a product is one dot per layer each way, instead of tangents and cotangents that also pass through
every later layer's weights (two dots per layer each way):

    J·v :  ȯ = h_L·Ẇ_o + ḃ_o + Σ_l K_l·(h_{l-1}·Ẇ_l + ḃ_l),   ṡ = v_s
    Jᵀ·u:  δ_l = K_lᵀ·u_o,   W_l ← h_{l-1}ᵀ·δ_l,   b_l ← Σ_n δ_l,   W_o ← h_Lᵀ·u_o,   b_o ← Σ_n u_o,   s ← u_s

H is the Hessian of the mean KL(π_old ‖ π(·|o, s)) in (o, s) at the old point, by double backprop: cheap, as o
enters each sample's KL alone. At θ_old that Hessian is the Gauss-Newton matrix at the level of (o, s): the
KL's gradient in the distribution's parameters is zero there, so the curvature of the map (o, s) → those
parameters drops out. At the seed settings (2,048 × 11 → 64 → 64 → 3) a product costs 44 MFLOP here against
76 by forward-mode + backward autodiff, 0.76 against 1.14 ms (docs/benchmarks.md, "Issue 13, session 6").

The same recorded Jacobians give the surrogate gradient, g = Jᵀ·∂L/∂(o, s) (:meth:`Linearization.gradient`),
without a backward pass through the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from trpo_tf.models import _Actor

tfd = tfp.distributions


@dataclass(frozen=True)
class DenseChain:
    """Where each layer's parameters sit in ``actor.trainable_variables``."""

    hidden: tuple[tuple[int, int, Callable[[tf.Tensor], tf.Tensor]], ...]  # (kernel, bias, activation)
    head: tuple[int, int]  # (kernel, bias) of the head
    state_free: tuple[int, ...]  # the distribution's state-free parameters (the log-std)


def dense_chain(actor: _Actor) -> DenseChain | None:
    """The actor's layout as a :class:`DenseChain`, or None when it is not one (then use autodiff)."""
    index = {id(v): i for i, v in enumerate(actor.trainable_variables)}
    layers = [*actor.hidden, actor.head]
    if not all(isinstance(layer, keras.layers.Dense) and layer.use_bias for layer in layers):
        return None
    if actor.head.activation is not keras.activations.linear:
        return None
    try:
        places = [(index[id(layer.kernel)], index[id(layer.bias)]) for layer in layers]
        state_free = tuple(index[id(v)] for v in actor.state_free_variables)
    except KeyError:  # a frozen layer: not a parameter of the step
        return None
    covered = {i for pair in places for i in pair} | set(state_free)
    if covered != set(range(len(index))) or any(bias != kernel + 1 for kernel, bias in places):
        return None  # (Keras keeps a Dense layer's bias right after its kernel: [W; b] is one block)
    hidden = tuple((k, b, layer.activation) for (k, b), layer in zip(places[:-1], layers[:-1]))
    return DenseChain(hidden, places[-1], state_free)


def kl_hessian_product(old: tfd.Distribution, distribution: Callable[[list[tf.Tensor]], tfd.Distribution],
                       point: list[tf.Tensor], w: list[tf.Tensor]) -> list[tf.Tensor]:
    """H·w, H the Hessian of mean KL(``old`` ‖ ``distribution(z)``) in the tensors z at z = ``point``, by double
    backprop; cheap where each sample's KL reads its own slice of z (the Gauss-Newton products' H)."""
    at = [tf.identity(t) for t in point]  # the point, separate from ``old``'s own tensors
    with tf.GradientTape() as outer:
        outer.watch(at)
        with tf.GradientTape() as inner:
            inner.watch(at)
            kl = tf.reduce_mean(old.kl_divergence(distribution(at)))
        grad_w = tf.add_n([tf.reduce_sum(g * t) for g, t in zip(inner.gradient(kl, at), w)])
    return outer.gradient(grad_w, at, unconnected_gradients=tf.UnconnectedGradients.ZERO)


class Linearization:
    """The actor linearized at θ_old = ``params`` on a batch: the forward pass, the activations' slopes and the
    layer Jacobians, recorded once; then J·v (:meth:`jvp`), Jᵀ·u (:meth:`vjp`) and the KL's Hessian in (o, s)
    (:meth:`hessian`) are cheap. ``params`` are ordered as ``actor.trainable_variables``; v and Jᵀ·u are flat.

    Each Dense layer's kernel and bias sit side by side in v, so they are read as one block [W; b] and the
    layer's input gets a column of ones: J·v and Jᵀ·u are one dot per layer each, the bias included.
    """

    def __init__(self, actor: _Actor, chain: DenseChain, params: list[tf.Tensor], obs: tf.Tensor) -> None:
        self.actor, self.chain, self.params = actor, chain, params
        sizes = [int(np.prod(p.shape)) for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.layers = [(kernel, bias) for kernel, bias, _ in chain.hidden] + [chain.head]

        # The forward pass, the activations' slopes σ'(y_l), the layers' inputs with a ones column.
        h = [actor.normalizer(obs)]
        self.slopes = []
        for kernel, bias, activation in chain.hidden:
            y = tf.matmul(h[-1], params[kernel]) + params[bias]
            with tf.GradientTape() as tape:
                tape.watch(y)
                a = activation(y)
            self.slopes.append(tape.gradient(a, y))  # elementwise activation: the diagonal of ∂h/∂y
            h.append(a)
        ones = tf.ones_like(h[0][:, :1])
        self.inputs = [tf.concat([x, ones], axis=1) for x in h]  # h̃_l = [h_l, 1]
        self.head_kernel = params[chain.head[0]]
        out = tf.matmul(h[-1], self.head_kernel) + params[chain.head[1]]
        #: the point (o, s...) the actor is linearized at: the head's output and the state-free parameters
        self.point = [tf.stop_gradient(out)] + [tf.stop_gradient(params[i]) for i in chain.state_free]

        # K_l = ∂o/∂y_l for the hidden layers before the last, side by side and transposed [n, Σ m_l, k]. The
        # last needs none: K_L·ẏ = (ẏ ⊙ σ'(y_L))·W_o and K_Lᵀ·u = (u·W_oᵀ) ⊙ σ'(y_L) are dots with the head.
        jacobians: list[tf.Tensor] = []
        if len(chain.hidden) > 1:
            jacobians = [tf.transpose(self.head_kernel)[None] * self.slopes[-1][:, None, :]]  # K_L [n, k, m_L]
            for layer in range(len(chain.hidden) - 1, 0, -1):
                next_kernel = params[chain.hidden[layer][0]]  # [m_{l-1}, m_l]
                through = tf.einsum("nkm,jm->nkj", jacobians[0], next_kernel)
                jacobians.insert(0, through * self.slopes[layer - 1][:, None, :])
            jacobians.pop()  # K_L itself: the dots above
        self.widths = [int(k.shape[-1]) for k in jacobians]
        # Both layouts, each summed over its middle axis: XLA fuses that product and sum into one loop, where
        # a sum over the last axis of [n, k, Σ m_l] became three passes (a product, then a two-stage sum).
        self.jacobian = tf.concat(jacobians, axis=2) if jacobians else None  # [n, k, Σ m_l], for Jᵀ·u
        self.jacobian_t = tf.transpose(self.jacobian, [0, 2, 1]) if jacobians else None  # for J·v
        self.old = actor.distribution(self.point[0], self.point[1:])

    def _block(self, v: tf.Tensor, kernel: int) -> tf.Tensor:
        """[W; b] of the layer whose kernel is ``params[kernel]``, from the flat v."""
        rows, cols = self.params[kernel].shape
        return tf.reshape(v[self.offsets[kernel]:self.offsets[kernel + 2]], [rows + 1, cols])

    def jvp(self, v: tf.Tensor) -> list[tf.Tensor]:
        """J·v = [ȯ, ṡ...]: ẏ_l = h̃_{l-1}·[Ẇ_l; ḃ_l], ȯ = h̃_L·[Ẇ_o; ḃ_o] + (ẏ_L ⊙ σ'(y_L))·W_o + Σ_{l<L} K_l·ẏ_l."""
        pre = [tf.matmul(self.inputs[layer], self._block(v, kernel)) for layer, (kernel, _) in enumerate(self.layers)]
        out_dot = pre.pop()
        if pre:
            out_dot += tf.matmul(pre[-1] * self.slopes[-1], self.head_kernel)
        if self.jacobian_t is not None:
            out_dot += tf.reduce_sum(self.jacobian_t * tf.concat(pre[:-1], axis=1)[:, :, None], axis=1)
        return [out_dot] + [v[self.offsets[i]:self.offsets[i + 1]] for i in self.chain.state_free]

    def vjp(self, u: list[tf.Tensor]) -> tf.Tensor:
        """Jᵀ·u for u = [u_o, u_s...] (flat): δ_l = K_lᵀ·u_o (δ_L = (u_o·W_oᵀ) ⊙ σ'(y_L)), [W_l; b_l] ← h̃_{l-1}ᵀ·δ_l,
        [W_o; b_o] ← h̃_Lᵀ·u_o, s ← u_s."""
        u_out, *u_free = u
        deltas = []
        if self.jacobian is not None:
            deltas = tf.split(tf.reduce_sum(self.jacobian * u_out[:, :, None], axis=1), self.widths, axis=1)
        if self.chain.hidden:
            deltas.append(tf.matmul(u_out, self.head_kernel, transpose_b=True) * self.slopes[-1])
        deltas.append(u_out)
        pieces = {kernel: tf.reshape(tf.matmul(self.inputs[layer], delta, transpose_a=True), [-1])
                  for layer, ((kernel, _), delta) in enumerate(zip(self.layers, deltas))}
        pieces.update({i: tf.reshape(w, [-1]) for i, w in zip(self.chain.state_free, u_free)})
        return tf.concat([pieces[i] for i in sorted(pieces)], axis=0)

    def hessian(self, w: list[tf.Tensor]) -> list[tf.Tensor]:
        """H·w, w = [ȯ, ṡ...]: the Hessian of the mean KL(π_old ‖ π(·|o, s)) in (o, s) at the old point."""
        return kl_hessian_product(self.old, lambda at: self.actor.distribution(at[0], at[1:]), self.point, w)

    def fvp(self, v: tf.Tensor, damping: float) -> tf.Tensor:
        """F·v + damping·v = Jᵀ·H·J·v + damping·v, v flat."""
        return self.vjp(self.hessian(self.jvp(v))) + damping * v

    def gradient(self, objective: Callable[[tfd.Distribution], tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """(objective(π_old), ∇θ objective(π_θ) at θ_old) = Jᵀ·∂objective/∂(o, s): the chain rule through the
        recorded Jacobians, no backward pass through the network."""
        at = [tf.identity(t) for t in self.point]
        with tf.GradientTape() as tape:
            tape.watch(at)
            value = objective(self.actor.distribution(at[0], at[1:]))
        return value, self.vjp(tape.gradient(value, at, unconnected_gradients=tf.UnconnectedGradients.ZERO))


def layer_jacobian_fvp(actor: _Actor, chain: DenseChain, params: list[tf.Tensor], obs: tf.Tensor,
                       damping: float) -> Callable[[tf.Tensor], tf.Tensor]:
    """v ↦ Jᵀ·H·J·v + damping·v at θ_old = ``params`` (ordered as ``actor.trainable_variables``), v flat."""
    linear = Linearization(actor, chain, params, obs)
    return lambda v: linear.fvp(v, damping)
