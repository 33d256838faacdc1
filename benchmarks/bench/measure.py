"""Timing and peak-memory helpers shared by every benchmark case (no framework imports).

Time: the callable runs once to warm up (compilation, caches), then ``repeats`` times;
each call must block until its results are ready. We report the median and the
interquartile range (25th-75th percentile) plus min/max.

Peak memory: Linux keeps a per-process resident-set high-water mark (``VmHWM`` in
``/proc/self/status``). Writing ``5`` to ``/proc/self/clear_refs`` resets it to the
current resident size (Linux >= 4.0). For one case we warm up (so compilation memory is
excluded), release freed heap pages to the kernel (``gc.collect`` and glibc
``malloc_trim(0)``), reset the mark, read ``VmRSS``, run the call once and read
``VmHWM``: ``peak = VmHWM - VmRSS_before`` is the extra resident memory the call needed
at its peak, native allocations of every framework included (unlike ``tracemalloc``).
Memory workers run with ``MALLOC_MMAP_THRESHOLD_=65536`` so that every large buffer is
its own ``mmap`` and returns to the kernel when freed; memory runs are separate processes
from timing runs, so this setting does not affect the timings.
"""

import ctypes
import gc
import math
import os
import statistics
import time

MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    return None


def _trim():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def can_measure_memory():
    """True when the resident high-water mark can be reset (Linux ``clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status("VmHWM") is not None
    except OSError:
        return False


def peak_memory(fn):
    """Extra resident bytes at the peak of one call of ``fn`` (after a warm-up call)."""
    fn()
    _trim()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status("VmRSS")
    fn()
    peak = _status("VmHWM")
    return max(peak - before, 0)


def summarize(times):
    """Median, quartiles, min and max of a list of seconds."""
    ts = sorted(times)
    if len(ts) >= 2:
        q1, _, q3 = statistics.quantiles(ts, n=4, method="inclusive")
    else:
        q1 = q3 = ts[0]
    return {"median": statistics.median(ts), "q1": q1, "q3": q3, "min": ts[0], "max": ts[-1],
            "n": len(ts), "times": [round(t, 6) for t in times]}


def time_calls(fn, repeats, warmup=1, budget=None):
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then up to ``repeats`` timed.

    With ``budget`` (seconds), stop repeating once the timed calls exceed it (at least
    two timed calls when ``repeats >= 2``).
    """
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if budget is not None and i >= 1 and time.perf_counter() - start > budget:
            break
    return summarize(times)


def ratio(base, ours):
    """Speed-up ``base/ours`` (median) and its range from the quartiles of both."""
    if not base or not ours:
        return None
    r = base["median"] / ours["median"]
    lo = base["q1"] / ours["q3"]
    hi = base["q3"] / ours["q1"]
    return {"median": r, "low": lo, "high": hi}


def finite(x):
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def environment():
    """Machine facts recorded with every worker's results."""
    import platform

    return {"cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "loadavg": list(os.getloadavg()),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def time_interleaved(runners, repeats, warmup=1, budget=None, max_calls=10):
    """Like :func:`time_calls` for several callables, alternating them round by round.

    On a shared machine the load drifts; alternating exposes every implementation to the
    same drift, so their ratio is steadier than when each is timed in its own block.
    Within a round a fast callable is called several times in a row (each call timed
    separately), as many as fit in the warm-up time of the slowest one, up to
    ``max_calls``: a 10 ms call right after a 2 s memory-bound one finds the caches
    (and the frameworks' worker threads) cold and measured 2-4x its steady time, a cost
    of the neighbour rather than of the call. ``budget`` bounds the total timed seconds
    (at least two rounds).
    """
    warm = {}
    for name, fn in runners.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()  # one more untimed call, compiled: its steady time
        fn()
        warm[name] = time.perf_counter() - t0
    slowest = max(warm.values(), default=0.0)
    calls = {name: max(1, min(max_calls, int(slowest / max(warm.get(name, slowest), 1e-9))))
             for name in runners}
    times = {name: [] for name in runners}
    start = time.perf_counter()
    for i in range(repeats):
        for name, fn in runners.items():
            for _ in range(calls[name]):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        if budget is not None and i >= 1 and time.perf_counter() - start > budget:
            break
    return {name: {**summarize(ts), "calls_per_round": calls[name]}
            for name, ts in times.items()}
