"""Small dense linear algebra for the Kalman recursions, in ``keras.ops``.

* :func:`cholesky_and_inverse` — the Cholesky factor ``C`` of a symmetric positive
  definite matrix and its inverse ``C⁻¹`` (lower triangular), from which the filter
  takes ``log det S = 2 Σ log diag C``, the whitened innovation ``C⁻¹ e`` and the gain.
* :func:`expm` — the matrix exponential (batched, differentiable), and
  :func:`van_loan` — a continuous-time model's transition and process noise.

**Why not ``ops.linalg.cholesky`` / ``solve_triangular`` on JAX.** On the CPU, jaxlib
(0.10) runs ``triangular_solve`` — which JAX also uses in the gradient of ``cholesky`` —
as a LAPACK ``strsm`` custom call. That call (a) splits a batch of solves over XLA's
intra-op thread pool and blocks the pool thread that runs it until the pieces are done;
when XLA's thunk executor runs two such solves at once on a pool with two threads (a
2-core machine; the backward pass of the filter has independent solves) each waits for
work queued behind the other, a deadlock (every thread in a futex wait, 0 % CPU:
``KalmanFilter`` forward + backward at B = 128, T = 100, S = 32 never returned); and
(b) hands each solve of 32 × 32 or more to OpenBLAS's own threads, which on a busy
small CPU made one 32 × 32 solve 500-2000× slower than single-threaded. On JAX these
functions are therefore written with matrix products only (a recursive block
factorisation, below); XLA compiles them into its own fused code, which no LAPACK call
or foreign thread pool is involved in. TensorFlow (XLA's own Cholesky and triangular
solve) and PyTorch (ATen's LAPACK calls) use their native kernels.

**Operators in the hot loops.** The recursions are written with Python's operators on
backend tensors (``@``, ``+``, ``*``) and these helpers, which mean the same on every
backend. In eager PyTorch each ``keras.ops`` call costs a fixed dispatch time (measured
30-35 µs for a 2 × 2 ``ops.matmul`` against 3.5 µs for ``@``, and 300 µs for a
three-operand ``einsum``, on a 2-core machine under load), which dominated a filter step
of tiny matrices; so on PyTorch :func:`transpose` and :func:`cholesky_and_inverse` call
``torch`` directly (a measured exception to "keras.ops only"). On TensorFlow
:func:`cholesky_and_inverse` calls ``tf.linalg`` directly (Keras adds a
``check_numerics`` that raises inside compiled steps).
"""

import keras
import numpy as np
from keras import ops

_BACKEND = keras.backend.backend()


def transpose(m):
    """``Mᵀ`` over the last two axes."""
    if _BACKEND == "torch":
        return m.transpose(-1, -2)
    return ops.swapaxes(m, -1, -2)


def stack(tensors, axis=0):
    """``ops.stack`` (on PyTorch ``torch.stack``: Keras converts every element first)."""
    if _BACKEND == "torch":
        import torch

        return torch.stack(list(tensors), dim=axis)
    return ops.stack(list(tensors), axis=axis)


def to_host(x):
    """A NumPy copy of a concrete tensor (no gradient; on PyTorch without Keras' dispatch)."""
    if _BACKEND == "torch":
        return x.detach().cpu().numpy()
    return ops.convert_to_numpy(ops.stop_gradient(x))


def host_spectral_radius(m):
    """``ρ(M)`` of a host (NumPy) matrix from its eigenvalues, in float64; NaN when ``m``
    is not finite."""
    m = np.asarray(m, "float64")
    if not np.all(np.isfinite(m)):
        return float("nan")
    return float(np.max(np.abs(np.linalg.eigvals(m))))


def sym(m):
    """``½ (M + Mᵀ)`` over the last two axes."""
    return 0.5 * (m + transpose(m))


def eye_like(n, dtype="float32"):
    return ops.eye(n, dtype=dtype)


# ----------------------------------------------------------------------------- Cholesky


def _block_cholesky_and_inverse(a):
    """Recursive block Cholesky: ``A = C Cᵀ`` and ``W = C⁻¹``, by matrix products.

    For ``A = [[A₁₁, A₂₁ᵀ], [A₂₁, A₂₂]]`` (split at ``k = n // 2``)::

        C₁₁, W₁₁ = rec(A₁₁)          C₂₁ = A₂₁ W₁₁ᵀ
        C₂₂, W₂₂ = rec(A₂₂ - C₂₁ C₂₁ᵀ)   W₂₁ = -W₂₂ C₂₁ W₁₁

    down to 1 × 1 blocks (``√a``, ``1/√a``). ``2n - 1`` blocks in all, four products
    per split. This is the recursive (Gustavson) Cholesky with the off-diagonal solve
    done by the already-known inverse of the diagonal block.
    """
    n = a.shape[-1]
    if n == 1:
        c = ops.sqrt(a)
        return c, 1.0 / c
    if n == 2:
        a11, a21, a22 = a[..., :1, :1], a[..., 1:, :1], a[..., 1:, 1:]
        c11 = ops.sqrt(a11)
        w11 = 1.0 / c11
        c21 = a21 * w11
        c22 = ops.sqrt(a22 - c21 * c21)
        w22 = 1.0 / c22
        w21 = -w22 * c21 * w11
        zero = ops.zeros_like(c21)
        c = ops.concatenate([ops.concatenate([c11, zero], -1),
                             ops.concatenate([c21, c22], -1)], -2)
        w = ops.concatenate([ops.concatenate([w11, zero], -1),
                             ops.concatenate([w21, w22], -1)], -2)
        return c, w
    k = n // 2
    a11, a21, a22 = a[..., :k, :k], a[..., k:, :k], a[..., k:, k:]
    c11, w11 = _block_cholesky_and_inverse(a11)
    c21 = ops.matmul(a21, transpose(w11))
    c22, w22 = _block_cholesky_and_inverse(a22 - ops.matmul(c21, transpose(c21)))
    w21 = -ops.matmul(ops.matmul(w22, c21), w11)
    zero = ops.zeros_like(transpose(c21))
    c = ops.concatenate([ops.concatenate([c11, zero], -1),
                         ops.concatenate([c21, c22], -1)], -2)
    w = ops.concatenate([ops.concatenate([w11, zero], -1),
                         ops.concatenate([w21, w22], -1)], -2)
    return c, w


def _block_diag_and_inverse(a):
    """The recursion of :func:`_block_cholesky_and_inverse` keeping only ``diag C`` and
    ``W = C⁻¹`` (``C₂₁`` is needed, the assembled ``C`` is not): half the assembly."""
    n = a.shape[-1]
    if n == 1:
        c = ops.sqrt(a)
        return c[..., 0], 1.0 / c
    k = n // 2
    a11, a21, a22 = a[..., :k, :k], a[..., k:, :k], a[..., k:, k:]
    d11, w11 = _block_diag_and_inverse(a11)
    c21 = ops.matmul(a21, transpose(w11))
    d22, w22 = _block_diag_and_inverse(a22 - ops.matmul(c21, transpose(c21)))
    w21 = -ops.matmul(ops.matmul(w22, c21), w11)
    zero = ops.zeros_like(transpose(c21))
    w = ops.concatenate([ops.concatenate([w11, zero], -1),
                         ops.concatenate([w21, w22], -1)], -2)
    return ops.concatenate([d11, d22], -1), w


def cholesky_and_inverse(a):
    """Cholesky factor ``C`` (lower, ``A = C Cᵀ``) of SPD ``a`` (..., n, n) and ``C⁻¹``.

    ``C⁻¹`` is one triangular solve against the identity (or, on JAX, the recursive
    block form of the module docstring); no general matrix inverse is formed.

    Example:
        >>> c, w = cholesky_and_inverse(keras.ops.array([[4.0, 2.0], [2.0, 3.0]]))
        >>> # c = [[2, 0], [1, √2]],  w @ c = I
    """
    if _BACKEND == "jax":
        return _block_cholesky_and_inverse(ops.cast(a, "float32"))
    if _BACKEND == "torch":
        import torch

        c = torch.linalg.cholesky(a)
        eye = _torch_eye(a.shape[-1], a).expand_as(a)
        return c, torch.linalg.solve_triangular(c, eye, upper=False)
    import tensorflow as tf

    # tf.linalg directly: Keras' ops.linalg.cholesky adds a check_numerics that raises
    # inside a compiled step instead of letting the non-finite guard skip it.
    a = tf.cast(a, "float32")
    c = tf.linalg.cholesky(a)
    eye = tf.broadcast_to(tf.eye(a.shape[-1], dtype="float32"), tf.shape(a))
    return c, tf.linalg.triangular_solve(c, eye, lower=True)


def whitening(a):
    """``(W = C⁻¹, F)`` for SPD ``a`` with ``A = C Cᵀ``, where ``F`` gives the
    log-determinant through :func:`log_det_from_factor`: the factor ``C`` itself
    (PyTorch, TensorFlow) or, on JAX, only its diagonal (the block recursion need not
    assemble ``C``). For a stack of steps, take the log-determinants after stacking:
    one ``diagonal`` instead of one per step (its gradient is a scatter each time)."""
    if _BACKEND == "jax":
        diag, w = _block_diag_and_inverse(ops.cast(a, "float32"))
        return w, diag
    c, w = cholesky_and_inverse(a)
    return w, c


def log_det_from_factor(f):
    """``log det A`` from the second output of :func:`whitening` (a factor or a diagonal)."""
    if _BACKEND == "jax":
        return 2.0 * ops.sum(ops.log(f), axis=-1)
    return log_det_from_cholesky(f)


def log_det_from_cholesky(c):
    """``log det A = 2 Σ log diag C``."""
    return 2.0 * ops.sum(ops.log(ops.diagonal(c, axis1=-2, axis2=-1)), axis=-1)


_EYES = {}


def _torch_eye(n, like):
    import torch

    key = (n, like.device)
    if key not in _EYES:
        _EYES[key] = torch.eye(n, dtype=torch.float32, device=like.device)
    return _EYES[key]


def spd_solve(a, b):
    """``A⁻¹ B`` for SPD ``A`` (..., n, n), by its Cholesky factor: ``W ᵀ (W B)``."""
    _, w = cholesky_and_inverse(a)
    return ops.matmul(transpose(w), ops.matmul(w, b))


# ----------------------------------------------------------------------------- expm

#: Taylor degree and the norm bound θ under which it is used (after scaling by 2^-s):
#: the truncation error ‖A‖^(m+1)/(m+1)! ≤ 2^-(13·1) / 13! ≈ 1.6e-10 relative at θ = 1.
_TAYLOR_DEGREE = 12
_THETA = 1.0
#: Squarings applied at most (‖A‖₁ up to θ · 2^16 = 65536).
_MAX_SQUARINGS = 16


def expm(a):
    """Matrix exponential ``e^A`` of a (batch of) square matrices, differentiable.

    Scaling and squaring with a Taylor polynomial: with ``s = max(0, ⌈log₂(‖A‖₁/θ)⌉)``
    (per matrix, ``θ = 1``), ``e^A = (T₁₂(A / 2^s))^(2^s)`` where ``T₁₂`` is the
    degree-12 Taylor polynomial, evaluated by Horner's rule. The number of squarings is
    data-dependent, so the loop runs ``16`` times and each matrix is squared only while
    its own count lasts (``where``); ``‖A‖₁ ≤ 65536`` is supported. Products only: no
    solve, no eigendecomposition, the same code on every backend.

    Args:
        a: ``(..., n, n)`` float tensor.

    Returns:
        ``(..., n, n)`` float32.

    Example:
        >>> expm(keras.ops.array([[0.0, -1.0], [1.0, 0.0]]))  # rotation by 1 rad
    """
    a = ops.cast(a, "float32")
    n = a.shape[-1]
    norm = ops.max(ops.sum(ops.abs(a), axis=-2), axis=-1)  # ‖A‖₁, (...)
    s = ops.ceil(ops.log(ops.maximum(norm, 1e-30) / _THETA) / ops.log(2.0))
    s = ops.clip(s, 0.0, float(_MAX_SQUARINGS))
    scaled = a * ops.expand_dims(ops.expand_dims(ops.power(2.0, -s), -1), -1)
    eye = ops.eye(n, dtype="float32")
    result = eye + scaled / float(_TAYLOR_DEGREE)
    for k in range(_TAYLOR_DEGREE - 1, 0, -1):
        result = eye + ops.matmul(scaled, result) / float(k)
    for i in range(_MAX_SQUARINGS):
        squared = ops.matmul(result, result)
        keep = ops.expand_dims(ops.expand_dims(s > i, -1), -1)
        result = ops.where(keep, squared, result)
    return result


def van_loan(drift, diffusion, dt):
    """Exact discretisation of ``dh = F h dt + dW``, ``E[dW dWᵀ] = Q_c dt`` over ``Δt``.

    Van Loan (1978): with ``M = [[-F, Q_c], [0, Fᵀ]] Δt`` and ``e^M = [[·, E₁₂], [0, E₂₂]]``,

    .. math::

        A = e^{FΔt} = E_{22}^⊤, \\qquad Q = \\int_0^{Δt} e^{Fs} Q_c e^{F^⊤ s}\\,ds
              = E_{22}^⊤ E_{12},

    from one exponential of a ``2S × 2S`` matrix per time gap.

    Args:
        drift: ``F``, ``(S, S)``.
        diffusion: ``Q_c``, ``(S, S)`` (symmetric PSD).
        dt: time gaps, any shape ``(...)``.

    Returns:
        ``(A, Q)``, each ``(..., S, S)`` float32 (``Q`` symmetrised).

    Example:
        >>> a, q = van_loan(-0.5 * keras.ops.eye(2), 0.1 * keras.ops.eye(2), keras.ops.ones((3,)))
    """
    f = ops.cast(drift, "float32")
    qc = ops.cast(diffusion, "float32")
    s = f.shape[-1]
    top = ops.concatenate([-f, qc], axis=-1)
    bottom = ops.concatenate([ops.zeros((s, s), "float32"), transpose(f)], axis=-1)
    m = ops.concatenate([top, bottom], axis=-2)  # (2S, 2S)
    dt = ops.cast(dt, "float32")
    e = expm(ops.expand_dims(ops.expand_dims(dt, -1), -1) * m)
    e12 = e[..., :s, s:]
    a = transpose(e[..., s:, s:])
    q = sym(ops.matmul(a, e12))
    return a, q
