"""The Kalman filter recursions behind :class:`~ldm_keras.predictors.KalmanFilter`.

Notation (docs/spec.md §4; rows are batch entries, so a state is a row vector ``h``)::

    predict:  h⁻ = (h - b) Aᵀ + b          P⁻ = A P Aᵀ + Q
              ẑ  = h⁻ Dᵀ                   S  = D P⁻ Dᵀ + R + jitter·I
    factor:   S = C Cᵀ,  W = C⁻¹           G  = W D P⁻           Kᵀ = Wᵀ G   (K = P⁻ Dᵀ S⁻¹)
    update:   h  = h⁻ + e Kᵀ,  e = z - ẑ   P  = P⁻ - Gᵀ G                     ("standard")
                                           P  = (I - KD) P⁻ (I - KD)ᵀ + K R Kᵀ   ("joseph")
    loss:     nll = ½ ‖e W ᵀ‖² + ½ log det S,   log det S = 2 Σ log diag C

One Cholesky factorisation and its triangular inverse per step give the log-determinant,
the whitened innovation and the gain (the concatenated right-hand side ``[I | D P⁻]``).

Two recursions:

* :func:`shared_covariances` + :func:`shared_means` — when ``Q`` and ``R`` are the same
  for every sequence (learned or fixed noises, no per-frame noise network, no mask), the
  covariance recursion ``P, S, K`` does not depend on the data: it runs once per step
  without the batch axis, and the batch enters only through the means, a linear
  recursion ``u_t = u_{t-1} N_t + v_t`` (``u = h - b``) run by a sequential scan or
  in parallel over time (``log₂ T`` doubling steps). Run eagerly (PyTorch, TensorFlow
  outside ``tf.function``), the covariance recursion stops as soon as it reaches its
  float32 fixed point (the discrete algebraic Riccati equation's solution: ``P_t =
  P_{t-1}`` bit for bit) and reuses it for the remaining steps.
* :func:`batched_filter` — the general recursion with per-sequence covariances: masks
  (missing frames), per-frame observation noise, the innovation network, per-sequence
  time gaps or initial covariances.
"""

import keras
from keras import ops

from . import _linalg as la

_BACKEND = keras.backend.backend()


def is_eager(x=None):
    """True when values are concrete (an eager backend, not inside ``jit``/``tf.function``)."""
    if _BACKEND == "torch":
        import torch

        compiling = getattr(torch.compiler, "is_compiling", lambda: False)
        return not compiling()
    if _BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if _BACKEND == "jax":
        import jax

        return x is not None and not isinstance(x, jax.core.Tracer)
    return True


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """``keras.ops.scan`` whose per-step outputs may differ from the carry.

    Keras' TensorFlow scan stores the outputs in arrays shaped like the carry; there the
    outputs ride along in the carry (started from zeros shaped like one step's outputs,
    which XLA removes as dead code).
    """
    if _BACKEND != "tensorflow":
        return ops.scan(f, init, xs=xs, length=length, reverse=reverse, unroll=unroll)
    from keras import tree

    x0 = None if xs is None else tree.map_structure(lambda x: x[-1 if reverse else 0], xs)
    _, y0 = f(init, x0)
    y0 = tree.map_structure(ops.zeros_like, y0)

    def g(carry, x):
        c, y = f(carry[0], x)
        return (c, y), (c, y)

    (carry, _), (_, ys) = ops.scan(g, (init, y0), xs=xs, length=length, reverse=reverse,
                                   unroll=unroll)
    return carry, ys


def _time_varying(m, rank):
    return m is not None and len(m.shape) > rank


def _covariance_step(p, a, q, d, r, jitter, joseph):
    """One covariance step without the batch axis. ``p, a, q``: (S, S); ``r``: (L,)."""
    s, l_ = p.shape[-1], d.shape[0]
    prior = la.sym(ops.matmul(ops.matmul(a, p), la.transpose(a))) + q
    dp = ops.matmul(d, prior)                                        # (L, S)
    pred = la.sym(ops.matmul(dp, la.transpose(d)))
    pred = pred + ops.diag(r + jitter)
    chol, white = la.cholesky_and_inverse(pred)
    g = ops.matmul(white, dp)                                        # (L, S)
    kt = ops.matmul(la.transpose(white), g)                          # Kᵀ (L, S)
    if joseph:
        ikd = ops.eye(s, dtype="float32") - ops.matmul(la.transpose(kt), d)
        post = ops.matmul(ops.matmul(ikd, prior), la.transpose(ikd))
        post = post + ops.matmul(la.transpose(kt) * r, kt)
    else:
        post = prior - ops.matmul(la.transpose(g), g)
    post = la.sym(post)
    logdet = la.log_det_from_cholesky(chol)
    del l_
    return post, (prior, pred, white, logdet, kt, post)


_COV_KEYS = ("prior_cov", "prediction_cov", "whitening", "log_det", "gain_t", "state_cov")


def shared_covariances(a, q, d, r, p0, steps, jitter=1e-6, joseph=True, steady_state=True,
                       unroll=1):
    """The covariance recursion without the batch axis, for ``steps`` steps.

    Args:
        a: ``A``, ``(S, S)`` or per step ``(T, S, S)``.
        q: ``Q``, ``(S, S)`` or ``(T, S, S)``.
        d: ``D``, ``(L, S)``.
        r: diagonal of ``R``, ``(L,)``.
        p0: initial posterior covariance ``(S, S)``.
        steps: ``T`` (a Python int).
        steady_state: when run eagerly with constant ``A``, ``Q``, stop at the first
            step whose posterior covariance equals the previous one exactly and repeat
            it (the float32 fixed point: every later step would compute the same values).

    Returns:
        ``(dict of (T, …) stacks: prior_cov, prediction_cov, whitening, log_det, gain_t,
        state_cov; the step at which the fixed point was reached or None)``.
    """
    varying = _time_varying(a, 2) or _time_varying(q, 2)

    if not varying and steady_state and is_eager(p0):
        p, outs, fixed_at = p0, [], None
        for t in range(steps):
            p_new, out = _covariance_step(p, a, q, d, r, jitter, joseph)
            outs.append(out)
            if t > 0 and bool(ops.convert_to_numpy(ops.all(ops.equal(p_new, p)))):
                fixed_at = t + 1
                p = p_new
                break
            p = p_new
        stacked = [ops.stack(list(col), axis=0) for col in zip(*outs)]
        if fixed_at is not None and fixed_at < steps:
            rest = steps - fixed_at
            stacked = [ops.concatenate(
                [x, ops.broadcast_to(x[-1:], (rest,) + tuple(x.shape[1:]))], axis=0)
                for x in stacked]
        return dict(zip(_COV_KEYS, stacked)), fixed_at

    if not varying and steady_state and steps > 2 * STEADY_CHUNK:
        return _chunked_steady_state(a, q, d, r, p0, steps, jitter, joseph, unroll), None

    a_seq = a if _time_varying(a, 2) else None
    q_seq = q if _time_varying(q, 2) else None

    def body(p, xs):
        a_t = a if a_seq is None else xs[0]
        q_t = q if q_seq is None else xs[1]
        return _covariance_step(p, a_t, q_t, d, r, jitter, joseph)

    xs = None
    if varying:
        xs = (a if a_seq is not None else ops.zeros((steps,), "float32"),
              q if q_seq is not None else ops.zeros((steps,), "float32"))
    _, outs = scan(body, p0, xs=xs, length=steps, unroll=unroll)
    return dict(zip(_COV_KEYS, outs)), None


#: Steps per chunk of the traced steady-state recursion.
STEADY_CHUNK = 16


def _chunked_steady_state(a, q, d, r, p0, steps, jitter, joseph, unroll):
    """Traced (``jit`` / ``tf.function``) covariance recursion that skips its steady state.

    The ``T`` steps run as chunks of :data:`STEADY_CHUNK`; a chunk whose last two
    posterior covariances were equal (the float32 fixed point) makes every later chunk
    repeat its last step (``cond``: the recursion is not computed, forward or backward).
    """
    chunk = STEADY_CHUNK
    n_chunks = -(-steps // chunk)

    def step(p, _):
        return _covariance_step(p, a, q, d, r, jitter, joseph)

    def compute(p):
        p_new, outs = scan(step, p, length=chunk, unroll=unroll)
        post = outs[-1]
        fixed = ops.all(ops.equal(post[-1], post[-2]))
        return p_new, fixed, tuple(o[-1] for o in outs), outs

    _, _, last0, _ = compute(p0)  # shapes only (dead code once traced)
    last0 = tuple(ops.zeros_like(x) for x in last0)

    def body(carry, _):
        p, fixed, last = carry

        def repeat():
            outs = tuple(ops.broadcast_to(ops.expand_dims(x, 0), (chunk,) + tuple(x.shape))
                         for x in last)
            return p, fixed, last, outs

        p_new, fixed_new, last_new, outs = ops.cond(fixed, repeat, lambda: compute(p))
        return (p_new, fixed_new, last_new), outs

    init = (p0, ops.convert_to_tensor(False), last0)
    _, outs = scan(body, init, length=n_chunks)
    stacked = [ops.reshape(o, (n_chunks * chunk,) + tuple(o.shape[2:]))[:steps] for o in outs]
    return dict(zip(_COV_KEYS, stacked))


def _doubling_scan(n_mats, v):
    """All prefixes of ``u_t = u_{t-1} N_t + v_t`` (``u_0 = 0``) in ``⌈log₂ T⌉`` steps.

    ``n_mats``: ``(T, S, S)`` (or ``(S, S)``, the same every step); ``v``: ``(T, B, S)``.
    Step with offset ``δ`` composes each element with the one ``δ`` earlier,
    ``(N, v)_t ← (N_{t-δ} N_t, v_{t-δ} N_t + v_t)`` (Hillis-Steele); after the last step
    ``v_t = u_t``.
    """
    steps = v.shape[0]
    const = len(n_mats.shape) == 2
    n_cur = n_mats
    delta = 1
    while delta < steps:
        v_prev = ops.concatenate([ops.zeros_like(v[:delta]), v[:-delta]], axis=0)
        if const:
            v = v + ops.einsum("tbi,ij->tbj", v_prev, n_cur)
            n_cur = ops.matmul(n_cur, n_cur)
        else:
            v = v + ops.einsum("tbi,tij->tbj", v_prev, n_cur)
            eye = ops.broadcast_to(ops.eye(n_cur.shape[-1], dtype="float32"),
                                   (delta,) + tuple(n_cur.shape[1:]))
            n_prev = ops.concatenate([eye, n_cur[:-delta]], axis=0)
            n_cur = ops.matmul(n_prev, n_cur)
        delta *= 2
    return v


def shared_means(zc, u0, a, d, gain_t, parallel=False, unroll=1):
    """Posterior means (centred, ``u = h - b``) of the shared-covariance filter.

    ``u_t = u_{t-1} N_t + v_t`` with ``N_t = Aᵀ (I - Dᵀ K_tᵀ)`` and ``v_t = (z_t - D b) K_tᵀ``.

    Args:
        zc: ``z - D b``, ``(B, T, L)``.
        u0: ``h₀ - b``, ``(B, S)``.
        a: ``(S, S)`` or ``(T, S, S)``.
        d: ``(L, S)``.
        gain_t: ``K_tᵀ``, ``(T, L, S)``.
        parallel: the doubling scan over time instead of a sequential scan.

    Returns:
        ``(B, T, S)``.
    """
    s = d.shape[1]
    at = la.transpose(a)
    ikd_t = ops.eye(s, dtype="float32") - ops.einsum("ls,tlk->tsk", d, gain_t)  # (I - DᵀKᵀ)
    n_mats = ops.matmul(at, ikd_t) if len(a.shape) == 3 else ops.einsum("ij,tjk->tik", at,
                                                                         ikd_t)
    v = ops.einsum("btl,tls->tbs", zc, gain_t)                       # (T, B, S)
    # The initial state enters through the first step: v₁ += u₀ N₁.
    first = v[:1] + ops.expand_dims(ops.matmul(u0, n_mats[0]), 0)
    v = ops.concatenate([first, v[1:]], axis=0)
    if parallel:
        u = _doubling_scan(n_mats, v)
    else:
        def body(u, xs):
            n_t, v_t = xs
            u = ops.matmul(u, n_t) + v_t
            return u, u

        _, u = scan(body, ops.zeros_like(u0), xs=(n_mats, v), unroll=unroll)
    return ops.transpose(u, (1, 0, 2))


def batched_step(carry, xs, params):
    """One step of the general filter with per-sequence covariances.

    ``carry``: ``(h (B, S), P (B, S, S), history (B, k·L) or None)``; ``xs``: dict with
    ``z`` (B, L) and optionally ``log_var`` (B, L), ``mask`` (B,) bool, ``a`` and ``q``
    (B, S, S) per-step transition and process noise. ``params``: dict with ``a``, ``b``,
    ``d``, ``q_fn`` (history → process noise (B?, S, S)), ``r_fn`` (log_var → (B?, L)),
    ``jitter``, ``joseph``, ``stop_gradient_targets``.

    Returns the new carry and ``(ẑ, nll, h, S_t, P, h⁻, P⁻)`` of the step. A masked step
    (``mask`` False) predicts but does not update: ``h = h⁻``, ``P = P⁻``, nll 0.
    """
    h, p, hist = carry
    s = p.shape[-1]
    a = xs.get("a", params["a"])
    b, d = params["b"], params["d"]
    q = xs["q"] if "q" in xs else params["q_fn"](hist)
    r = params["r_fn"](xs.get("log_var"))
    z = xs["z"]
    mask = xs.get("mask")

    if len(a.shape) == 3:  # per sequence (B, S, S)
        prior_mean = ops.einsum("bi,bji->bj", h - b, a) + b
        prior = la.sym(ops.einsum("bij,bjk,blk->bil", a, p, a)) + q
    else:
        prior_mean = ops.matmul(h - b, la.transpose(a)) + b
        prior = la.sym(ops.einsum("ij,bjk,lk->bil", a, p, a)) + q
    dp = ops.einsum("ls,bsk->blk", d, prior)
    pred_cov = la.sym(ops.einsum("blk,mk->blm", dp, d))
    pred_cov = pred_cov + ops.expand_dims(r + params["jitter"], -1) * ops.eye(
        d.shape[0], dtype="float32")
    chol, white = la.cholesky_and_inverse(pred_cov)
    g = ops.matmul(white, dp)                                        # (B, L, S)
    kt = ops.matmul(la.transpose(white), g)                          # (B, L, S)
    pred = ops.matmul(prior_mean, la.transpose(d))
    innovation = z - pred
    if mask is not None:
        m = ops.expand_dims(ops.cast(mask, "float32"), -1)
        innovation = innovation * m
    post_mean = prior_mean + ops.einsum("bl,bls->bs", innovation, kt)
    if params["joseph"]:
        ikd = ops.eye(s, dtype="float32") - ops.einsum("bls,lk->bsk", kt, d)
        post = ops.einsum("bij,bjk,blk->bil", ikd, prior, ikd)
        r_row = ops.expand_dims(r, -1)                               # (B?, L, 1)
        post = post + ops.einsum("bls,blk->bsk", kt * r_row, kt)
    else:
        post = prior - ops.einsum("bls,blk->bsk", g, g)
    post = la.sym(post)
    target = ops.stop_gradient(z) if params["stop_gradient_targets"] else z
    e_loss = target - pred
    whitened = ops.einsum("bml,bl->bm", white, e_loss)
    nll = 0.5 * ops.sum(ops.square(whitened), axis=-1) + 0.5 * la.log_det_from_cholesky(chol)
    if mask is not None:
        keep = ops.expand_dims(ops.expand_dims(mask, -1), -1)
        post = ops.where(keep, post, prior)
        nll = ops.where(mask, nll, ops.zeros_like(nll))
    new_hist = None
    if hist is not None:
        new_hist = ops.concatenate([hist[:, d.shape[0]:], innovation], axis=-1)
    return (post_mean, post, new_hist), (pred, nll, post_mean, pred_cov, post,
                                         prior_mean, prior)


def batched_filter(xs, h0, p0, hist0, params, unroll=1):
    """The general filter over time. ``xs``: dict of time-major inputs ``(T, B, …)``.

    Returns time-major ``(ẑ, nll, h, S_t, P, h⁻, P⁻)`` stacks.
    """
    keys = sorted(xs)

    def body(carry, x):
        h, p, hist = carry
        carry, out = batched_step((h, p, hist if hist0 is not None else None),
                                  dict(zip(keys, x)), params)
        h, p, hist = carry
        return (h, p, hist if hist is not None else ops.zeros((), "float32")), out

    init = (h0, p0, hist0 if hist0 is not None else ops.zeros((), "float32"))
    _, outs = scan(body, init, xs=[xs[k] for k in keys], unroll=unroll)
    return outs
