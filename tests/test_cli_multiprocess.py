"""``ldm-keras train`` across processes on 127.0.0.1 (issue: scale out).

One launch per backend, three processes at once: a single-process run (the reference)
and the two processes of a data-parallel run (``--processes 2 --process-id I
--coordinator …``), all training ``kalman-ssl-knn`` (a k-NN entropy pooled over the
batch: a statistic of the whole batch) on 4 generated sequences cut into 40 windows, one
global batch of 40 per epoch. With the whole data in every batch the order of the rows
does not matter, so the data-parallel run must reproduce the reference's losses: rows
shared wrongly (every process on all the data, or on the same half) or a per-process
entropy change them. Process 0 writes the run folder, process 1 writes nothing.

The processes are started and stopped here, bounded by a deadline and killed on failure.
"""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import BACKEND
from test_multiprocess import ROOT, _env, _free_ports, wait_or_kill

DEADLINE = 300  # seconds for the launch (the suite may run beside other test processes)
TRAIN = ["train", "--recipe", "kalman-ssl-knn", "--dataset", "state-space-nonlinear-2d",
         "--sequences", "4", "--test-sequences", "2", "--window", "20", "--stride", "20",
         "--batch-size", "40", "--epochs", "3", "--quiet"]


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_multiprocess")
    port = _free_ports(2)
    coordinator = (f"127.0.0.1:{port},127.0.0.1:{port + 1}" if BACKEND == "tensorflow"
                   else f"127.0.0.1:{port}")
    runs = {"single": [], "rank0": ["--processes", "2", "--process-id", "0"],
            "rank1": ["--processes", "2", "--process-id", "1"]}
    procs, logs = {}, {}
    for name, extra in runs.items():
        if extra:
            extra = extra + ["--coordinator", coordinator]
        logs[name] = open(tmp / f"{name}.log", "w")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "ldm_keras.cli", *TRAIN, *extra, "--out", str(tmp / name)],
            env=_env(), cwd=ROOT, stdout=logs[name], stderr=subprocess.STDOUT)
    wait_or_kill(list(procs.values()), list(logs.values()), DEADLINE, time.time())
    return {"tmp": tmp, "codes": {n: p.returncode for n, p in procs.items()},
            "logs": {n: (tmp / f"{n}.log").read_text() for n in runs}}


def _run(launch, name):
    assert launch["codes"][name] == 0, launch["logs"][name][-3000:]
    with open(launch["tmp"] / name / "run.json") as f:
        run = json.load(f)
    with open(launch["tmp"] / name / "metrics.json") as f:
        return run, json.load(f)


def test_two_processes_reproduce_one_process_on_the_global_batch(launch):
    assert all(c == 0 for c in launch["codes"].values()), {
        n: t[-2000:] for n, t in launch["logs"].items()}
    single, single_metrics = _run(launch, "single")
    run, metrics = _run(launch, "rank0")
    assert run["processes"] == 2 and single["processes"] == 1
    assert run["batch_size"] == single["batch_size"] == 40      # the global batch
    # the first epoch's loss is taken at the same weights on the same 40 windows
    np.testing.assert_allclose(run["loss_per_epoch"][0], single["loss_per_epoch"][0],
                               rtol=2e-5)
    # Later epochs agree less closely, by an amount that depends on the machine: on
    # PyTorch on an AVX-512 machine 5e-4 after one step and 4.2e-3 after two (a 1e-3
    # bound passed on the previous machine and failed here, on the old code too). The
    # likely amplifier is Adam, whose update divides each gradient component by its own
    # scale, so a component at rounding level (summed in another order by the
    # all-reduce) can move its weight by a full learning-rate step of either sign.
    np.testing.assert_allclose(run["loss_per_epoch"], single["loss_per_epoch"], rtol=2e-2)
    np.testing.assert_allclose(metrics["r2_untrained"], single_metrics["r2_untrained"],
                               atol=1e-6)   # the same initial encoder
    assert abs(metrics["r2"] - single_metrics["r2"]) < 0.01, (metrics, single_metrics)


def test_only_process_0_writes_and_both_hold_the_same_weights(launch):
    run, _ = _run(launch, "rank0")
    assert launch["codes"]["rank1"] == 0, launch["logs"]["rank1"][-3000:]
    assert not os.path.exists(launch["tmp"] / "rank1"), "process 1 wrote its --out"
    assert sorted(f for f in os.listdir(launch["tmp"] / "rank0") if not f.startswith(".")) \
        == ["encoder.keras", "metrics.json", "run.json"]
    said = re.search(r"process 1 of 2 trained 3 epochs \(weights fingerprint (\S+)\)",
                     launch["logs"]["rank1"])
    assert said, launch["logs"]["rank1"][-3000:]
    assert float(said.group(1)) == pytest.approx(run["weights_fingerprint"], rel=1e-11)
    table = re.search(r"^weights fingerprint\s+(\S+)", launch["logs"]["rank0"], flags=re.M)
    assert table and float(table.group(1)) == pytest.approx(run["weights_fingerprint"],
                                                            rel=1e-11)
