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

import hashlib
import os
import shutil
import sys

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ["tensorflow", "jax", "torch"]
TORCH_PIN = "torch==2.13.0"


def _install(session):
    # torch first, pinned, so nothing later resolves an unpinned (CUDA) build.
    session.install(TORCH_PIN)
    session.install("-e", ".[all,dev]", TORCH_PIN)


#: One virtual environment for the three ``tests`` sessions: they install exactly the same
#: packages (``.[all,dev]`` with the pinned torch: TensorFlow, JAX and PyTorch, ~2 GB), so
#: the second and third sessions reuse the first's instead of installing it again (about
#: 2 minutes each on a 2-core machine). Each backend still runs in its own pytest process.
TESTS_VENV = os.path.join(".nox", "tests-shared")


def _tests_python(session):
    """The Python of :data:`TESTS_VENV`, created and installed when missing or when
    ``pyproject.toml`` changed since it was installed."""
    python = os.path.join(TESTS_VENV, "Scripts" if os.name == "nt" else "bin", "python")
    with open("pyproject.toml", "rb") as f:
        stamp = hashlib.sha256(f.read() + TORCH_PIN.encode()).hexdigest()
    marker = os.path.join(TESTS_VENV, ".installed")
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == stamp:
                return python
    if not os.path.exists(python):
        session.run(sys.executable, "-m", "venv", TESTS_VENV, external=True)
    # torch first, pinned, so nothing later resolves an unpinned (CUDA) build.
    session.run(python, "-m", "pip", "install", TORCH_PIN, external=True)
    session.run(python, "-m", "pip", "install", "-e", ".[all,dev]", TORCH_PIN, external=True)
    with open(marker, "w") as f:
        f.write(stamp)
    return python


@nox.session(venv_backend="none")
@nox.parametrize("backend", BACKENDS)
def tests(session, backend):
    """Run pytest with KERAS_BACKEND set to one backend (in the shared tests environment)."""
    python = _tests_python(session)
    env = {"KERAS_BACKEND": backend, "LDM_KERAS_FAST": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           # TensorFlow: Kalman models compile with XLA by default, which pays off over a
           # training run but costs 2-3 s more per compiled shape; the suite's many short
           # fits keep the plain graph, and test_kalman_fast checks the XLA default
           # against it.
           "LDM_KERAS_KALMAN_XLA": "0",
           # as if activated: a tool a test starts by name comes from this environment
           "VIRTUAL_ENV": os.path.abspath(TESTS_VENV),
           "PATH": os.path.dirname(os.path.abspath(python)) + os.pathsep
           + os.environ.get("PATH", "")}
    if backend == "torch":
        # On a small, busy CPU torch's intra-op threads make the many small matrix ops
        # of the Kalman filter (2×2 Cholesky) ~1000× slower; one thread is much faster.
        env["OMP_NUM_THREADS"] = "1"
    if backend == "jax":
        # JAX compiles every train step of the suite's many small models; most of them are
        # the same computation again (same layers, same shapes), which XLA's persistent
        # cache compiles once for all tests, test processes and subprocesses. Emptied at
        # each start, so a run never depends on an earlier one.
        cache = os.path.abspath(os.path.join(".nox", "jax-compilation-cache"))
        shutil.rmtree(cache, ignore_errors=True)
        env.update({"JAX_COMPILATION_CACHE_DIR": cache,
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    # test processes (pytest-xdist); LDM_KERAS_TEST_WORKERS=1 runs them in this one
    workers = os.environ.get("LDM_KERAS_TEST_WORKERS", "2")
    parallel = ["-n", workers] if workers != "1" else []
    session.run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=20",
                *parallel, *session.posargs, env=env, external=True)


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
