"""``ldm_keras.callbacks.BackupAndRestore``: a multi-process run resumes exactly; the
chief alone writes, atomically.

Multi-process (one launch per backend): two processes on 127.0.0.1 (the worker is
``multiprocess_resume_worker.py``) each run, one after the other, an uninterrupted
reference fit, a fit with the callback stopped on both ranks at the end of epoch 1, and
a fit of a model built from another seed that must restore the backup and finish: it
ends bitwise where the reference does (weights, optimizer slots, EMA targets, BatchNorm
statistics; random views, so the seed states count too), identically on both ranks,
and only rank 0 wrote under the backup folder. The three phases share the processes
because start-up is the expensive part; each phase builds a fresh model, so only the
restore can bring the interrupted state back.

Single-process (in this process): the same files and results as Keras' callback, and
the atomic writes (a failed write leaves the previous backup; a writer stopped between
its two renames is recovered; a mismatched pair is refused and the previous one used).
"""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from test_multiprocess import _env, _free_ports, wait_or_kill

import ldm_keras as ldm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "multiprocess_resume_worker.py")
DEADLINE = 300  # seconds for the launch (the worker's collectives time out at 60)
EPOCHS, STOP = 3, 1  # as in the worker


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    backup, port = str(tmp / "backup"), _free_ports(2)
    outs = [str(tmp / f"rank{r}.json") for r in range(2)]
    logs = [open(tmp / f"rank{r}.log", "w") for r in range(2)]
    start = time.time()
    procs = [subprocess.Popen([sys.executable, WORKER, str(r), "2", str(port), backup, outs[r]],
                              env=_env(), cwd=ROOT, stdout=logs[r], stderr=subprocess.STDOUT)
             for r in range(2)]
    wait_or_kill(procs, logs, DEADLINE, start)
    seconds = time.time() - start
    tails = [(tmp / f"rank{r}.log").read_text()[-3000:] for r in range(2)]
    ranks = [json.load(open(o)) if os.path.exists(o) else None for o in outs]
    return {"ranks": ranks, "seconds": seconds, "codes": [p.returncode for p in procs],
            "tails": tails}


def _ranks(launch):
    assert all(r is not None for r in launch["ranks"]), (launch["codes"], launch["tails"])
    return launch["ranks"]


def _max_diff(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))


def test_resumed_run_ends_where_the_uninterrupted_one_does(launch):
    for rank in _ranks(launch):
        assert "end of epoch 1" in rank["interrupted"], rank["interrupted"]
        resumed, reference = rank["resumed"], rank["reference"]
        assert len(resumed["loss"]) == EPOCHS - STOP - 1  # restored the epoch, too
        # exactly: the same steps on the same state (seen on every backend)
        assert resumed["loss"] == reference["loss"][STOP + 1:]
        assert _max_diff(resumed["weights"], reference["weights"]) == 0.0
        # the resumed model started elsewhere: only the restore brought it back
        initial = rank["initial_weights"]  # the model's variables (no optimizer yet)
        assert _max_diff(initial, reference["weights"][:len(initial)]) > 1e-2
    assert launch["seconds"] < DEADLINE


def test_both_ranks_hold_identical_weights(launch):
    rank0, rank1 = _ranks(launch)
    for phase in ("reference", "resumed"):
        assert _max_diff(rank0[phase]["weights"], rank1[phase]["weights"]) == 0.0, phase
        assert rank0[phase]["loss"] == rank1[phase]["loss"], phase


def test_only_the_chief_writes(launch):
    rank1 = launch["ranks"][1]
    assert rank1 is not None, (launch["codes"], launch["tails"])
    assert rank1["writes"] == [], rank1["writes"]
    rank0 = _ranks(launch)[0]
    # the recorder sees the chief's writes: two backups (epochs 0 and 1), each written
    # as pending files renamed onto the backup, then (resumed) one more and the deletion
    until_stop = rank0["writes_until_stop"]
    assert sum(w == "h5py latest.pending.weights.h5" for w in until_stop) == STOP + 1, until_stop
    assert sum(w == "os.rename training_metadata.json" for w in until_stop) == STOP + 1
    assert "shutil.rmtree backup" in rank0["writes"][len(until_stop):], rank0["writes"]
    assert rank0["files_after_stop"] == ["latest.weights.h5", "training_metadata.json"]
    assert not rank0["backup_left"]  # deleted at train end (by the chief)


# -- one process --------------------------------------------------------------------------
N, BATCH = 16, 8


class Stop(RuntimeError):
    pass


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Stop(epoch)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 5)).astype("float32")
    return x, (x + 0.3 * rng.normal(size=(N, 5))).astype("float32")


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = ldm.models.MultiViewLDM(ldm.models.encoders.mlp(5, [8], 4, batch_norm=True),
                                    prior=ldm.priors.IsotropicGaussian(2.0),
                                    entropy=ldm.entropy.GaussianKDE(2.0), ema_momentum=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.5))
    model.build(((None, 5), (None, 5)))
    return model


def _fit(model, callbacks, epochs=3):
    return model.fit(_data(), batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
                     callbacks=callbacks)


def _weights(model):
    return [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]


def _interrupted(folder, cls, **kwargs):
    with pytest.raises(Stop):
        _fit(_model(0), [cls(str(folder), **kwargs), StopAfter(1)])


def test_one_process_behaves_as_keras_callback(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "keras"
    _interrupted(ours, ldm.callbacks.BackupAndRestore)
    _interrupted(theirs, keras.callbacks.BackupAndRestore)
    assert sorted(os.listdir(ours)) == sorted(os.listdir(theirs))
    metadata = json.load(open(ours / "training_metadata.json"))
    assert {k: metadata[k] for k in ("epoch", "batch")} == json.load(
        open(theirs / "training_metadata.json"))
    # each resumes from the other's backup, to the same state
    a, b = _model(1), _model(1)
    history_a = _fit(a, [keras.callbacks.BackupAndRestore(str(ours))])
    history_b = _fit(b, [ldm.callbacks.BackupAndRestore(str(theirs))])
    assert history_a.history == history_b.history and len(history_a.history["loss"]) == 1
    for x, y in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(x, y)
    assert not ours.exists() and not theirs.exists()  # deleted at train end


def test_a_failed_write_leaves_the_previous_backup(tmp_path):
    folder = tmp_path / "b"
    _interrupted(folder, ldm.callbacks.BackupAndRestore)  # backups after epochs 0 and 1
    before = (folder / "latest.weights.h5").read_bytes()

    class Broken(ldm.callbacks.BackupAndRestore):
        def _save_model(self):  # the weights are written, then the process stops
            self.model.save_weights(self._pending_weights_path, overwrite=True)
            raise Stop("killed while writing")

    model = _model(1)
    with pytest.raises(Stop):
        _fit(model, [Broken(str(folder))])
    assert (folder / "latest.weights.h5").read_bytes() == before
    assert json.load(open(folder / "training_metadata.json"))["epoch"] == 2
    resumed = _model(3)
    assert len(_fit(resumed, [ldm.callbacks.BackupAndRestore(str(folder))]).history[
        "loss"]) == 1


def test_a_writer_stopped_between_its_renames_is_recovered(tmp_path, monkeypatch):
    import ldm_keras.callbacks.backup as module

    folder, rename, saves = tmp_path / "b", module._replace, []

    def stop_at_second_metadata(src, dst):  # the second backup: weights renamed, then stop
        if dst.endswith("training_metadata.json"):
            saves.append(dst)
            if len(saves) == 2:
                raise Stop("killed between the renames")
        rename(src, dst)

    monkeypatch.setattr(module, "_replace", stop_at_second_metadata)
    with pytest.raises(Stop):
        _fit(_model(0), [ldm.callbacks.BackupAndRestore(str(folder))])
    monkeypatch.setattr(module, "_replace", rename)
    # the weights after epoch 1 are in place, beside the metadata of epoch 0
    assert json.load(open(folder / "training_metadata.json"))["epoch"] == 1
    assert (folder / "training_metadata.json.pending").exists()
    resumed, reference = _model(4), _model(0)
    _fit(reference, [])
    history = _fit(resumed, [ldm.callbacks.BackupAndRestore(str(folder))])
    assert len(history.history["loss"]) == 1  # the pending metadata: two epochs done
    for x, y in zip(_weights(resumed), _weights(reference)):
        np.testing.assert_array_equal(x, y)


def test_a_mismatched_pair_is_refused_and_the_previous_one_restored(tmp_path):
    folder = tmp_path / "b"
    _interrupted(folder, ldm.callbacks.BackupAndRestore, double_checkpoint=True)
    meta = json.load(open(folder / "training_metadata.json"))
    meta["weights_sha256"] = "0" * 64
    json.dump(meta, open(folder / "training_metadata.json", "w"))
    resumed = _model(5)  # falls back to the backup of epoch 0: two epochs to go
    assert len(_fit(resumed, [ldm.callbacks.BackupAndRestore(
        str(folder), double_checkpoint=True)]).history["loss"]) == 2
    # without a previous pair, the inconsistency is an error
    _interrupted(folder, ldm.callbacks.BackupAndRestore)
    json.dump(meta, open(folder / "training_metadata.json", "w"))
    with pytest.raises(OSError, match="inconsistent"):
        _fit(_model(5), [ldm.callbacks.BackupAndRestore(str(folder))])
