"""Run the robustness suite, stage by stage, one process at a time; then build the report.

Every member writes one JSON under ``benchmarks/robustness/results/`` and is skipped when
the file exists, so an interrupted run resumes. Stages (``--stages``; default all):

* ``ident``      — identifiability: every ``ldm_keras.data.systems`` preset × seeds 0-2 with
  the recipe's old and current defaults, the proposed settings, the raw-observation
  read-out, the no-entropy and autoencoder baselines, and the Kalman recipe on the linear system;
* ``multiview``  — every multi-view recipe × seeds 0-4 on digits, and the raw pixels;
* ``sequence``   — every sequence recipe × seeds 0-4 on DotMotion circular at its default
  learning rate, and seeds 0-2 at 0.3× and 3×;
* ``ica``        — the ICA suite (FastICA, LinearICA defaults and candidates), 5 seeds.

``--quick`` runs seed 0 of a few members of each stage (minutes, for a smoke test).

    python benchmarks/robustness/run.py --stages ident ica
    python benchmarks/robustness/run.py --report      # only rebuild robustness.md
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

#: The recurrent-ldm recipe before and after it took the proposed settings (see
#: REPORT.md.in), the proposed settings themselves and the baselines.
IDENT_CONFIGS = ["raw", "old-defaults", "defaults", "proposed", "proposed-noentropy",
                 "autoencoder"]
LINEAR_CASES = ["damped-oscillator/mlp", "damped-oscillator/tuning",
                "damped-oscillator/frames"]
ICA_METHODS = ["fastica", "default", "logistic", "learn-beta", "extended", "bimodal-gg"]


def stages(quick):
    seeds3 = ["0"] if quick else ["0", "1", "2"]
    seeds5 = ["0"] if quick else ["0", "1", "2", "3", "4"]
    ident_cases = ["van-der-pol/mlp", "lorenz/tuning"] if quick else []
    case_args = ["--cases", *ident_cases] if ident_cases else []
    out = {
        "ident": [
            ["ident.py", "--configs", *IDENT_CONFIGS, *case_args, "--seeds", *seeds3],
            ["ident.py", "--configs", "kalman", "--cases", *LINEAR_CASES[:1 if quick else 3],
             "--seeds", *seeds3],
        ],
        "multiview": [
            ["recipes_suite.py", "raw"],
            ["recipes_suite.py", "multiview", "--seeds", *seeds5,
             *(["--recipes", "simclr", "byol"] if quick else [])],
        ],
        "sequence": [
            ["recipes_suite.py", "sequence", "--seeds", *seeds5,
             *(["--recipes", "kalman-ssl"] if quick else [])],
            ["recipes_suite.py", "sequence", "--lr-scale", "0.3", "3", "--seeds", *seeds3,
             *(["--recipes", "kalman-ssl"] if quick else [])],
        ],
        "ica": [
            ["ica_suite.py", "--methods", *ICA_METHODS, "--seeds", *seeds5,
             *(["--sizes", "3", "--families", "mixed"] if quick else [])],
        ],
    }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", nargs="+", default=["ident", "multiview", "sequence", "ica"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--report", action="store_true", help="only rebuild the report")
    a = p.parse_args(argv)
    if not a.report:
        plan = stages(a.quick)
        for stage in a.stages:
            for cmd in plan[stage]:
                print("==", stage, " ".join(cmd), flush=True)
                subprocess.run([PY, os.path.join(HERE, cmd[0]), *cmd[1:]], check=True)
    subprocess.run([PY, os.path.join(HERE, "report.py")], check=True)


if __name__ == "__main__":
    main()
