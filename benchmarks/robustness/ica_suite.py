"""ICA suite: LinearICA settings against scikit-learn's FastICA on many kinds of mixtures.

Sources (unit variance, ``N`` = 5000 samples): ``laplace``; ``uniform``; ``bimodal``
(``±1 + 0.4 ε``, normalised — sub-Gaussian); ``student`` (t, ν = 5 — heavy-tailed);
``mixed`` (the four kinds in turn: Laplace, uniform, Student-t, bimodal, …). Sizes
``n`` ∈ {2, 3, 5, 10}. Observations ``x = s Aᵀ`` with ``A ~ N(0, 1)``: ``square``
(``d = n``) or ``over`` (over-complete, ``d = 2n``; both methods whiten to ``n``
components). Score: the Amari index of ``components_ · A`` (0 = perfect).

Methods (``METHODS``): ``fastica`` (scikit-learn ``FastICA(n, random_state=seed)`` with
its defaults), ``default`` (``LinearICA(n)`` as shipped: ``prior="adaptive"``, free W),
``logistic`` (``LinearICA(n, prior="logistic")``, the default until the adaptive source
model replaced it; its rows were stored as ``default-st200`` then and renamed), and
candidate settings (see ``METHODS``; ``bimodal-gg`` is the candidate that became
``prior="adaptive"``, kept here as an independent implementation). Every LinearICA is trained by full-batch Adam (lr 0.05) for
``steps`` steps from W = I (``benchmarks/ica.py``'s ``train_ica``).

    KERAS_BACKEND=jax python benchmarks/robustness/ica_suite.py --methods fastica default
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads()

import numpy as np  # noqa: E402

SUITE = "ica"
FAMILIES = ("laplace", "uniform", "bimodal", "student", "mixed")
SIZES = (2, 3, 5, 10)
SHAPES = ("square", "over")
NUM_SAMPLES = 5000


def _draw(kind, rng, num):
    if kind == "laplace":
        s = rng.laplace(size=num)
    elif kind == "uniform":
        s = rng.uniform(-1, 1, size=num)
    elif kind == "bimodal":
        s = rng.choice([-1.0, 1.0], size=num) + 0.4 * rng.standard_normal(num)
    elif kind == "student":
        s = rng.standard_t(5, size=num)
    else:
        raise ValueError(kind)
    return (s - s.mean()) / s.std()


def make_case(family, n, shape, seed, num=NUM_SAMPLES):
    """``(x, A, s)``: observations ``(num, d)``, mixing ``(d, n)``, sources ``(num, n)``."""
    rng = np.random.default_rng([seed, n, FAMILIES.index(family), SHAPES.index(shape)])
    kinds = ([family] * n if family != "mixed"
             else [("laplace", "uniform", "student", "bimodal")[i % 4] for i in range(n)])
    s = np.stack([_draw(k, rng, num) for k in kinds], axis=1)
    d = n if shape == "square" else 2 * n
    a = rng.standard_normal((d, n))
    return (s @ a.T).astype("float32"), a, s


def cases():
    return [(f, n, sh) for f in FAMILIES for n in SIZES for sh in SHAPES]


def case_name(f, n, sh):
    return f"{f}-n{n}-{sh}"


# -- methods -----------------------------------------------------------------------------

def _extended_infomax_class():
    """LinearICA with extended-infomax sources: ``log p(u) = -u²/2 - k_i log cosh u``,
    ``k_i = +1`` (super-Gaussian, ``p ∝ N(u)·sech u``) or ``-1`` (sub-Gaussian, a
    two-Gaussian mixture ``p ∝ N(u)·cosh u``), switched each step from the batch:
    ``k_i = sign(E[sech² u_i] E[u_i²] - E[u_i tanh u_i])`` (Lee, Girolami & Sejnowski
    1999), without gradient."""
    from keras import ops

    from ldm_keras.models.ica import LinearICA

    class ExtendedInfomaxICA(LinearICA):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, prior="gaussian", **kwargs)

        def _log_density(self, u):
            t = ops.tanh(u)
            axes = tuple(range(len(u.shape) - 1))
            k = ops.sign(ops.mean(1.0 - t * t, axis=axes) * ops.mean(u * u, axis=axes)
                         - ops.mean(u * t, axis=axes))
            k = ops.stop_gradient(ops.where(k == 0, 1.0, k))
            logcosh = ops.abs(u) + ops.log1p(ops.exp(-2.0 * ops.abs(u))) - np.log(2.0)
            return ops.sum(-0.5 * u * u - k * logcosh, axis=-1)

    return ExtendedInfomaxICA


def _bimodal_gg_class():
    """LinearICA with learned-shape sources that may also be bimodal: a symmetric
    two-component generalised Gaussian per source,
    ``p(u) = ½ [g_β(u - μ) + g_β(u + μ)]``, ``g_β(v) = β/(2Γ(1/β)) exp(-|v|^β)``, with
    learned ``β_i ∈ beta_range`` and ``μ_i = softplus(·) ≥ 0`` (initialised at 0.5):
    ``μ → 0`` gives the generalised Gaussian (super- or sub-Gaussian by β), ``μ > 0`` a
    bimodal source. Exactly normalised, fitted by likelihood with W."""
    import math

    import keras
    from keras import ops

    from ldm_keras._math import lgamma as _lgamma
    from ldm_keras.models.ica import LinearICA

    class BimodalGGICA(LinearICA):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("beta", 2.0)
            super().__init__(*args, prior="generalized_gaussian", learn_beta=True, **kwargs)

        def build(self, input_shape):
            super().build(input_shape)
            init = math.log(math.expm1(0.5))
            self.mu_raw = self.add_weight(shape=(self.num_sources,), name="mu_raw",
                                          initializer=keras.initializers.Constant(init))

        def _log_density(self, u):
            beta = self.betas()
            mu = ops.softplus(ops.cast(self.mu_raw, "float32"))
            a = -ops.exp(beta * ops.log(ops.abs(u - mu) + self.epsilon))
            b = -ops.exp(beta * ops.log(ops.abs(u + mu) + self.epsilon))
            mix = ops.logsumexp(ops.stack([a, b], axis=0), axis=0) - math.log(2.0)
            const = ops.log(beta) - math.log(2.0) - _lgamma(1.0 / beta)
            return ops.sum(const + mix, axis=-1)

    return BimodalGGICA


def build(method, n):
    from ldm_keras.models.ica import LinearICA

    spec = METHODS[method]
    if spec.get("kind") == "extended":
        return _extended_infomax_class()(n_components=n, **spec.get("kwargs", {}))
    if spec.get("kind") == "bimodal-gg":
        return _bimodal_gg_class()(n_components=n, **spec.get("kwargs", {}))
    return LinearICA(n_components=n, **spec.get("kwargs", {}))


METHODS = {
    "fastica": {"kind": "fastica"},
    "default": {"kwargs": {}},
    "logistic": {"kwargs": dict(prior="logistic")},
    "adaptive-b13": {"kwargs": dict(prior="adaptive", beta_range=(1.3, 8.0))},
    "learn-beta": {"kwargs": dict(prior="generalized_gaussian", beta=2.0, learn_beta=True)},
    "learn-beta-orth": {"kwargs": dict(prior="generalized_gaussian", beta=2.0,
                                       learn_beta=True, orthogonal=True)},
    "learn-beta-wide": {"kwargs": dict(prior="generalized_gaussian", beta=2.0,
                                       learn_beta=True, beta_range=(1.0, 20.0))},
    "bimodal-gg": {"kind": "bimodal-gg", "kwargs": {}},
    "bimodal-gg-lo": {"kind": "bimodal-gg", "kwargs": dict(beta_range=(0.6, 8.0))},
    "extended": {"kind": "extended", "kwargs": {}},
    "extended-orth": {"kind": "extended", "kwargs": dict(orthogonal=True)},
}


def config_name(method, steps):
    return method if METHODS[method].get("kind") == "fastica" else f"{method}-st{steps}"


def run_method(method, family, n, shape, seeds, steps=200, lr=0.05, force=False):
    from ldm_keras.evaluation import amari_index

    cfg = config_name(method, steps)
    todo = [s for s in seeds if force or not os.path.exists(
        common.result_path(SUITE, cfg, case_name(family, n, shape), s))]
    if not todo:
        return
    data = [make_case(family, n, shape, s) for s in todo]
    if METHODS[method].get("kind") == "fastica":
        from sklearn.decomposition import FastICA

        for seed, (x, a, _) in zip(todo, data):
            def fn(x=x, a=a, seed=seed):
                import warnings
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    f = FastICA(n, random_state=seed).fit(x)
                return {"amari": amari_index(f.components_, a), "n_iter": int(f.n_iter_),
                        "warnings": len(w)}
            common.run_or_skip(SUITE, cfg, case_name(family, n, shape), seed, fn, force=True)
        return
    sys.path.insert(0, os.path.join(common.HERE, ".."))
    from ica import train_ica

    model = build(method, n)
    comps = train_ica(model, [x for x, _, _ in data], steps=steps, learning_rate=lr)
    for seed, w, (_, a, _) in zip(todo, comps, data):
        rec = {"amari": amari_index(w, a), "finite": bool(np.all(np.isfinite(w)))}
        if model.learn_beta and seed == todo[-1]:  # the model holds the last fit's weights
            import keras
            rec["betas"] = keras.ops.convert_to_numpy(model.betas()).round(3).tolist()
            if getattr(model, "adaptive", False):
                rec["offsets"] = keras.ops.convert_to_numpy(model.offsets()).round(3).tolist()
        common.run_or_skip(SUITE, cfg, case_name(family, n, shape), seed,
                           lambda rec=rec: dict(rec), force=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["fastica", "default"])
    p.add_argument("--families", nargs="+", default=list(FAMILIES))
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    p.add_argument("--shapes", nargs="+", default=list(SHAPES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    for method in a.methods:
        for f in a.families:
            for n in a.sizes:
                for sh in a.shapes:
                    run_method(method, f, n, sh, a.seeds, steps=a.steps, force=a.force)
                    recs = [common.load_result(common.result_path(
                        SUITE, config_name(method, a.steps), case_name(f, n, sh), s))
                        for s in a.seeds]
                    print(method, case_name(f, n, sh),
                          common.fmt_spread([r["amari"] for r in recs]), flush=True)


if __name__ == "__main__":
    main()
