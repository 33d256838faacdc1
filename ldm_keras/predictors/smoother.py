"""Rauch–Tung–Striebel smoothing of the Kalman filter's output (docs/spec.md §4).

From the filtered ``h_t, P_t`` and the one-step predictions ``h⁻_{t+1}, P⁻_{t+1}``::

    J_t   = P_t A_{t+1}ᵀ (P⁻_{t+1})⁻¹                      (a Cholesky solve)
    hˢ_t  = h_t + J_t (hˢ_{t+1} - h⁻_{t+1})                  hˢ_T = h_T
    Pˢ_t  = P_t + J_t (Pˢ_{t+1} - P⁻_{t+1}) J_tᵀ              Pˢ_T = P_T
    Cov(h_{t+1}, h_t | z_{1..T}) = Pˢ_{t+1} J_tᵀ              (lag-one cross-covariance)

(Rauch, Tung & Striebel, 1965; the cross-covariance as in Shumway & Stoffer's EM
algorithm). A missing frame needs nothing special: its filtered values are its
predicted ones.
"""

from keras import ops

from . import _linalg as la
from ._recursion import scan


def rts_smoother(filt_mean, filt_cov, prior_mean, prior_cov, transition, shared, unroll=1):
    """Smoothed means, covariances and lag-one cross-covariances.

    Args:
        filt_mean: ``(B, T, S)`` filtered means ``h_t``.
        filt_cov: ``(T, S, S)`` when ``shared`` (the same for every sequence), else
            ``(B, T, S, S)``: filtered covariances ``P_t``.
        prior_mean: ``(B, T, S)`` predicted means ``h⁻_t``.
        prior_cov: like ``filt_cov``: predicted covariances ``P⁻_t``.
        transition: ``A``: ``(S, S)``, or per step ``(T, S, S)`` (shared) / ``(B, T, S,
            S)``; step ``t``'s entry maps ``h_{t-1}`` to ``h_t``.
        shared: whether the covariances have no batch axis.

    Returns:
        ``(mean (B, T, S), cov (like filt_cov), cross (like filt_cov, T - 1 steps))``.
    """
    steps = filt_mean.shape[1]
    t_axis = 0 if shared else 1
    p_t = _slice(filt_cov, 0, steps - 1, t_axis)
    pm_next = _slice(prior_cov, 1, steps, t_axis)
    rank = 3 if shared else 4
    if len(transition.shape) == 2:
        ap = ops.einsum("ij,...jk->...ik", transition, p_t)
    else:
        a_next = _slice(transition, 1, steps, 0 if len(transition.shape) == 3 else 1)
        if len(a_next.shape) < rank:           # shared A_t, batched covariances
            a_next = ops.expand_dims(a_next, 0)
        ap = ops.matmul(a_next, p_t)
    gains = la.transpose(la.spd_solve(pm_next, ap))      # J_t, (…, T-1, S, S)

    # Backward recursion, time-major.
    def tm(x, batched_cov):
        return ops.moveaxis(x, 1, 0) if batched_cov else x

    m_t = ops.moveaxis(filt_mean[:, :-1], 1, 0)          # (T-1, B, S)
    mm_next = ops.moveaxis(prior_mean[:, 1:], 1, 0)
    xs = (m_t, mm_next, tm(p_t, not shared), tm(pm_next, not shared), tm(gains, not shared))
    last = (filt_mean[:, -1], _take(filt_cov, steps - 1, t_axis))

    def body(carry, x):
        ms_next, ps_next = carry
        m, mm, p, pm, j = x
        if shared:
            ms = m + ops.matmul(ms_next - mm, la.transpose(j))
        else:
            ms = m + ops.einsum("bj,bij->bi", ms_next - mm, j)
        ps = la.sym(p + ops.matmul(ops.matmul(j, ps_next - pm), la.transpose(j)))
        cross = ops.matmul(ps_next, la.transpose(j))
        return (ms, ps), (ms, ps, cross)

    _, (ms, ps, cross) = scan(body, last, xs=xs, reverse=True, unroll=unroll)
    mean = ops.concatenate([ops.moveaxis(ms, 0, 1), filt_mean[:, -1:]], axis=1)
    if shared:
        cov = ops.concatenate([ps, last[1][None]], axis=0)
    else:
        ps = ops.moveaxis(ps, 0, 1)
        cross = ops.moveaxis(cross, 0, 1)
        cov = ops.concatenate([ps, ops.expand_dims(last[1], 1)], axis=1)
    return mean, cov, cross


def _slice(x, start, stop, axis):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _take(x, i, axis):
    index = [slice(None)] * len(x.shape)
    index[axis] = i
    return x[tuple(index)]
