"""Merge the workers' JSON into one result and render it as markdown (``bench.md``)."""

import math
import os

from .measure import ratio

ANALYSIS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ANALYSIS.md")


def analysis_text():
    """The hand-written analysis of the missed targets (``bench/ANALYSIS.md``), if any."""
    if os.path.exists(ANALYSIS):
        with open(ANALYSIS) as f:
            return f.read()
    return None


METHOD = """\
**Method.** Every figure is a ratio of two measurements taken in the same run on the same
machine. Each backend runs in its own worker process (`KERAS_BACKEND` is read once).
*Time*: one warm-up call (compilation), then up to 5 timed rounds (3 for Kalman and
FLOP cases; fewer, but at least 2, once a case's timed calls exceed 4 s, 3 s on the
core grid), each call blocking until its results are ready. Ours and the baseline
alternate round by round so that both see the same load drift; in a round the faster
one is called several times in a row (each call timed), as many as fit in the slower
one's warm-up time, at most 10: a 10 ms call right after a 2 s memory-bound baseline
finds cold caches and measured 2–4× its steady time. We report the median and, for a ratio, the range
`[base_q1 / ours_q3, base_q3 / ours_q1]` from the quartiles of both. *Peak memory*
(entropy): in a separate worker per backend (with `MALLOC_MMAP_THRESHOLD_=65536`, so
freed buffers go back to the kernel), after a warm-up call and `malloc_trim`, the
process's resident high-water mark is reset (`echo 5 > /proc/self/clear_refs`); peak =
`VmHWM` after one call − `VmRSS` before it: the extra resident memory of the call,
native allocations of every framework included. Compilation: JAX `jax.jit`,
TensorFlow `tf.function(jit_compile=True)` (what `model.fit` uses with
`jit_compile="auto"`), PyTorch eager (as `model.fit` on torch); ours and the baseline
are compiled the same way. Baselines are written in the backend's own framework.
"""


def _median(entry):
    t = (entry or {}).get("time")
    return t["median"] if t else None


def worker_keys(workers):
    """``backend/mode/sections`` per worker; a repeated one (a worker re-run for missing
    cases, in merged runs) gets ``#2``, ``#3``, … in order."""
    keys = []
    for w in workers:
        key = base = f"{w['backend']}/{w['mode']}/{'+'.join(w['sections'])}"
        n = 1
        while key in keys:
            n += 1
            key = f"{base}#{n}"
        keys.append(key)
    return keys


def merge(workers, meta):
    """One dict: meta, per-section rows with ratios, targets, and the raw worker output."""
    time_w = [w for w in workers if w.get("mode") == "time"]
    mem_w = {w["backend"]: w for w in workers if w.get("mode") == "memory"}
    rows = {"entropy": [], "flops": [], "kalman": [], "train": []}
    torch_kalman = {}
    for w in time_w:
        if w["backend"] == "torch":
            for cid, c in w.get("cases", {}).items():
                if cid.startswith("kalman/") and "baseline" in c:
                    torch_kalman[cid] = c["baseline"]
    jax_fit = {}
    for w in time_w:
        if w["backend"] == "jax":
            for cid, c in w.get("cases", {}).items():
                if cid.startswith("train/"):
                    jax_fit[cid] = c
    for w in time_w:
        b = w["backend"]
        for cid, c in w.get("cases", {}).items():
            case = c.get("case", {})
            section = cid.split("/")[0]
            row = {"id": cid, "backend": b, **{k: v for k, v in case.items()
                                               if k not in ("id", "section")}}
            if "error" in c:
                row["error"] = c["error"]
            if section == "entropy":
                row["ours"] = c.get("ours")
                row["baseline"] = c.get("baseline")
                row["broadcast_bytes"] = c.get("broadcast_bytes")
                row["speedup"] = ratio((c.get("baseline") or {}).get("time"),
                                       (c.get("ours") or {}).get("time"))
                m = mem_w.get(b, {}).get("cases", {}).get(cid, {})
                mo = (m.get("ours") or {}).get("peak_bytes")
                mb = (m.get("baseline") or {}).get("peak_bytes")
                row["ours_peak_bytes"], row["baseline_peak_bytes"] = mo, mb
                row["memory_ratio"] = (mb / mo) if (mo and mb) else None
                if "error" in m:
                    row["memory_error"] = m["error"]
            elif section == "flops":
                row.update({k: c.get(k) for k in ("ours", "matmul", "kde_flop_rate",
                                                   "matmul_flop_rate", "fraction",
                                                   "fraction_low", "fraction_high")})
            elif section == "kalman":
                row["ours"] = c.get("ours")
                # the baseline alternated with ours in this worker; else the PyTorch worker's
                base = c.get("baseline") or torch_kalman.get(cid)
                row["baseline"] = base
                row["speedup"] = ratio((base or {}).get("time"),
                                       (c.get("ours") or {}).get("time"))
            elif section == "train":
                row.update({k: c.get(k) for k in ("ours", "samples_per_epoch", "batch_size",
                                                   "samples_per_second", "jit_compile")})
                ref_id = cid
                if cid == "train/hand_loop_simclr":
                    # fit timed alternately with the hand loop in this case (older
                    # results: the separate train/simclr_digits case)
                    fit_time = ((c.get("fit") or {}).get("time")
                                or (jax_fit.get("train/simclr_digits", {}).get("ours")
                                    or {}).get("time"))
                    row["fit"] = c.get("fit")
                    # overhead = fit epoch time / hand-loop epoch time (>1: fit slower)
                    row["fit_overhead"] = ratio(fit_time, (c.get("ours") or {}).get("time"))
                else:
                    ref = jax_fit.get(ref_id, {})
                    row["speed_vs_jax_fit"] = ratio((ref.get("ours") or {}).get("time"),
                                                    (c.get("ours") or {}).get("time"))
            rows[section].append(row)
    merged = {"meta": meta, **rows}
    merged["targets"] = targets(merged)
    merged["workers"] = [{k: v for k, v in w.items() if k != "cases"} for w in workers]
    merged["raw"] = {key: w.get("cases", {}) for key, w in zip(worker_keys(workers), workers)}
    return merged


def _find(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def _met(value, target):
    return None if value is None else bool(value >= target)


def kalman_targets(m):
    """The Kalman issue's acceptance targets (training step, completion, dynamax)."""
    out = []
    steps = [r for r in m["kalman"] if r.get("kind") == "step"]
    for b in ("jax", "tensorflow", "torch"):
        goal = 3.0 if b == "torch" else 10.0
        sizes = ((32, 2), (128, 8)) if b == "torch" else tuple(
            (bb, s) for bb in (32, 128) for s in (2, 8, 32, 64))
        for bb, s in sizes:
            for r in _find(steps, backend=b, B=bb, T=100, S=s):
                v = (r.get("speedup") or {}).get("median")
                out.append({"name": f"Kalman training step vs the eager reference loop, "
                                    f"B={bb} T=100 S={s} ({b})",
                            "value": v, "target": goal, "met": _met(v, goal), "unit": "×"})
        for bb, t, s in ((128, 1000, 32), (32, 100, 64), (128, 100, 64)):
            for r in _find(steps, backend=b, B=bb, T=t, S=s):
                tm = (r.get("ours") or {}).get("time")
                ok = bool(tm) and not r.get("error")
                out.append({"name": f"Kalman training step completes, B={bb} T={t} S={s} "
                                    f"({b})", "value": tm["median"] if tm else None,
                            "target": None, "met": ok, "unit": "s"})
    for r in [r for r in m["kalman"] if r.get("kind") == "dynamax"]:
        v = (r.get("speedup") or {}).get("median")
        if v is None and r["backend"] != "jax":
            continue
        out.append({"name": f"JAX filter value+grad vs dynamax lgssm_filter (vmapped), "
                            f"B={r.get('B')} T={r.get('T')} S={r.get('S')}",
                    "value": v, "target": 1.0, "met": _met(v, 1.0), "unit": "×"})
    return out


def targets(m):
    out = []
    for r in _find(m["entropy"], estimator="gaussian_kde", N=512, d=256):
        s = (r.get("speedup") or {}).get("median")
        out.append({"name": f"Gaussian KDE speed-up vs broadcast, N=512 d=256 ({r['backend']})",
                    "value": s, "target": 50.0, "met": _met(s, 50.0), "unit": "×"})
        mr = r.get("memory_ratio")
        out.append({"name": f"Gaussian KDE peak-memory ratio vs broadcast, N=512 d=256 "
                            f"({r['backend']})",
                    "value": mr, "target": 10.0, "met": _met(mr, 10.0), "unit": "×"})
    for est in ("vmf_kde", "knn", "logdet"):
        for b in sorted({r["backend"] for r in m["entropy"]}):
            sp = [(r["speedup"]["median"], f"N={r['N']} d={r['d']}")
                  for r in _find(m["entropy"], estimator=est, backend=b) if r.get("speedup")]
            if not sp:
                continue
            worst = min(sp)
            slower = [f"{label} ({v:.2f}×)" for v, label in sp if v < 1.0]
            out.append({"name": f"{est} no slower than its baseline ({b}; worst size)",
                        "value": worst[0], "target": 1.0, "met": not slower, "unit": "×",
                        "detail": ("slower at " + ", ".join(slower)) if slower else
                        f"all {len(sp)} sizes"})
    out += kalman_targets(m)
    for (bb, t, s, tgt) in ((32, 100, 2, 10.0), (128, 100, 8, 3.0), (128, 1000, 8, 3.0)):
        for r in _find(m["kalman"], backend="jax", B=bb, T=t, S=s, kind="filter"):
            v = (r.get("speedup") or {}).get("median")
            out.append({"name": f"Kalman fwd+bwd on JAX vs eager torch.inverse loop, "
                                f"B={bb} T={t} S={s}",
                        "value": v, "target": tgt, "met": _met(v, tgt), "unit": "×"})
    for r in _find(m["train"], id="train/hand_loop_simclr"):
        v = (r.get("fit_overhead") or {}).get("median")
        out.append({"name": "model.fit epoch time / hand-written JAX loop (digits simclr)",
                    "value": v, "target": 1.2, "met": None if v is None else v <= 1.2,
                    "unit": "×", "lower_is_better": True})
    for r in m["flops"]:
        v = r.get("fraction")
        out.append({"name": f"Gaussian KDE FLOP rate / matmul rate, N={r.get('N')} "
                            f"d={r.get('d')} ({r['backend']})",
                    "value": v, "target": 0.5, "met": _met(v, 0.5), "unit": "fraction"})
    return out


def _ms(entry):
    t = (entry or {}).get("time")
    if not t:
        return (entry or {}).get("skipped") or ((entry or {}).get("error") or "—")
    return f"{1e3 * t['median']:.3g}"


def _ratio(r):
    if not r:
        return "—"
    return f"**{r['median']:.3g}×** ({r['low']:.3g}–{r['high']:.3g})"


def _mb(x):
    return "—" if x is None else f"{x / 2**20:.3g}"


def _fmt(v, unit):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "not measured"
    if unit == "s":
        return f"{v:.3g} s"
    return f"{100 * v:.0f} %" if unit == "fraction" else f"{v:.3g}×"


def markdown(m, analysis=None):
    meta = m["meta"]
    la0, la1 = meta["env_start"]["loadavg"], meta["env_end"]["loadavg"]
    lines = [
        "# ldm_keras benchmarks: speed and memory as ratios",
        "",
        f"Run `{meta['command']}` started {meta['started_utc']}, took "
        f"{meta['wall_seconds'] / 60:.1f} min on {meta['env_start']['cpus']} CPU cores "
        f"({meta['env_start']['machine']}, Python {meta['env_start']['python']}). "
        f"Load average (1/5/15 min) at the start {la0[0]:.1f}/{la0[1]:.1f}/{la0[2]:.1f}, "
        f"at the end {la1[0]:.1f}/{la1[1]:.1f}/{la1[2]:.1f}: the machine is shared, so "
        "absolute times are noisy; ratios from alternated calls are steadier. "
        "Generated by `benchmarks/run.py` (`nox -s bench`); raw times in `bench.json`.",
        "",
        METHOD,
        "## Targets",
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for t in m["targets"]:
        goal = ("completes" if t["target"] is None else
                ("≤ " if t.get("lower_is_better") else "≥ ") + _fmt(t["target"], t["unit"]))
        met = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        detail = f" ({t['detail']})" if t.get("detail") else ""
        lines.append(f"| {t['name']} | {_fmt(t['value'], t['unit'])}{detail} | {goal} | {met} |")
    if analysis:
        lines += ["", analysis.strip(), ""]
    lines += [
        "",
        "## 1. Entropy estimators (value + gradient w.r.t. the batch)",
        "",
        "Speed-up = baseline time / our time (median; range from the quartiles). Memory "
        "ratio = baseline peak / our peak. Baselines: Gaussian and vMF KDE by pairwise "
        "broadcast (`z[:, None, :] - z[None, :, :]`, the reference release's algorithm), "
        "k-NN by `torch.cdist` + `topk` on PyTorch and by broadcast squared distances + "
        "`top_k` on JAX/TensorFlow, log-det by `eigvalsh` of the covariance. Settings: "
        "KDE precision 5, k = 3, jitter 1e-6.",
        "",
        "| backend | estimator | N | d | ours ms | baseline ms | speed-up | ours peak MiB | "
        "baseline peak MiB | memory ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in m["entropy"]:
        mem = "—" if r.get("memory_ratio") is None else f"{r['memory_ratio']:.3g}×"
        lines.append(
            f"| {r['backend']} | {r.get('estimator')} | {r.get('N')} | {r.get('d')} | "
            f"{_ms(r.get('ours'))} | {_ms(r.get('baseline'))} | {_ratio(r.get('speedup'))} | "
            f"{_mb(r.get('ours_peak_bytes'))} | {_mb(r.get('baseline_peak_bytes'))} | {mem} |")
    lines += [
        "",
        "## 2. Kalman filter",
        "",
        "Kinds (`benchmarks/bench/cases_kalman.py`): *filter* — `KalmanFilter(KalmanCell(S, "
        "L=S))`, loss Σ_t mean_b nll, gradient w.r.t. inputs and weights, compiled as `fit` "
        "would, against the reference algorithm as an eager PyTorch per-step loop with "
        "`torch.inverse`; *step* — one full training step (per-frame MLP 100→100→S, "
        "filter, loss, Adam, spectral-radius clamp; `train_on_batch`) against the same "
        "reference as an eager PyTorch training loop; *dynamax* (JAX) — value + gradient "
        "w.r.t. the model parameters, ours against dynamax's `lgssm_filter` vmapped over "
        "the batch. Every baseline is timed alternately with ours in the same worker "
        "process (PyTorch imported directly, one intra-op thread, on JAX/TensorFlow).",
        "",
        "| backend | kind | B | T | S | ours ms | baseline ms | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in m["kalman"]:
        lines.append(f"| {r['backend']} | {r.get('kind', 'filter')} | {r.get('B')} | "
                     f"{r.get('T')} | {r.get('S')} | {_ms(r.get('ours'))} | "
                     f"{_ms(r.get('baseline'))} | {_ratio(r.get('speedup'))} |")
    lines += [
        "",
        "## 3. Training throughput (`model.fit`)",
        "",
        "One untimed epoch, then timed epochs (each a repeat). Digits: samples = images "
        "(two views each); DotMotion: samples = sequences of 100 frames. \"vs JAX fit\" = "
        "JAX epoch time / this epoch time (>1: faster than JAX). The hand loop: `jax.jit` "
        "+ `jax.value_and_grad` of the same `compute_ldm_loss` + Adam by hand; its row "
        "gives fit epoch time / hand-loop epoch time (the overhead of `fit` and our "
        "`train_step`), both timed alternately in the hand-loop case (a few `fit` epochs, "
        "as many hand-loop epochs, repeated), so they share the load.",
        "",
        "| backend | case | batch | samples/epoch | epoch ms | samples/s | vs JAX fit | "
        "fit overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in m["train"]:
        sps = r.get("samples_per_second")
        fit_ms = f" (fit epoch {_ms(r['fit'])} ms, same run)" if r.get("fit") else ""
        lines.append(
            f"| {r['backend']} | {r['id'].split('/')[1]} | {r.get('batch_size')} | "
            f"{r.get('samples_per_epoch')} | {_ms(r.get('ours'))} | "
            f"{'—' if sps is None else f'{sps:.4g}'} | {_ratio(r.get('speed_vs_jax_fit'))} | "
            f"{_ratio(r.get('fit_overhead'))}{fit_ms} |")
    lines += [
        "",
        "## 4. Arithmetic rate of the Gaussian KDE",
        "",
        "KDE value + gradient counted as 6N²d FLOPs (the forward `z zᵀ` and two backward "
        "matmuls; O(N²) elementwise work ignored) against a float32 matmul `(N×d)(d×N)` "
        "(2N²d FLOPs) timed alternately in the same process.",
        "",
        "| backend | N | d | KDE ms | matmul ms | KDE GFLOP/s | matmul GFLOP/s | fraction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in m["flops"]:
        if r.get("fraction") is None:
            lines.append(f"| {r['backend']} | {r.get('N')} | {r.get('d')} | "
                         f"{r.get('error', '—')} | | | | |")
            continue
        lines.append(
            f"| {r['backend']} | {r.get('N')} | {r.get('d')} | {_ms(r.get('ours'))} | "
            f"{_ms(r.get('matmul'))} | {r['kde_flop_rate'] / 1e9:.3g} | "
            f"{r['matmul_flop_rate'] / 1e9:.3g} | **{100 * r['fraction']:.0f} %** "
            f"({100 * r['fraction_low']:.0f}–{100 * r['fraction_high']:.0f} %) |")
    bad = [w for w in m["workers"] if w.get("status") != "ok"]
    if bad:
        lines += ["", "## Workers that did not finish", ""]
        lines += [f"* {w['backend']} {w['mode']} {w['sections']}: {w['status'].splitlines()[0]}"
                  for w in bad]
    errs = [r for s in ("entropy", "flops", "kalman", "train") for r in m[s] if r.get("error")]
    if errs:
        lines += ["", "## Cases that failed", ""]
        lines += [f"* {r['backend']} {r['id']}: {r['error'].splitlines()[0][:300]}" for r in errs]
    return "\n".join(lines) + "\n"
