"""Nox sessions for ldm_keras.

* ``nox -s tests``      — the test suite, once per Keras backend, each in its own process.
* ``nox -s lint``       — ruff.
* ``nox -s tutorials``  — every tutorial in fast mode on each backend.
* ``nox -s bench``      — speed and memory benchmarks (ratios against baselines).
* ``nox -s robustness`` — the robustness suite (recipes × seeds and learning rates,
  identifiability on unseen systems, ICA), resumable; writes benchmarks/results/robustness.md.

PyTorch is pinned to the CPU build ``torch==2.13.0`` here, in the test tooling only: an
unpinned ``torch`` would pull a multi-GB CUDA build. Users choose their own torch.
"""

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ["tensorflow", "jax", "torch"]
TORCH_PIN = "torch==2.13.0"


def _install(session):
    # torch first, pinned, so nothing later resolves an unpinned (CUDA) build.
    session.install(TORCH_PIN)
    session.install("-e", ".[all,dev]", TORCH_PIN)


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session, backend):
    """Run pytest with KERAS_BACKEND set to one backend."""
    _install(session)
    env = {"KERAS_BACKEND": backend, "LDM_KERAS_FAST": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           # TensorFlow: Kalman models compile with XLA by default, which pays off over a
           # training run but costs 2-3 s more per compiled shape; the suite's many short
           # fits keep the plain graph, and test_kalman_fast checks the XLA default
           # against it.
           "LDM_KERAS_KALMAN_XLA": "0"}
    if backend == "torch":
        # On a small, busy CPU torch's intra-op threads make the many small matrix ops
        # of the Kalman filter (2×2 Cholesky) ~1000× slower; one thread is much faster.
        env["OMP_NUM_THREADS"] = "1"
    # test processes (pytest-xdist); LDM_KERAS_TEST_WORKERS=1 runs them in this one
    workers = os.environ.get("LDM_KERAS_TEST_WORKERS", "2")
    parallel = ["-n", workers] if workers != "1" else []
    session.run("pytest", "-q", "-p", "no:cacheprovider", "--durations=20", *parallel,
                *session.posargs, env=env)


@nox.session
def lint(session):
    """Static checks with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "ldm_keras", "tests", "tutorials", "benchmarks", "noxfile.py")


@nox.session
@nox.parametrize("backend", BACKENDS)
def tutorials(session, backend):
    """Execute every tutorial in fast mode."""
    _install(session)
    env = {"KERAS_BACKEND": backend, "LDM_KERAS_FAST": "1", "MPLBACKEND": "Agg"}
    for name in sorted(os.listdir("tutorials")):
        if name.endswith(".py") and not name.startswith("_"):
            session.run("python", os.path.join("tutorials", name), env=env)


@nox.session
def bench(session):
    """Speed and memory benchmarks (ratios against baselines measured in the same run).

    Writes benchmarks/results/bench.{json,md}. ``run.py`` starts one worker process per
    backend (and per mode: time, peak memory), so this session needs no backend set.
    Pass options after ``--``: ``nox -s bench -- --quick``, ``-- --grid core``,
    ``-- --only entropy/gaussian_kde --backends jax``. dynamax (the Kalman cases'
    JAX baseline) is installed here only, with tf_keras which its TensorFlow Probability
    dependency imports next to TensorFlow.
    """
    _install(session)
    session.install("dynamax", "tf_keras", TORCH_PIN)
    session.run("python", "benchmarks/run.py", *session.posargs,
                env={"TF_CPP_MIN_LOG_LEVEL": "2"})


@nox.session
def robustness(session):
    """Robustness suite (not CI: hours of CPU): every recipe over seeds and learning rates,
    the identifiability suite of ``ldm_keras.data.systems`` and the ICA suite.

    Each run writes one JSON under benchmarks/robustness/results/ and is skipped when it
    exists, so the session resumes where it stopped. ``-- --quick`` runs one seed of a few
    members only; ``-- --report`` only rebuilds benchmarks/results/robustness.md.
    """
    _install(session)
    session.run("python", "benchmarks/robustness/run.py", *session.posargs,
                env={"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "jax",
                     "OMP_NUM_THREADS": "1"})
