"""Special functions and matrix utilities in ``keras.ops`` (float32, differentiable).

``keras.ops`` has no digamma, log-gamma or matrix exponential; these are written once
here and used by the entropy estimators (:func:`digamma`), the ICA model (:func:`lgamma`,
:func:`expm`, :func:`log_abs_det`) and the von Mises–Fisher prior and kernel density
(:func:`l2_normalize`). The public ones are re-exported where users find them:
``ldm_keras.models.expm``, ``ldm_keras.entropy.log_abs_det``,
``ldm_keras.priors.l2_normalize``, ``ldm_keras.evaluation.eigen_angles`` (NumPy: the
eigenvalue angles of a transition matrix, for the evaluation and the Kalman filter's
read-outs). (The spectral radius of a transition matrix belongs to the Kalman filter:
``ldm_keras.predictors.spectral_radius``.)
"""

import math

import numpy as np
from keras import ops

from ._validation import check_int, check_positive, check_square

EULER_GAMMA = 0.5772156649015329
LOG_2PI = math.log(2.0 * math.pi)
LOG_2PI_E = math.log(2.0 * math.pi * math.e)


def digamma(x):
    """Digamma ``ψ(x)`` for ``x > 0`` (Python float or float32 tensor).

    Shift ``x`` up by 6 with ``ψ(x) = ψ(x + 6) - Σ_{i<6} 1/(x + i)``, then the asymptotic
    series ``log y - 1/(2y) - Σ B_{2n}/(2n y^{2n})`` to ``y^{-10}``; error below 1e-9
    (far below float32 resolution).
    """
    is_py = isinstance(x, (int, float))
    log = math.log if is_py else ops.log
    shift = 0.0
    for i in range(6):
        shift = shift + 1.0 / (x + i)
    y = x + 6.0
    inv2 = 1.0 / (y * y)
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (
        1.0 / 240 - inv2 / 132))))
    return log(y) - 0.5 / y - series - shift


def digamma_int(k):
    """Exact ``ψ(k) = -γ + Σ_{i=1}^{k-1} 1/i`` for a positive integer ``k``."""
    return -EULER_GAMMA + math.fsum(1.0 / i for i in range(1, int(k)))


def expm(a, order=10, max_squarings=16, threshold=0.5):
    """Matrix exponential ``exp(A) = Σ_k A^k / k!`` of a square matrix, in ``keras.ops``.

    Scaling and squaring: ``s = max(0, ⌈log2(‖A‖₁ / θ)⌉)`` (``θ`` = ``threshold``, capped
    at ``max_squarings``), the Taylor polynomial of degree ``order`` of ``A / 2^s`` by
    Horner's rule, then ``s`` squarings, ``exp(A) = (exp(A/2^s))^{2^s}``. With the
    defaults the truncation error of the scaled step is below
    ``θ^{11}/11! ≈ 10⁻¹¹`` (relative), far under float32 rounding. The number of
    squarings is chosen from the data but the graph is static: ``max_squarings``
    conditional squarings, each applied only while ``i < s`` (so it runs under
    ``jit``/``tf.function``; inputs with ``‖A‖₁ > θ·2^max_squarings`` lose accuracy). Cost:
    ``order + max_squarings`` matrix products. ``s`` carries no gradient (it is a
    piecewise-constant function of ``A``); the gradient flows through the polynomial and
    the squarings. Computed in float32.

    Args:
        a: ``(n, n)`` tensor.
        order: Taylor degree (≥ 1; default 10).
        max_squarings: maximal number of squarings (default 16).
        threshold: ``θ``, the 1-norm bound after scaling (default 0.5).

    Example:
        >>> k = np.array([[0.0, -1.0], [1.0, 0.0]], "float32")   # skew-symmetric
        >>> expm(k)          # rotation by 1 rad: [[cos 1, -sin 1], [sin 1, cos 1]]
    """
    shape = check_square(a, "a", "(n, n)")
    order = check_int(order, "order", minimum=1)
    max_squarings = check_int(max_squarings, "max_squarings", minimum=0)
    threshold = check_positive(threshold, "threshold")
    a = ops.cast(a, "float32")
    n = shape[-1]
    norm = ops.stop_gradient(ops.max(ops.sum(ops.abs(a), axis=0)))
    s = ops.ceil(ops.log2(ops.maximum(norm, 1e-30) / threshold))
    s = ops.clip(s, 0.0, float(max_squarings))
    scaled = a / ops.power(2.0, s)
    eye = ops.eye(n, dtype="float32")
    x = eye
    for k in range(order, 0, -1):
        x = eye + ops.matmul(scaled, x) / float(k)
    for i in range(max_squarings):
        x = ops.where(float(i) < s, ops.matmul(x, x), x)
    return x


def lgamma(x, shift=6):
    """``log Γ(x)`` for ``x > 0`` (float32), by recurrence and Stirling's series.

    ``log Γ(x) = log Γ(x + m) - Σ_{j<m} log(x + j)`` with ``m`` = ``shift``, then
    ``log Γ(y) ≈ (y - ½) log y - y + ½ log 2π + 1/(12y) - 1/(360y³) + 1/(1260y⁵)`` at
    ``y = x + m ≥ 6`` (error below 10⁻⁹). Differentiable; ``keras.ops`` has no ``lgamma``.
    """
    y = x + float(shift)
    prod = ops.zeros_like(x)
    for j in range(shift):
        prod = prod + ops.log(x + float(j))
    inv = 1.0 / y
    inv2 = inv * inv
    series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0))
    stirling = (y - 0.5) * ops.log(y) - y + 0.5 * LOG_2PI + series
    return stirling - prod


def log_abs_det(w):
    """``log|det W|`` of a square matrix, via ``slogdet`` (an LU factorisation), in float32.

    Change of variables: for ``z = W x`` with ``W`` invertible,
    ``H[z] = H[x] + log|det W|``, so for linear ICA the entropy term is exact up to the
    constant ``H[x]``. The gradient is ``W^{-T}``. The transpose has the same value, so a
    Keras ``Dense`` kernel (applied as ``x @ W``) can be passed as it is.

    Example:
        >>> log_abs_det(dense.kernel)        # float32 scalar
    """
    check_square(w, "w", "(d, d)")
    _, logabs = ops.slogdet(ops.cast(w, "float32"))
    return ops.cast(logabs, "float32")


def l2_normalize(x, epsilon=1e-12):
    """``x / sqrt(max(‖x‖², ε))`` along the last axis: safe at ``x = 0``.

    Example:
        >>> l2_normalize(keras.ops.ones((2, 4)))   # rows of 0.5
    """
    sq = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(sq, epsilon))


def eigen_angles(transition):
    """Angles ``arg λ_i`` (radians) of the eigenvalues of a transition matrix, descending.

    For 2-d rotational dynamics ``A = r·R(θ)`` (a rotation by ``θ`` per step, scaled by
    ``r``) the eigenvalues are ``r·e^{±iθ}``, so the result is ``[θ, -θ]``. Accepts a
    stack ``(..., S, S)``; returns ``(..., S)``.

    Example:
        >>> eigen_angles(kf.transition_matrix)[0]   # ≈ 0.3142 for DotMotion circular
    """
    a = np.asarray(transition, dtype="float64")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"`transition` must be a square matrix (..., S, S); received {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError("`transition` must contain only finite values.")
    angles = np.angle(np.linalg.eigvals(a))
    return -np.sort(-angles, axis=-1)
