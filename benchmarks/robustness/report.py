"""Build benchmarks/results/robustness.md from the template and the stored results.

The template (``benchmarks/robustness/REPORT.md.in``) is prose with directives, one per
line, that are replaced by tables computed from ``results/``:

    <!-- ident configs=defaults,proposed baseline=raw [cases=a,b] [key=r2] -->
    <!-- recipes kind=multiview configs=mv-simclr,mv-byol key=probe_10 -->
    <!-- generic suite=recipes configs=a,b key=r2 -->
    <!-- ica configs=fastica,default-st200 -->
    <!-- tuning_cases -->   (the cases the proposed settings were chosen on)

Every cell is ``mean [min, max]`` over the stored seeds; identifiability cells add
``k/n`` = the number of seeds with R² ≥ 0.95.

    python benchmarks/robustness/report.py
"""

import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402

TEMPLATE = os.path.join(common.HERE, "REPORT.md.in")
OUT = os.path.join(common.HERE, "..", "results", "robustness.md")


def _by(suite, key):
    out = collections.defaultdict(list)
    for r in common.collect(suite):
        v = r.get(key)
        out[(r["config"], r["case"])].append(np.nan if v is None else float(v))
    return out


def _cell(values, threshold=None, digits=3):
    if not values:
        return "—"
    m, lo, hi, n = common.spread(values)
    f = lambda x: "nan" if not np.isfinite(x) else f"{x:.{digits}f}"  # noqa: E731
    text = f(m) if n == 1 else f"{f(m)} [{f(lo)}, {f(hi)}]"
    if threshold is not None:
        ok = sum(1 for v in values if np.isfinite(v) and v >= threshold)
        text += f" {ok}/{n}"
    return text


def ident_table(configs, baseline="raw", cases=None, key="r2"):
    by = _by("ident", key)
    raw = _by("ident", "r2")
    all_cases = sorted({c for (_, c) in by})
    cases = cases or all_cases
    head = ["case", baseline] + configs
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in cases:
        base = raw.get((baseline, case), [])
        row = [f"`{case}`", _cell(base)]
        for c in configs:
            row.append(_cell(by.get((c, case), []), 0.95 if key == "r2" else None))
        lines.append("| " + " | ".join(row) + " |")
    # summary row: cases passing (>= 0.95 on >= 2/3 seeds, beats the baseline by 0.05
    # where it is below 0.9)
    if key == "r2":
        summary = ["**cases passing**", ""]
        for c in configs:
            ok, total = 0, 0
            for case in cases:
                v = by.get((c, case), [])
                if not v:
                    continue
                total += 1
                good = sum(1 for x in v if np.isfinite(x) and x >= 0.95) >= 2 * len(v) / 3
                b = raw.get((baseline, case), [])
                if b and np.mean(b) < 0.9:
                    good = good and np.mean(v) >= np.mean(b) + 0.05
                ok += good
            summary.append(f"{ok}/{total}")
        lines.append("| " + " | ".join(summary) + " |")
    return "\n".join(lines)


def generic_table(suite, configs, key, cases=None, digits=3):
    by = _by(suite, key)
    cases = cases or sorted({c for (cfg, c) in by if cfg in configs})
    head = ["config"] + [f"`{c}`" for c in cases]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cfg in configs:
        lines.append("| " + " | ".join([cfg] + [_cell(by.get((cfg, c), []), digits=digits)
                                               for c in cases]) + " |")
    return "\n".join(lines)


def ica_table(configs):
    by = _by("ica", "amari")
    cases = sorted({c for (_, c) in by})
    families = sorted({c.split("-")[0] for c in cases})
    head = ["family (mean Amari index over sizes, shapes, 5 seeds)"] + configs
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fam in families:
        row = [fam]
        for cfg in configs:
            vals = [v for c in cases if c.startswith(fam + "-") for v in by.get((cfg, c), [])]
            row.append(f"{np.mean(vals):.4f} (max {np.max(vals):.3f})" if vals else "—")
        lines.append("| " + " | ".join(row) + " |")
    cells = ["**cells ≤ FastICA** (mean over seeds)"]
    for cfg in configs:
        n_ok = sum(1 for c in cases if by.get((cfg, c)) and by.get(("fastica", c))
                   and np.mean(by[(cfg, c)]) <= np.mean(by[("fastica", c)]))
        n = sum(1 for c in cases if by.get((cfg, c)))
        cells.append(f"{n_ok}/{n}")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DIRECTIVE = re.compile(r"^<!-- (\w+)(.*?)-->\s*$")


def _args(text):
    out = {}
    for part in text.split():
        k, _, v = part.partition("=")
        out[k] = v
    return out


def render(template=TEMPLATE, out=OUT):
    with open(template) as fh:
        lines = fh.read().splitlines()
    result = []
    for line in lines:
        m = DIRECTIVE.match(line)
        if not m:
            result.append(line)
            continue
        kind, a = m.group(1), _args(m.group(2))
        configs = a.get("configs", "").split(",") if a.get("configs") else []
        cases = a.get("cases", "").split(",") if a.get("cases") else None
        if kind == "ident":
            result.append(ident_table(configs, a.get("baseline", "raw"), cases,
                                      a.get("key", "r2")))
        elif kind == "generic":
            result.append(generic_table(a["suite"], configs, a.get("key", "r2"), cases,
                                        int(a.get("digits", 3))))
        elif kind == "ica":
            result.append(ica_table(configs))
        elif kind == "tuning_cases":
            import ident

            result.append(", ".join(f"`{c}`" for c in ident.TUNING_CASES) + ";")
        else:
            raise ValueError(f"unknown directive {kind!r}")
    with open(out, "w") as fh:
        fh.write("\n".join(result) + "\n")
    return out


if __name__ == "__main__":
    print(render())
