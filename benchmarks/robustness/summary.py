"""Print a quick table of a robustness suite's stored results (mean [min, max] over seeds).

    python benchmarks/robustness/summary.py ident --configs defaults raw --key r2
"""

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def table(suite, configs=None, key="r2", cases=None):
    recs = common.collect(suite)
    by = collections.defaultdict(list)
    seen_cfg, seen_case = [], []
    for r in recs:
        if configs and r["config"] not in configs:
            continue
        if cases and r["case"] not in cases:
            continue
        by[(r["case"], r["config"])].append(r.get(key))
        if r["config"] not in seen_cfg:
            seen_cfg.append(r["config"])
        if r["case"] not in seen_case:
            seen_case.append(r["case"])
    cfgs = [c for c in (configs or seen_cfg) if c in seen_cfg]
    lines = ["| case | " + " | ".join(cfgs) + " |", "|---" * (len(cfgs) + 1) + "|"]
    for case in sorted(seen_case):
        cells = []
        for c in cfgs:
            v = by.get((case, c))
            if not v:
                cells.append("")
                continue
            m, lo, hi, n = common.spread(v)
            cells.append(f"{m:.3f}" if n == 1 else f"{m:.3f} [{lo:.2f},{hi:.2f}]")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("suite")
    p.add_argument("--configs", nargs="+")
    p.add_argument("--cases", nargs="+")
    p.add_argument("--key", default="r2")
    a = p.parse_args()
    print(table(a.suite, a.configs, a.key, a.cases))
