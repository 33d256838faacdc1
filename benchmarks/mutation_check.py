"""A small mutation check: does the test suite notice a plausible bug?

Each mutant is one textual edit (flip a sign, swap ``+``/``-``, change a constant, drop a
``stop_gradient``, ``<`` → ``<=``, ...) to one source file of the objective, the recipes,
the Kalman cell or the zoo loader. For each mutant the script copies the repository (the
working tree without ``.git``) to a temporary folder, applies the edit there, runs the
test files that cover the edited code on one backend with a timeout, and records whether
the tests went red (**killed**) or stayed green (**survived**). The working tree itself is
never edited, so an interrupted run (Ctrl-C, a timeout) leaves nothing to restore; the
temporary copy is removed in ``finally``.

A survivor is either a hole in the tests or an equivalent mutant (one that does not
change behaviour); the table says which file and edit, so each can be judged by hand.

Usage (from the repository root)::

    python benchmarks/mutation_check.py                       # every mutant, jax
    python benchmarks/mutation_check.py --only objectives     # ids containing the word
    python benchmarks/mutation_check.py --list                # the mutants, no run
    python benchmarks/mutation_check.py --backend torch --timeout 300

Writes ``benchmarks/results/mutation.md`` (or ``--out``).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OBJ = "ldm_keras/objectives.py"
REC = "ldm_keras/recipes/__init__.py"
MV = "ldm_keras/recipes/multiview.py"
SEQ = "ldm_keras/recipes/sequence.py"
COMP = "ldm_keras/recipes/components.py"
CELL = "ldm_keras/predictors/cell.py"
ZOO = "ldm_keras/zoo/loader.py"

T_FORMULAS = ["tests/test_recipe_formulas.py"]
T_OBJ = ["tests/test_mutation_kills.py", "tests/test_recipe_formulas.py"]
T_KALMAN = ["tests/test_mutation_kills.py", "tests/test_kalman.py"]
T_ZOO = ["tests/test_mutation_kills.py", "tests/test_zoo.py", "tests/test_zoo_security.py"]

#: (id, file, text to replace (must occur exactly once), replacement, tests to run).
MUTANTS = [
    # the objective
    ("obj-loss-sign", OBJ, "loss = -(align + self.entropy_weight * ent)",
     "loss = (align + self.entropy_weight * ent)", T_OBJ),
    ("obj-entropy-minus", OBJ, "loss = -(align + self.entropy_weight * ent)",
     "loss = -(align - self.entropy_weight * ent)", T_OBJ),
    ("obj-half-to-one", OBJ, "return 0.5 * (forward + backward)",
     "return 1.0 * (forward + backward)", T_OBJ),
    ("obj-backward-dropped", OBJ, "return 0.5 * (forward + backward)",
     "return forward", T_OBJ),
    ("obj-drop-stop-gradient", OBJ,
     "t1, t2 = ops.stop_gradient(t1), ops.stop_gradient(t2)", "t1, t2 = t1, t2", T_OBJ),
    ("obj-pooled-2-to-1", OBJ, "return 2.0 * self.entropy(pooled)",
     "return 1.0 * self.entropy(pooled)", T_OBJ),
    ("obj-joint-is-marginal", OBJ, "return self.entropy.joint(z1, z2)",
     "return self.entropy.marginal(z1, z2)", T_OBJ),
    ("obj-swap-target", OBJ, "forward = ops.mean(self.prior.log_prob(t2, context=p1))",
     "forward = ops.mean(self.prior.log_prob(t1, context=p1))", T_OBJ),
    # the recipes
    ("rec-simclr-weight", MV, "centers=\"other\", mode=\"marginal\", entropy_weight=0.5",
     "centers=\"other\", mode=\"marginal\", entropy_weight=1.0", T_FORMULAS),
    ("rec-vicreg-kappa", MV, "prior=\"gaussian\", precision=25.0",
     "prior=\"gaussian\", precision=5.0", T_FORMULAS),
    ("rec-byol-momentum", MV, "ema_momentum=0.99, projector=(256, 64)",
     "ema_momentum=0.9, projector=(256, 64)", T_FORMULAS),
    ("rec-vicreg-variance-weight", COMP, "\"variance_weight\": 12.5",
     "\"variance_weight\": 25.0", T_FORMULAS),
    ("rec-knn-k-default", COMP, "{\"k\": o.get(\"k\", 3)", "{\"k\": o.get(\"k\", 4)",
     T_FORMULAS),
    ("rec-kalman-sg-targets", SEQ, "stop_gradient_targets=entropy is None, seed=",
     "stop_gradient_targets=entropy is not None, seed=", T_FORMULAS),
    ("rec-adam-alpha", REC, "alpha=0.01 if optimizer == \"adam\" else 0.0",
     "alpha=0.0 if optimizer == \"adam\" else 0.0", T_FORMULAS),
    ("rec-anneal-final", MV, "final_agreement=0.992", "final_agreement=0.99", T_FORMULAS),
    ("rec-cpc-steps", SEQ, "prediction_steps=3, score=\"vmf\"",
     "prediction_steps=2, score=\"vmf\"", T_FORMULAS),
    ("rec-no-entropy-mode", MV,
     "if o.get(\"entropy\") is None and o.get(\"mode\") not in (None, \"joint\"):",
     "if o.get(\"entropy\") is None and o.get(\"mode\") in (None, \"joint\"):", T_FORMULAS),
    # the Kalman cell
    ("cell-offset-sign", CELL,
     "prior_mean = ops.matmul(mean - b, ops.transpose(a)) + b",
     "prior_mean = ops.matmul(mean - b, ops.transpose(a)) - b", T_KALMAN),
    ("cell-no-process-noise", CELL, "return prior_mean, prior_cov + q",
     "return prior_mean, prior_cov", T_KALMAN),
    ("cell-jitter-sign", CELL, "ops.expand_dims(obs_var + self.jitter, -1) * eye",
     "ops.expand_dims(obs_var - self.jitter, -1) * eye", T_KALMAN),
    ("cell-constant-half", CELL, "return 0.5 * self.observation_dim * LOG_2PI",
     "return 1.0 * self.observation_dim * LOG_2PI", T_KALMAN),
    ("cell-clamp-min-max", CELL, "factor = ops.minimum(1.0, max_radius",
     "factor = ops.maximum(1.0, max_radius", T_KALMAN),
    ("cell-clamp-shift", CELL, "ops.maximum(0.0, ops.log(ops.maximum(rho, 1e-30)) - math.log",
     "ops.maximum(0.0, ops.log(ops.maximum(rho, 1e-30)) + math.log", T_KALMAN),
    ("cell-fixed-D-check", CELL,
     "self.observation_matrix == \"fixed\" and self.observation_dim > self.state_dim",
     "self.observation_matrix == \"fixed\" and self.observation_dim >= self.state_dim",
     T_KALMAN),
    # the zoo loader
    ("zoo-trainable-flipped", ZOO, "encoder.trainable = bool(trainable)",
     "encoder.trainable = not bool(trainable)", T_ZOO),
    ("zoo-no-weights-check", ZOO, "if not entry.get(\"weights\", True):",
     "if not entry.get(\"weights\", False) and False:", T_ZOO),
    ("zoo-safe-mode-off", ZOO, "copy.deepcopy(config), safe_mode=True)",
     "copy.deepcopy(config), safe_mode=False)", T_ZOO),
    ("zoo-budget-plus", ZOO, "cap - _limits.variable_bytes(encoder.variables)",
     "cap + _limits.variable_bytes(encoder.variables)", T_ZOO),
    ("zoo-head-not-loaded", ZOO, "(\"head\", \"projector\"), (\"projector\", \"projector\"),",
     "(\"projector\", \"projector\"),", T_ZOO),
]


def copy_tree(dst):
    """The working tree without .git, caches and results into ``dst``."""
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".nox", "*.egg-info", "results",
                                    ".pytest_cache", ".hypothesis")
    # symlinks kept (ldm_keras/_zoo_data -> ../zoo must resolve inside the copy)
    shutil.copytree(ROOT, dst, ignore=ignore, dirs_exist_ok=True, symlinks=True)


def apply(tree, path, old, new):
    target = Path(tree) / path
    text = target.read_text()
    count = text.count(old)
    if count != 1:
        raise ValueError(f"mutant text occurs {count} times in {path} (expected once): "
                         f"{old!r}")
    target.write_text(text.replace(old, new))


def run_tests(tree, tests, backend, timeout):
    env = {**os.environ, "PYTHONPATH": str(tree), "KERAS_BACKEND": backend,
           "LDM_KERAS_FAST": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    tests = [t for t in tests if (Path(tree) / t).exists()]
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    start = time.time()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.time() - start, ""
    tail = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    failed = [ln for ln in tail if ln.startswith("FAILED") or ln.startswith("ERROR")]
    status = "survived" if proc.returncode == 0 else "killed"
    return status, time.time() - start, (failed[0] if failed else (tail[-1] if tail else ""))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="jax")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant")
    p.add_argument("--only", default=None, help="run the mutants whose id contains this")
    p.add_argument("--list", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mutation.md"))
    args = p.parse_args(argv)
    mutants = [m for m in MUTANTS if args.only is None or args.only in m[0]]
    if args.list:
        for mid, path, old, new, tests in mutants:
            print(f"{mid:28s} {path}: {old!r} -> {new!r}  [{' '.join(tests)}]")
        return 0
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # `kill` also cleans up
    rows = []
    tmp = tempfile.mkdtemp(prefix="ldm_mutation_")
    try:
        tree = Path(tmp) / "tree"
        copy_tree(tree)
        for mid, path, old, new, tests in mutants:
            original = (tree / path).read_text()
            try:
                apply(tree, path, old, new)
                status, secs, why = run_tests(tree, tests, args.backend, args.timeout)
            finally:
                (tree / path).write_text(original)
            rows.append((mid, path, old, new, status, secs, why))
            print(f"{mid:28s} {status:9s} {secs:6.0f}s  {why[:100]}", flush=True)
            write_table(rows, args, len(mutants))  # after each mutant: a partial run counts
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def write_table(rows, args, planned):
    """The table of ``rows`` so far into ``args.out``."""
    killed = sum(r[4] == "killed" for r in rows)
    timeouts = sum(r[4] == "timeout" for r in rows)
    lines = [
        "# Mutation check",
        "",
        f"`python benchmarks/mutation_check.py --backend {args.backend}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {killed} of {len(rows)} "
        f"mutants run (of {planned}) killed, {timeouts} timed out "
        f"(--timeout {args.timeout:g} s). A mutant is killed when its tests go red; a "
        "timeout decides nothing; a survivor is a hole in the tests or an equivalent "
        "mutant.",
        "",
        "| mutant | file | edit | result | s | first failure |",
        "|---|---|---|---|---|---|",
    ]
    for mid, path, old, new, status, secs, why in rows:
        edit = f"`{old}` → `{new}`".replace("|", "\\|")
        lines.append(f"| {mid} | {path} | {edit} | **{status}** | {secs:.0f} | "
                     f"{why[:120].replace('|', '/')} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"{killed}/{len(rows)} killed; wrote {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
