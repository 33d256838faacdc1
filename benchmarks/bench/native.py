"""Per-backend glue: compiled forward+backward callables and native baselines.

Every entropy case is measured as "value and gradient w.r.t. the input batch". The
same wrapper compiles our estimator and the baseline, as ``model.fit`` would:

* JAX: ``jax.jit(jax.value_and_grad(f))``;
* TensorFlow: ``tf.function(jit_compile=True)`` around a ``GradientTape`` (Keras' TF
  trainer uses XLA when every layer supports it, ``jit_compile="auto"``);
* PyTorch: eager ``torch.autograd.grad`` (Keras' torch trainer runs eagerly).

The baselines are written in the backend's own framework, straightforwardly:

* KDE (Gaussian and vMF): the pairwise broadcast of the reference release,
  ``diff = z[:, None, :] - z[None, :, :]`` (an ``N × N × d`` tensor) then
  ``logsumexp``;
* k-NN: ``torch.cdist`` + ``torch.topk`` on PyTorch; on JAX / TensorFlow (no cdist) the
  broadcast squared distances + ``top_k``;
* log-det: ``½ Σ log eigvalsh(C + εI)`` of the covariance (instead of a Cholesky factor).

Each baseline returns exactly the quantity our estimator returns (same constants), so
values and gradients agree (tests/test_benchmarks.py checks it).
"""

import math

LOG_2PI_E = math.log(2.0 * math.pi * math.e)


def _knn_constant(n, d, k):
    from scipy.special import digamma, gammaln

    log_vd = 0.5 * d * math.log(math.pi) - float(gammaln(0.5 * d + 1.0))
    return log_vd + float(digamma(n)) - float(digamma(k))


class Backend:
    """Compile/convert helpers for the current ``keras.backend.backend()``."""

    def __init__(self, name):
        self.name = name
        if name == "jax":
            import jax
            import jax.numpy as jnp

            self.jax, self.np = jax, jnp
        elif name == "tensorflow":
            import tensorflow as tf

            self.tf = tf
        elif name == "torch":
            import torch

            self.torch = torch
        else:
            raise ValueError(f"unknown backend {name!r}")

    # -- conversion ------------------------------------------------------------------
    def tensor(self, array):
        import numpy as np

        array = np.asarray(array, dtype="float32")
        if self.name == "jax":
            return self.jax.device_put(array)
        if self.name == "tensorflow":
            return self.tf.constant(array)
        return self.torch.from_numpy(array.copy())

    def block(self, out):
        """Wait for ``out`` (a nest of tensors) to be computed."""
        if self.name == "jax":
            self.jax.block_until_ready(out)
        elif self.name == "tensorflow":
            for t in self.tf.nest.flatten(out):
                t.numpy()
        return out

    def numpy(self, t):
        import numpy as np

        if self.name == "torch" and hasattr(t, "detach"):
            return t.detach().cpu().numpy()
        return np.asarray(t)  # also the Python floats of train_on_batch(return_dict=True)

    # -- value and gradient ------------------------------------------------------------
    def value_and_grad(self, f):
        """``g(z) -> (f(z), df/dz)``, compiled as ``model.fit`` would on this backend."""
        if self.name == "jax":
            return self.jax.jit(self.jax.value_and_grad(f))
        if self.name == "tensorflow":
            tf = self.tf

            @tf.function(jit_compile=True)
            def g(z):
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    h = f(z)
                return h, tape.gradient(h, z)

            return g
        torch = self.torch

        def g(z):
            z = z.detach().requires_grad_(True)
            h = f(z)
            (grad,) = torch.autograd.grad(h, z)
            return h.detach(), grad

        return g

    def runner(self, f, z):
        """A no-argument callable running value-and-gradient of ``f`` at ``z``, blocking."""
        g = self.value_and_grad(f)
        return lambda: self.block(g(z))

    # -- baselines ---------------------------------------------------------------------
    def baseline(self, estimator, **kw):
        """The straightforward native implementation of ``estimator`` (a loss ``f(z)``)."""
        return getattr(self, "_" + estimator)(**kw)

    def _ops(self):
        """(sum, logsumexp, mean, log) in the native framework."""
        if self.name == "jax":
            jnp = self.np
            return (jnp.sum, self.jax.scipy.special.logsumexp, jnp.mean, jnp.log)
        if self.name == "tensorflow":
            tf = self.tf
            return (tf.reduce_sum, tf.reduce_logsumexp, tf.reduce_mean, tf.math.log)
        torch = self.torch
        return (torch.sum, torch.logsumexp, torch.mean, torch.log)

    def _normalize(self, z):
        s, _, _, _ = self._ops()
        if self.name == "torch":
            norm = self.torch.sqrt(self.torch.clamp(s(z * z, -1, keepdim=True), min=1e-24))
        elif self.name == "jax":
            norm = self.np.sqrt(self.np.maximum(s(z * z, -1, keepdims=True), 1e-24))
        else:
            norm = self.tf.sqrt(self.tf.maximum(s(z * z, -1, keepdims=True), 1e-24))
        return z / norm

    def _gaussian_kde(self, precision=5.0):
        s, lse, mean, _ = self._ops()

        def f(z):
            d = z.shape[-1]
            diff = z[:, None, :] - z[None, :, :]                  # N × N × d
            d2 = s(diff * diff, -1)
            return -mean(lse(-(precision / d) * d2, -1))

        return f

    def _vmf_kde(self, precision=5.0):
        s, lse, mean, _ = self._ops()

        def f(z):
            zn = self._normalize(z)
            dots = s(zn[:, None, :] * zn[None, :, :], -1)       # N × N × d
            return -mean(lse(precision * dots, -1))

        return f

    def _knn(self, k=3, eps=1e-12):
        s, _, mean, log = self._ops()

        def f(z):
            n, d = z.shape[0], z.shape[-1]
            const = _knn_constant(int(n), int(d), k)
            if self.name == "torch":
                torch = self.torch
                dist = torch.cdist(z, z)
                dist = dist + (2.0 * dist.detach().max() + 1.0) * torch.eye(n)
                r = torch.topk(dist, k, dim=-1, largest=False).values[:, k - 1]
                log_r = 0.5 * log(r * r + eps)
            else:
                diff = z[:, None, :] - z[None, :, :]
                d2 = s(diff * diff, -1)
                if self.name == "jax":
                    big = 2.0 * self.jax.lax.stop_gradient(d2.max()) + 1.0
                    neg, _ = self.jax.lax.top_k(-(d2 + big * self.np.eye(n)), k)
                else:
                    tf = self.tf
                    big = 2.0 * tf.stop_gradient(tf.reduce_max(d2)) + 1.0
                    neg, _ = tf.math.top_k(-(d2 + big * tf.eye(n)), k)
                log_r = 0.5 * log(-neg[:, k - 1] + eps)
            return d * mean(log_r) + const

        return f

    def _logdet(self, jitter=1e-6):
        s, _, mean, log = self._ops()

        def f(z):
            n, d = z.shape[0], z.shape[-1]
            if self.name == "torch":
                torch = self.torch
                zc = z - z.mean(0, keepdim=True)
                cov = zc.T @ zc / (n - 1)
                scale = torch.clamp(torch.trace(cov) / d, min=1e-12)
                ev = torch.linalg.eigvalsh(cov + jitter * scale * torch.eye(d))
            elif self.name == "jax":
                jnp = self.np
                zc = z - z.mean(0, keepdims=True)
                cov = zc.T @ zc / (n - 1)
                scale = jnp.maximum(jnp.trace(cov) / d, 1e-12)
                ev = jnp.linalg.eigvalsh(cov + jitter * scale * jnp.eye(d))
            else:
                tf = self.tf
                zc = z - tf.reduce_mean(z, 0, keepdims=True)
                cov = tf.matmul(zc, zc, transpose_a=True) / (n - 1)
                scale = tf.maximum(tf.linalg.trace(cov) / d, 1e-12)
                ev = tf.linalg.eigvalsh(cov + jitter * scale * tf.eye(d))
            return 0.5 * s(log(ev)) + 0.5 * d * LOG_2PI_E

        return f

    def matmul_runner(self, a, b):
        """A blocking float32 matmul ``a @ b`` (the machine's reference arithmetic rate)."""
        if self.name == "jax":
            f = self.jax.jit(lambda x, y: x @ y)
        elif self.name == "tensorflow":
            f = self.tf.function(lambda x, y: self.tf.matmul(x, y), jit_compile=True)
        else:
            f = self.torch.matmul
        return lambda: self.block(f(a, b))


def ours(estimator, **kw):
    """Our estimator for ``estimator`` (a loss ``f(z)``) with the benchmark's settings."""
    from ldm_keras.entropy import GaussianKDE, GaussianLogDet, KNNEntropy, VonMisesFisherKDE

    est = {"gaussian_kde": GaussianKDE, "vmf_kde": VonMisesFisherKDE, "knn": KNNEntropy,
           "logdet": GaussianLogDet}[estimator](**kw)
    return lambda z: est(z)
