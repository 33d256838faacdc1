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
  in parallel over time (``log₂ T`` doubling steps). The covariance recursion stops as
  soon as it reaches its float32 fixed point (the discrete algebraic Riccati equation's
  solution: ``P_t = P_{t-1}`` bit for bit, a rounding cycle, or a drift bounded below
  :data:`STEADY_TOL`) and reuses it for the remaining steps: eagerly (PyTorch,
  TensorFlow outside ``tf.function``) at the first such step; traced, at the end of the
  first chunk of :data:`STEADY_CHUNK` steps that reaches it (JAX: a ``cond`` per chunk;
  TensorFlow: a while loop that ends there). On TensorFlow the means recursion has its
  gradient written out (:func:`_tf_linear_recurrence`).
* :func:`batched_filter` — the general recursion with per-sequence covariances: masks
  (missing frames), per-frame observation noise, the innovation network, per-sequence
  time gaps or initial covariances.

Long module: the batched step, the batch-free shared-covariance recursion with its
steady-state detection and the doubling scan, the masked and time-varying variants and
the parallel (associative-scan) form share their notation and helpers here.
"""

import keras
import numpy as np
from keras import ops

from . import _linalg as la
from .transition import spectral_radius

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
    """``keras.ops.scan`` (``f(carry, x) -> (carry, y)``), with a TensorFlow exception.

    Keras' TensorFlow scan stores the outputs in arrays shaped like the carry, and its
    ``tf.while_loop`` has no ``maximum_iterations``, which XLA needs to differentiate
    the loop (``jit_compile=True``). On TensorFlow this is ``tf.scan`` (which sets it),
    the outputs riding along in the accumulator (started from zeros shaped like one
    step's outputs; XLA removes that first evaluation as dead code).
    """
    if _BACKEND != "tensorflow":
        return ops.scan(f, init, xs=xs, length=length, reverse=reverse, unroll=unroll)
    import tensorflow as tf
    from keras import tree

    if xs is None:
        elems = tf.range(int(length))
        x0 = None
    else:
        elems = xs
        x0 = tree.map_structure(lambda x: x[-1 if reverse else 0], xs)
    _, y0 = f(init, x0)
    y0 = tree.map_structure(ops.zeros_like, y0)

    def g(acc, x):
        return f(acc[0], None if xs is None else x)

    carries, ys = tf.scan(g, elems, initializer=(init, y0), reverse=reverse,
                          parallel_iterations=int(unroll) if not isinstance(unroll, bool)
                          else 1)
    last = 0 if reverse else -1
    return tree.map_structure(lambda c: c[last], carries), ys


def _time_varying(m, rank):
    return m is not None and len(m.shape) > rank


def _covariance_step(p, a, q, d, consts, joseph):
    """One covariance step without the batch axis. ``p, a, q``: (S, S); ``consts``:
    ``(diag(r + jitter), diag(r), I_S)`` (made once, outside the loop). Written with
    Python operators (see the note in :mod:`._linalg`). The Cholesky factor is returned
    for the log-determinants, taken for every step at once by :func:`_finish` (one
    ``diagonal`` instead of one per step: its gradient costs a scatter each time)."""
    t = la.transpose
    r_diag, r_mat, eye = consts
    prior = a @ p @ t(a) + q
    dp = d @ prior                                                   # (L, S)
    pred = la.sym(dp @ t(d) + r_diag)
    white, factor = la.whitening(pred)
    g = white @ dp                                                   # W D P⁻  (L, S)
    kt = t(white) @ g                                                # Kᵀ = Wᵀ W D P⁻
    if joseph:
        k = t(kt)
        ikd = eye - k @ d
        post = ikd @ prior @ t(ikd) + k @ r_mat @ kt
    else:
        post = prior - t(g) @ g
    post = la.sym(post)
    return post, (prior, pred, white, factor, kt, post)


def _constants(r, jitter, s):
    return (ops.diag(r + jitter), ops.diag(r), ops.eye(s, dtype="float32"))


def _finish(outs, idx=tuple(range(6))):
    """Stacked step outputs (those at positions ``idx`` of a step's tuple) → a dict of
    :data:`_COV_KEYS` (the log-determinants of every step at once)."""
    full = dict(zip(idx, outs))
    if 3 in full:
        full[3] = la.log_det_from_factor(full[3])
    return {_COV_KEYS[i]: v for i, v in full.items()}


_COV_KEYS = ("prior_cov", "prediction_cov", "whitening", "log_det", "gain_t", "state_cov")


def _relative_change(p_new, p_old):
    return ops.max(ops.abs(p_new - p_old)) / ops.maximum(ops.max(ops.abs(p_new)), 1e-30)


def _drift_bound(change, kt, a, d):
    """Bound on the relative distance of ``P_t`` to the steady state.

    Near the fixed point the error of the covariance recursion evolves as
    ``E_{t+1} ≈ Φ E_t Φᵀ`` with the closed-loop transition ``Φ = (I - K D) A``, so with
    ``ρ = ρ(Φ)`` the change still to come after a step that changed ``P`` by ``δ`` is at
    most about ``δ ρ² / (1 - ρ²)`` (infinite for ``ρ ≥ 1``). This lets the recursion stop
    at float32's noise floor (for larger ``S`` it wanders there instead of settling on
    an exact fixed point) without stopping early on a slowly converging mode.
    """
    phi = (ops.eye(a.shape[-1], dtype="float32") - la.transpose(kt) @ d) @ a
    rho2 = ops.square(spectral_radius(ops.stop_gradient(phi)))
    return ops.where(rho2 < 1.0, change * rho2 / ops.maximum(1.0 - rho2, 1e-30), 1e30)


def _relative_change_host(p_new, p_old):
    """:func:`_relative_change` on host (NumPy) copies."""
    return float(np.max(np.abs(p_new - p_old)) / max(float(np.max(np.abs(p_new))), 1e-30))


def _drift_bound_host(change, kt, a, d):
    """:func:`_drift_bound` on host copies, with ``ρ(Φ)`` from the eigenvalues (float64)."""
    phi = (np.eye(a.shape[-1]) - np.asarray(kt, "float64").T @ d) @ a
    rho2 = la.host_spectral_radius(phi) ** 2
    return change * rho2 / max(1.0 - rho2, 1e-30) if rho2 < 1.0 else 1e30  # NaN: 1e30


def shared_covariances(a, q, d, r, p0, steps, jitter=1e-6, joseph=True, steady_state=True,
                       unroll=1, keep=None):
    """The covariance recursion without the batch axis, for ``steps`` steps.

    Args:
        a: ``A``, ``(S, S)`` or per step ``(T, S, S)``.
        q: ``Q``, ``(S, S)`` or ``(T, S, S)``.
        d: ``D``, ``(L, S)``.
        r: diagonal of ``R``, ``(L,)``.
        p0: initial posterior covariance ``(S, S)``.
        steps: ``T`` (a Python int).
        keep: the keys of the result wanted (default all); ``whitening``, ``log_det``,
            ``gain_t`` are always computed.
        steady_state: with constant ``A``, ``Q``, stop once the recursion has reached
            its float32 limit and repeat it: eagerly, at the first step whose posterior
            covariance equals one of the previous :data:`MAX_PERIOD` exactly (a fixed
            point, or a cycle of rounding: the outputs then repeat with that period, bit
            for bit), or whose remaining drift is bounded below :data:`STEADY_TOL` (see
            :func:`_drift_bound`); traced, see :func:`_chunked_steady_state`.

    Returns:
        ``(dict of (T, …) stacks: prior_cov, prediction_cov, whitening, log_det, gain_t,
        state_cov; the step at which the limit was reached eagerly, or None)``.
    """
    varying = _time_varying(a, 2) or _time_varying(q, 2)
    consts = _constants(r, jitter, p0.shape[-1])
    names = ("prior_cov", "prediction_cov", "whitening", "log_det", "gain_t", "state_cov")
    wanted = set(names if keep is None else keep) | {"whitening", "log_det", "gain_t",
                                                     "state_cov"}
    idx = tuple(i for i, n in enumerate(names) if n in wanted)

    if not varying and steady_state and all(is_eager(x) for x in (p0, a, q, d, r)):
        # The float32 recursion ends in a fixed point or a short cycle (period 4 seen):
        # once P_t equals P_{t-j} exactly the outputs repeat with period j, bit for bit.
        # The tests run on host copies of P (one device-to-host copy per step instead of
        # a synchronising comparison per candidate period: in eager PyTorch those small
        # calls cost more than the step itself).
        p, outs, fixed_at, period = p0, [], None, None
        hosts = [la.to_host(p0)]
        a_host, d_host = (np.asarray(la.to_host(m), "float64") for m in (a, d))
        for t in range(steps):
            p, out = _covariance_step(p, a, q, d, consts, joseph)
            outs.append(tuple(out[i] for i in idx))
            host = la.to_host(p)
            for j in range(1, min(MAX_PERIOD, t + 1) + 1):
                if np.array_equal(host, hosts[-j]):
                    fixed_at, period = t + 1, j
                    break
            if fixed_at is None and t > 0:
                change = _relative_change_host(host, hosts[-1])
                if change <= STEADY_CHECK and _drift_bound_host(
                        change, la.to_host(out[4]), a_host, d_host) <= STEADY_TOL:
                    fixed_at, period = t + 1, 1
            hosts = (hosts + [host])[-MAX_PERIOD:]
            if fixed_at is not None:
                break
        stacked = [la.stack(col) for col in zip(*outs)]
        if fixed_at is not None and fixed_at < steps:
            rest = steps - fixed_at
            reps = -(-rest // period)
            stacked = [ops.concatenate(
                [x, ops.tile(x[-period:], (reps,) + (1,) * (len(x.shape) - 1))[:rest]], axis=0)
                for x in stacked]
        return _finish(stacked, idx), fixed_at

    # Traced: chunks with a cond per chunk. Not on TensorFlow, which cannot differentiate
    # a while loop whose body holds a cond ("creates a resource in its body"), nor
    # compile a TensorArray loop inside a cond branch with XLA: there a while loop that
    # ends at the steady state (no cond).
    if not varying and steady_state and steps > 2 * STEADY_CHUNK:
        if _BACKEND == "tensorflow":
            outs = _tf_steady_state(a, q, d, consts, p0, steps, joseph, idx)
        else:
            outs = _chunked_steady_state(a, q, d, consts, p0, steps, joseph, unroll, idx)
        return _finish(outs, idx), None

    a_seq = a if _time_varying(a, 2) else None
    q_seq = q if _time_varying(q, 2) else None

    def body(p, xs):
        a_t = a if a_seq is None else xs[0]
        q_t = q if q_seq is None else xs[1]
        p_new, out = _covariance_step(p, a_t, q_t, d, consts, joseph)
        return p_new, tuple(out[i] for i in idx)

    xs = None
    if varying:
        xs = (a if a_seq is not None else ops.zeros((steps,), "float32"),
              q if q_seq is not None else ops.zeros((steps,), "float32"))
    _, outs = scan(body, p0, xs=xs, length=steps, unroll=unroll)
    return _finish(outs, idx), None


def _combine_covariance_elements(earlier, later):
    """Compose two covariance elements ``(A, C, J)`` of the parallel filter.

    Särkkä & García-Fernández (2021), eq. 14 (covariance part), with ``M = I + C_i J_j``::

        A_ij = A_j M⁻¹ A_i,   C_ij = A_j M⁻¹ C_i A_jᵀ + C_j,   J_ij = A_iᵀ M⁻ᵀ J_j A_i + J_i

    written without a general solve: with ``C_i = U Uᵀ`` (Cholesky) and
    ``N = I + Uᵀ J_j U = C_N C_Nᵀ`` (symmetric, eigenvalues ≥ 1), Woodbury's identity gives
    ``M⁻¹ C_i = (C_i⁻¹ + J_j)⁻¹ = Vᵀ V`` with ``V = C_N⁻¹ Uᵀ``, so::

        A_ij = A_j (A_i - Vᵀ V J_j A_i)
        C_ij = (V A_jᵀ)ᵀ (V A_jᵀ) + C_j                 (positive semi-definite by form)
        J_ij = A_iᵀ (J_j - J_j Vᵀ V J_j) A_i + J_i

    Two Cholesky factorisations (and their triangular inverses) per pair.
    """
    a_i, c_i, j_i = earlier
    a_j, c_j, j_j = later
    s = a_i.shape[-1]
    u, _ = la.cholesky_and_inverse(c_i)
    n = ops.eye(s, dtype="float32") + ops.matmul(ops.matmul(la.transpose(u), j_j), u)
    _, w_n = la.cholesky_and_inverse(la.sym(n))
    v = ops.matmul(w_n, la.transpose(u))                             # (S, S)
    vj = ops.matmul(v, j_j)                                          # V J_j
    a_ij = ops.matmul(a_j, a_i - ops.matmul(la.transpose(v), ops.matmul(vj, a_i)))
    va = ops.matmul(v, la.transpose(a_j))
    c_ij = ops.matmul(la.transpose(va), va) + c_j
    j_mid = j_j - ops.matmul(la.transpose(vj), vj)
    j_ij = la.sym(ops.matmul(ops.matmul(la.transpose(a_i), j_mid), a_i)) + j_i
    return a_ij, c_ij, j_ij


def parallel_covariances(a, q, d, r, p0, steps, jitter=1e-6, joseph=True):
    """The shared covariance recursion in parallel over time (``⌈log₂ T⌉`` levels).

    Särkkä & García-Fernández (2021): every step ``t ≥ 2`` is an element
    ``(A_t, C_t, J_t)`` built from the model alone (``K = Q Dᵀ (D Q Dᵀ + R)⁻¹``,
    ``A_t = (I - K D) A``, ``C_t = (I - K D) Q`` (Joseph's form with ``joseph``),
    ``J_t = Aᵀ Dᵀ (D Q Dᵀ + R)⁻¹ D A``); the first is ``(0, P₁, 0)`` with ``P₁`` from one
    ordinary step. The prefix compositions (Hillis-Steele doubling) give every filtered
    covariance ``P_t``; the predicted ``P⁻_t``, ``S_t``,
    gains and log-determinants then follow for all ``t`` at once. The same values as
    :func:`shared_covariances` up to float32 rounding; ``T log T`` work instead of ``T``
    but ``log T`` sequential levels (fewer, larger operations: faster where every
    operation has a fixed cost, as in eager PyTorch).
    """
    s = p0.shape[-1]
    eye_s = ops.eye(s, dtype="float32")
    a_first = a[0] if _time_varying(a, 2) else a
    q_first = q[0] if _time_varying(q, 2) else q
    p1, _ = _covariance_step(p0, a_first, q_first, d, _constants(r, jitter, s), joseph)
    # Elements t = 2..T, from (A_t, Q_t) (the same for every t when constant).
    a_el = a[1:] if _time_varying(a, 2) else ops.expand_dims(a, 0)
    q_el = q[1:] if _time_varying(q, 2) else ops.expand_dims(q, 0)
    dq = ops.einsum("ls,tsk->tlk", d, q_el)
    sq = la.sym(ops.einsum("tlk,mk->tlm", dq, d)) + ops.diag(r + jitter)
    _, w = la.cholesky_and_inverse(sq)
    g = ops.matmul(w, dq)                                            # W D Q
    kt = ops.matmul(la.transpose(w), g)                              # Kᵀ
    ikd = eye_s - ops.einsum("tls,lk->tsk", kt, d)
    a_elem = ops.matmul(ikd, a_el)
    if joseph:
        c_elem = ops.matmul(ops.matmul(ikd, q_el), la.transpose(ikd))
        c_elem = c_elem + ops.matmul(la.transpose(kt) * r, kt)
    else:
        c_elem = q_el - ops.matmul(la.transpose(g), g)
    c_elem = la.sym(c_elem)
    wda = ops.matmul(ops.einsum("tlm,ms->tls", w, d), a_el)          # W D A
    j_elem = ops.matmul(la.transpose(wda), wda)
    rest = steps - 1
    if a_elem.shape[0] == 1:
        a_elem, c_elem, j_elem = (ops.broadcast_to(x, (rest, s, s))
                                  for x in (a_elem, c_elem, j_elem))
    elems = (ops.concatenate([ops.zeros((1, s, s), "float32"), a_elem], 0),
             ops.concatenate([ops.expand_dims(p1, 0), c_elem], 0),
             ops.concatenate([ops.zeros((1, s, s), "float32"), j_elem], 0))
    delta = 1
    while delta < steps:
        combined = _combine_covariance_elements(tuple(e[:-delta] for e in elems),
                                                tuple(e[delta:] for e in elems))
        elems = tuple(ops.concatenate([e[:delta], c], 0) for e, c in zip(elems, combined))
        delta *= 2
    post = elems[1]                                                  # P_t, (T, S, S)
    p_prev = ops.concatenate([ops.expand_dims(p0, 0), post[:-1]], 0)
    if _time_varying(a, 2):
        prior = la.sym(ops.matmul(ops.matmul(a, p_prev), la.transpose(a))) + q
    else:
        prior = la.sym(ops.einsum("ij,tjk,lk->til", a, p_prev, a)) + q
    dp = ops.einsum("ls,tsk->tlk", d, prior)
    pred = la.sym(ops.einsum("tlk,mk->tlm", dp, d)) + ops.diag(r + jitter)
    white, factor = la.whitening(pred)
    kt_all = ops.matmul(la.transpose(white), ops.matmul(white, dp))
    return dict(zip(_COV_KEYS, (prior, pred, white, la.log_det_from_factor(factor), kt_all,
                                post)))


#: Steps per chunk of the traced steady-state recursion, and how many steps run in such
#: chunks (beyond them: one repetition, or an ordinary scan).
STEADY_CHUNK = 8
STEADY_HEAD = 128
#: Longest rounding cycle of the covariance recursion detected eagerly.
MAX_PERIOD = 8
#: The steady state is taken once the remaining relative drift of ``P`` is bounded
#: below this (:func:`_drift_bound`), checked after steps that changed ``P`` by less
#: than ``STEADY_CHECK`` (relative).
STEADY_TOL = 1e-7
STEADY_CHECK = 1e-6


def _chunked_steady_state(a, q, d, consts, p0, steps, joseph, unroll, keep):
    """Traced (``jit`` / ``tf.function``) covariance recursion that skips its steady state.

    The first ``min(T, STEADY_HEAD)`` steps run as chunks of :data:`STEADY_CHUNK`; once a
    chunk ends at the steady state (it ends where it started: a fixed point or a
    rounding cycle whose period divides the chunk; or its last step's remaining drift is
    bounded below :data:`STEADY_TOL`, :func:`_drift_bound`), every later chunk repeats
    its last step (``cond``: the recursion is not computed, forward or backward). The
    remaining steps are then either that repetition or, if the head ended before the
    steady state, an ordinary scan (one more ``cond``).
    """
    chunk = STEADY_CHUNK
    head = min(steps, STEADY_HEAD)
    n_chunks = -(-head // chunk)

    def step(p, _):
        p_new, out = _covariance_step(p, a, q, d, consts, joseph)
        return p_new, tuple(out[i] for i in keep)

    def compute(p):
        p_new, outs = scan(step, p, length=chunk, unroll=unroll)
        fixed = _chunk_is_steady(p, p_new, outs, keep, a, d)
        return p_new, fixed, tuple(o[-1] for o in outs), outs

    _, _, last0, _ = compute(p0)  # shapes only (dead code once traced)
    last0 = tuple(ops.zeros_like(x) for x in last0)

    def repeat(last, length):
        return tuple(ops.broadcast_to(ops.expand_dims(x, 0), (length,) + tuple(x.shape))
                     for x in last)

    def body(carry, _):
        p, fixed, last = carry
        p_new, fixed_new, last_new, outs = ops.cond(
            fixed, lambda: (p, fixed, last, repeat(last, chunk)), lambda: compute(p))
        return (p_new, fixed_new, last_new), outs

    init = (p0, ops.convert_to_tensor(False), last0)
    (p_head, fixed, last), outs = scan(body, init, length=n_chunks)
    outs = [ops.reshape(o, (n_chunks * chunk,) + tuple(o.shape[2:])) for o in outs]
    extra = n_chunks * chunk - head
    if steps > n_chunks * chunk:
        rest = steps - n_chunks * chunk

        def tail():
            _, tail_outs = scan(step, p_head, length=rest, unroll=unroll)
            return tuple(tail_outs)

        tail_outs = ops.cond(fixed, lambda: repeat(last, rest), tail)
        outs = [ops.concatenate([o, t], axis=0) for o, t in zip(outs, tail_outs)]
    elif extra:
        outs = [o[:steps] for o in outs]
    return outs


def _chunk_is_steady(p_start, p_end, outs, keep, a, d):
    """The steady-state test at the end of a chunk of :data:`STEADY_CHUNK` steps: it ended
    where it started (a fixed point, or a rounding cycle whose period divides the chunk),
    or its last step's remaining drift is bounded below :data:`STEADY_TOL`."""
    post = outs[keep.index(5)]
    change = _relative_change(post[-1], post[-2])
    bound = _drift_bound(change, outs[keep.index(4)][-1], a, d)
    return ops.logical_or(ops.all(ops.equal(p_end, p_start)), bound <= STEADY_TOL)


def _tf_steady_state(a, q, d, consts, p0, steps, joseph, keep):
    """TensorFlow, traced: the covariance recursion in chunks of :data:`STEADY_CHUNK`
    steps by a ``tf.while_loop`` that stops after the first chunk ending at the steady
    state (:func:`_chunk_is_steady`); a second loop fills the remaining chunks with that
    chunk's last step. No ``cond``: TensorFlow differentiates (and XLA compiles) a while
    loop with a data-dependent number of iterations, given ``maximum_iterations``; the
    backward pass runs as many iterations as the forward did. The gradient of the
    repeated steps flows into the last computed one, as in :func:`_chunked_steady_state`.
    """
    import tensorflow as tf

    chunk = STEADY_CHUNK
    n_chunks = -(-steps // chunk)

    def step(p, _):
        p_new, out = _covariance_step(p, a, q, d, consts, joseph)
        return p_new, tuple(out[i] for i in keep)

    def compute(p):
        p_new, outs = scan(step, p, length=chunk)
        return p_new, _chunk_is_steady(p, p_new, outs, keep, a, d), outs

    _, one = step(p0, None)                      # shapes only (dead code once traced)
    tas = tuple(tf.TensorArray("float32", size=n_chunks,
                               element_shape=(chunk,) + tuple(o.shape)) for o in one)
    last0 = tuple(tf.zeros_like(o) for o in one)

    def body(i, p, _, last, arrays):
        p_new, steady, outs = compute(p)
        arrays = tuple(ta.write(i, o) for ta, o in zip(arrays, outs))
        return i + 1, p_new, steady, tuple(o[-1] for o in outs), arrays

    i, _, _, last, tas = tf.while_loop(
        lambda i, p, steady, last, arrays: tf.logical_not(steady), body,
        (tf.constant(0), p0, tf.constant(False), last0, tas), maximum_iterations=n_chunks)

    def fill(j, arrays):
        return j + 1, tuple(ta.write(j, tf.broadcast_to(x[None], (chunk,) + tuple(x.shape)))
                            for ta, x in zip(arrays, last))

    _, tas = tf.while_loop(lambda j, arrays: j < n_chunks, fill, (i, tas),
                           maximum_iterations=n_chunks)
    return [tf.reshape(ta.stack(), (n_chunks * chunk,) + tuple(o.shape))[:steps]
            for ta, o in zip(tas, one)]


def _doubling_scan(n_mats, v):
    """All prefixes of ``u_t = u_{t-1} N_t + v_t`` (``u_0 = 0``) in ``⌈log₂ T⌉`` steps.

    ``n_mats``: ``(T, S, S)``; ``v``: ``(T, B, S)``. The step with offset ``δ``
    composes each element with the one ``δ`` earlier,
    ``(N, v)_t ← (N_{t-δ} N_t, v_{t-δ} N_t + v_t)`` (Hillis-Steele); after the last step
    ``v_t = u_t``.
    """
    steps = v.shape[0]
    n_cur = n_mats
    delta = 1
    while delta < steps:
        v = ops.concatenate([v[:delta], v[delta:] + v[:-delta] @ n_cur[delta:]], axis=0)
        if delta * 2 < steps:
            n_cur = ops.concatenate([n_cur[:delta], n_cur[:-delta] @ n_cur[delta:]], axis=0)
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
    ikd_t = ops.eye(s, dtype="float32") - la.transpose(d) @ gain_t   # I - Dᵀ Kᵀ, (T, S, S)
    n_mats = la.transpose(a) @ ikd_t                                  # (T, S, S)
    v = ops.transpose(zc, (1, 0, 2)) @ gain_t                         # (T, B, S)
    # The initial state enters through the first step: v₁ += u₀ N₁.
    # (explicit rank: TensorFlow's graph optimiser mis-broadcast a (1, S) + (1, B, S) here
    # at B = 1)
    v = ops.concatenate([v[:1] + ops.expand_dims(u0 @ n_mats[0], 0), v[1:]], axis=0)
    if parallel:
        u = _doubling_scan(n_mats, v)
    elif _BACKEND == "tensorflow":
        u = _tf_linear_recurrence(n_mats, v)
    else:
        u = _sequential_linear_recurrence(n_mats, v, unroll)
    return ops.transpose(u, (1, 0, 2))


def _sequential_linear_recurrence(n_mats, v, unroll=1):
    """``u_t = u_{t-1} N_t + v_t`` (``u_0 = 0``) by a sequential scan; ``(T, B, S)``."""
    def body(u, xs):
        n_t, v_t = xs
        u = u @ n_t + v_t
        return u, u

    _, u = scan(body, ops.zeros_like(v[0]), xs=(n_mats, v), unroll=unroll)
    return u


def _tf_linear_recurrence(n_mats, v):
    """TensorFlow: :func:`_sequential_linear_recurrence` with its gradient written out.

    TensorFlow's own gradient of a while loop keeps every step's intermediates in
    accumulators that XLA updates by copying: the backward pass of this recursion took
    14 ms against 1.1 ms forward at B = 128, S = 8, T = 100, and grew with ``T²``
    (273 ms at T = 1000). The adjoint of a linear recursion is the reverse linear
    recursion ``ḡ_t = ∂L/∂u_t + ḡ_{t+1} N_{t+1}ᵀ``, after which ``∂L/∂v_t = ḡ_t`` and
    ``∂L/∂N_t = u_{t-1}ᵀ ḡ_t`` (one batched product over all steps).
    """
    import tensorflow as tf

    @tf.custom_gradient
    def run(n_mats_, v_):
        u = _sequential_linear_recurrence(n_mats_, v_)

        def grad(du):
            n_next = tf.concat([n_mats_[1:], tf.zeros_like(n_mats_[:1])], axis=0)

            def back(g, xs):
                n_t, du_t = xs
                g = du_t + g @ la.transpose(n_t)
                return g, g

            _, g_bar = scan(back, tf.zeros_like(du[0]), xs=(n_next, du), reverse=True)
            u_prev = tf.concat([tf.zeros_like(u[:1]), u[:-1]], axis=0)
            return tf.einsum("tbi,tbj->tij", u_prev, g_bar), g_bar

        return u, grad

    return run(n_mats, v)


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
    white, factor = la.whitening(pred_cov)
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
    nll = 0.5 * ops.sum(ops.square(whitened), axis=-1) + 0.5 * la.log_det_from_factor(factor)
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
